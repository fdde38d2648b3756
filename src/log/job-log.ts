/**
 * A job's log: written to disk as output arrives, never held whole in memory, and capped.
 * Listeners (the CLI's live view, the check-run tailer) see each chunk as it is written.
 * Everything written passes the log's masker first: a secret never reaches the file, the live
 * view or a check run. Writers that stream output keep whole lines together while masks are
 * registered (step-output.ts), so a secret is never split across two writes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Masker } from './masker.ts';

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
  /** Secrets and `::add-mask::` values of this job. */
  readonly masker = new Masker();

  constructor(readonly path: string, readonly capBytes: number) {
    this.#fd = openSync(path, 'a');
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

  /** Append output. Past the cap, writes one closing line and drops the rest. */
  write(chunk: Buffer | string, channel: LogChannel = 'stdout'): void {
    if (this.#capped) return;
    let data: Buffer;
    if (this.masker.active) data = Buffer.from(this.masker.mask(typeof chunk === 'string' ? chunk : chunk.toString('utf8')));
    else data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
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
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
