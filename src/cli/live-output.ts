/**
 * Print job logs live. With one job at a time, output goes through as is; with several,
 * each line is prefixed with its job so interleaved output stays readable.
 */
import type { JobLog } from '../log/job-log.ts';

export class LiveOutput {
  #running = 0;
  #partial = new Map<string, string>();

  /** `write` gets whole lines without the last line end, like `console.log` (it adds its own). */
  constructor(private write: (text: string) => void, private prefixAlways = false) {}

  attach(key: string, log: JobLog): () => void {
    this.#running++;
    const detach = log.onData((chunk) => this.#print(key, chunk.toString('utf8')));
    return () => {
      detach();
      const rest = this.#partial.get(key);
      if (rest) this.write(`${this.#prefix(key)}${rest}`);
      this.#partial.delete(key);
      this.#running--;
    };
  }

  #prefix(key: string): string {
    return this.prefixAlways || this.#running > 1 ? `[${key}] ` : '';
  }

  #print(key: string, text: string): void {
    const pending = (this.#partial.get(key) ?? '') + text;
    const lines = pending.split('\n');
    this.#partial.set(key, lines.pop() ?? '');
    if (lines.length === 0) return;
    const prefix = this.#prefix(key);
    this.write(lines.map((line) => `${prefix}${line}`).join('\n'));
  }
}
