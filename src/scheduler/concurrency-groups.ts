/**
 * GitHub's `concurrency:` groups, for runs and for jobs. Within a group (scoped to one
 * repository by the caller's key) at most one holder runs and at most one waits:
 *
 * - a newcomer always replaces the one waiting, which ends cancelled without running;
 * - with cancel-in-progress it also cancels the one running, and takes over once that one has
 *   wound down (its VM stopped, its check completed);
 * - without it, it waits for the one running to finish.
 *
 * The state lives in memory: after a restart, runs that were running are concluded anyway, and
 * the resumed ones enter their groups again.
 */

/** What a holder gets: a signal aborted when a newer holder cancels it, and the way out. */
export interface ConcurrencySlot {
  signal: AbortSignal;
  release(): void;
}

/** The slot of a run or job that names no group. */
export const NO_CONCURRENCY_GROUP: ConcurrencySlot = { signal: new AbortController().signal, release: () => {} };

/** Why a holder was cancelled, carried as the abort reason of its signal. */
export class ConcurrencyCancelled extends Error {}

/** The reason of the first signal a concurrency group cancelled, if any. */
export function concurrencyReason(...signals: AbortSignal[]): string | undefined {
  for (const signal of signals) if (signal.reason instanceof ConcurrencyCancelled) return signal.reason.message;
  return undefined;
}

interface Entry {
  controller: AbortController;
  /** Set while waiting: lets it in (true) or turns it away (false). */
  admit?: (admitted: boolean) => void;
}

interface Group {
  running?: Entry;
  waiting?: Entry;
}

export class ConcurrencyGroups {
  readonly #groups = new Map<string, Group>();

  /**
   * Enters the group `key` (shown to users as `name`). Resolves once this holder may run, or
   * when a newer one replaced it while it waited, or when `cancelled` aborts while it waits:
   * then the slot's signal is aborted and it holds nothing.
   */
  async enter(key: string, name: string, cancelInProgress: boolean, cancelled?: AbortSignal): Promise<ConcurrencySlot> {
    let group = this.#groups.get(key);
    if (!group) {
      group = {};
      this.#groups.set(key, group);
    }
    const entry: Entry = { controller: new AbortController() };
    const replaced = group.waiting;
    if (replaced) {
      replaced.controller.abort(new ConcurrencyCancelled(`superseded in concurrency group "${name}" before it started`));
      replaced.admit?.(false);
    }
    if (!group.running) {
      group.running = entry;
      return this.#slot(key, group, entry);
    }
    if (cancelInProgress) group.running.controller.abort(new ConcurrencyCancelled(`superseded in concurrency group "${name}" (cancel-in-progress)`));
    group.waiting = entry;
    const onCancelled = () => {
      if (group.waiting !== entry) return;
      group.waiting = undefined;
      entry.controller.abort(cancelled?.reason);
      entry.admit?.(false);
    };
    const admitted = await new Promise<boolean>((resolve) => {
      entry.admit = resolve;
      cancelled?.addEventListener('abort', onCancelled, { once: true });
      if (cancelled?.aborted) onCancelled();
    });
    cancelled?.removeEventListener('abort', onCancelled);
    return admitted ? this.#slot(key, group, entry) : { signal: entry.controller.signal, release: () => {} };
  }

  /** How many groups have a holder running or waiting. */
  get size(): number {
    return this.#groups.size;
  }

  #slot(key: string, group: Group, entry: Entry): ConcurrencySlot {
    let released = false;
    return {
      signal: entry.controller.signal,
      release: () => {
        if (released) return;
        released = true;
        const next = group.waiting;
        group.running = next;
        group.waiting = undefined;
        if (next) next.admit?.(true);
        else this.#groups.delete(key);
      },
    };
  }
}
