/**
 * Concurrency caps for VMs: one global cap and optional caps per `runs-on` label (a big image
 * may only fit twice on the host). Waiters are served first come, first served.
 */

interface Waiter {
  label: string;
  grant: () => void;
}

export class RunnerLimits {
  #running = 0;
  #byLabel = new Map<string, number>();
  #queue: Waiter[] = [];

  constructor(readonly maxJobs: number, readonly perLabel: Record<string, number> = {}) {
    if (!Number.isInteger(maxJobs) || maxJobs < 1) throw new Error(`concurrency.maxJobs must be a positive integer, got ${maxJobs}`);
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  runningFor(label: string): number {
    return this.#byLabel.get(label) ?? 0;
  }

  #fits(label: string): boolean {
    const cap = this.perLabel[label];
    return this.#running < this.maxJobs && (cap === undefined || this.runningFor(label) < cap);
  }

  #take(label: string): () => void {
    this.#running += 1;
    this.#byLabel.set(label, this.runningFor(label) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running -= 1;
      this.#byLabel.set(label, this.runningFor(label) - 1);
      this.#drain();
    };
  }

  #drain(): void {
    // A waiter for a saturated label must not block one for a free label behind it.
    for (const waiter of [...this.#queue]) {
      if (!this.#fits(waiter.label)) continue;
      this.#queue.splice(this.#queue.indexOf(waiter), 1);
      waiter.grant();
    }
  }

  /** Resolves with a release function once a slot is free; rejects if the signal aborts first. */
  acquire(label: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new Error('cancelled while waiting for a runner slot'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        label,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.#take(label));
        },
      };
      const onAbort = () => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(new Error('cancelled while waiting for a runner slot'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
      // Waiters ahead may be held by their label's cap only: this one may still fit.
      this.#drain();
    });
  }
}
