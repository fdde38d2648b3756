/**
 * When to try a delivery again after a transient failure (src/forge/api-failure.ts decides
 * which failures are transient): exponential backoff with jitter, capped, and honouring the
 * forge's own `retry-after`; after `giveUpMs` of failing, the delivery is given up as `failed`.
 */

export interface RetryPolicy {
  /** Wait after the first failure; doubles with each further one. */
  baseMs: number;
  /** Longest wait between two attempts (a forge's retry-after may ask for longer). */
  maxMs: number;
  /** Failing for this long (since the first failure of the current run) gives up. */
  giveUpMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 10_000, maxMs: 5 * 60_000, giveUpMs: 24 * 60 * 60_000 };

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: string };

/**
 * `failures` counts this one (1 after the first failure); `failingSinceMs` is when the first
 * one happened. Jitter keeps deliveries that failed together from hammering a forge together
 * when it comes back: the wait is between half and all of the backoff.
 */
export function nextRetry(
  policy: RetryPolicy,
  failure: { failures: number; failingSinceMs: number; retryAfterMs?: number },
  now: number = Date.now(),
  random: () => number = Math.random,
): RetryDecision {
  const failingFor = now - failure.failingSinceMs;
  if (failingFor >= policy.giveUpMs) {
    return { retry: false, reason: `gave up after ${failure.failures} attempts over ${formatDuration(failingFor)}` };
  }
  const backoff = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failure.failures - 1, 30));
  const jittered = backoff / 2 + (random() * backoff) / 2;
  const delayMs = Math.round(Math.max(jittered, failure.retryAfterMs ?? 0));
  return { retry: true, delayMs };
}

export function formatDuration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')} s`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1).replace(/\.0$/, '')} h`;
}
