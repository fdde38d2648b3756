/**
 * A job's log: written to disk as output arrives, never held whole in memory, and capped.
 * Listeners (the CLI's live view, the check-run tailer) see each chunk as it is written.
 *
 * Secrets registered with `log.masker` are replaced by `***` before anything reaches the file or
 * a listener, so excerpts and annotations read back from the log are masked too. Output is
 * masked per channel as a stream (masking-stream.ts): a tail that could begin a secret waits for
 * the next chunk; a meta line, flush() or close() releases it. With no secret registered, chunks
 * go through untouched.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Masker } from './masker.ts';
import { MaskingStream } from './masking-stream.ts';

export type LogChannel = 'stdout' | 'stderr' | 'meta';
export type LogListener = (chunk: Buffer, channel: LogChannel) => void;

export class LogCapExceeded extends Error {
  constructor(readonly capBytes: number) {
    super(`job log reached its cap of ${capBytes} bytes; raise logCapBytes in the config or make the job print less`);
  }
}

export class JobLog {
  #fd: number;
  #bytes = 0;
  #listeners = new Set<LogListener>();
  #capped = false;
  /** What this log hides: add the job's secret values (and `::add-mask::` values) here. */
  readonly masker: Masker;
  readonly #streams: Record<'stdout' | 'stderr', MaskingStream>;

  constructor(readonly path: string, readonly capBytes: number, options: { masker?: Masker } = {}) {
    this.#fd = openSync(path, 'a');
    this.masker = options.masker ?? new Masker();
    this.#streams = { stdout: new MaskingStream(this.masker), stderr: new MaskingStream(this.masker) };
  }

  /** Bytes written so far: step results record byte ranges into the file. */
  get size(): number {
    return this.#bytes;
  }

  get capReached(): boolean {
    return this.#capped;
  }

  onData(listener: LogListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Append output, masked. Past the cap, writes one closing line and drops the rest. */
  write(chunk: Buffer | string, channel: LogChannel = 'stdout'): void {
    if (this.#capped) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (channel === 'meta') {
      this.flush();
      this.#append(this.masker.maskBuffer(data), channel);
    } else {
      this.#append(this.#streams[channel].write(data), channel);
    }
  }

  /** Writes out output held back by masking (a tail that could have begun a secret). */
  flush(): void {
    for (const channel of ['stdout', 'stderr'] as const) this.#append(this.#streams[channel].end(), channel);
  }

  #append(masked: Buffer, channel: LogChannel): void {
    if (this.#capped || masked.length === 0) return;
    let data = masked;
    const room = this.capBytes - this.#bytes;
    if (data.length > room) {
      this.#capped = true;
      data = Buffer.concat([data.subarray(0, Math.max(0, room)), Buffer.from(`\n${new LogCapExceeded(this.capBytes).message}\n`)]);
    }
    writeSync(this.#fd, data);
    this.#bytes += data.length;
    for (const listener of this.#listeners) listener(data, channel);
  }

  /** A line of forgevm's own (step headers, results). */
  meta(line: string): void {
    this.write(`${line}\n`, 'meta');
  }

  close(): void {
    if (this.#fd >= 0) this.flush();
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
