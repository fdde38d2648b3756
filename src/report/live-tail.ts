/**
 * Sends the tail of a running job's log to the forge at most once per interval (10 s by
 * default, per check run), and only when something new was written. Keeps a bounded buffer:
 * the log itself stays on disk.
 */
import type { JobLog } from '../log/job-log.ts';
import { excerptText, formatDuration, stripAnsi } from './check-output.ts';
import type { ForgeReporter, ReportHandle } from './reporter.ts';

const BUFFER_BYTES = 64 * 1024;

export class LiveTail {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #dirty = false;
  #timer?: NodeJS.Timeout;
  #unsubscribe: () => void;
  #inFlight: Promise<void> = Promise.resolve();
  #started = Date.now();

  constructor(
    log: JobLog,
    private readonly reporter: ForgeReporter,
    private readonly handle: ReportHandle,
    private readonly onError: (error: unknown) => void,
    intervalMs = 10_000,
  ) {
    this.#unsubscribe = log.onData((chunk) => {
      this.#chunks.push(chunk);
      this.#bytes += chunk.length;
      while (this.#bytes > BUFFER_BYTES && this.#chunks.length > 1) this.#bytes -= this.#chunks.shift()!.length;
      this.#dirty = true;
    });
    this.#timer = setInterval(() => this.#flush(), intervalMs);
    this.#timer.unref();
  }

  #flush(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const tail = stripAnsi(Buffer.concat(this.#chunks).toString('utf8'));
    const output = {
      title: `Running for ${formatDuration(Date.now() - this.#started)}`,
      summary: 'The job is running; this shows the end of its log so far. The full result appears when it ends.',
      text: excerptText({ tail }),
    };
    this.#inFlight = this.#inFlight.then(() => this.reporter.progress(this.handle, output)).catch(this.onError);
  }

  /** Stops updates and waits for one in flight, so it cannot land after the completion. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe();
    await this.#inFlight;
  }
}
