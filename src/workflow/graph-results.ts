/** Results the job graph runner makes itself (jobs it settles without running them), and GitHub's roll-ups of results. */
import type { JobConclusion, JobResult } from '../job/result.ts';
import { conditionExpression, contextsUsedBy } from './expressions.ts';
import type { JobDef, NeedsEntry } from './model.ts';

/** True when this failed result must not fail its dependents or the run (job continue-on-error). */
export function failureIsAllowed(result: JobResult): boolean {
  return result.allowedFailure === true;
}

/**
 * `needs.<id>.result` over a job's instances (or all the jobs of a call): failure if any failed,
 * else cancelled if any was cancelled, else success if any ran, else skipped.
 */
export function rollUp(results: JobResult[]): NeedsEntry['result'] {
  if (results.some((r) => (r.conclusion === 'failure' || r.conclusion === 'timed_out') && !failureIsAllowed(r))) return 'failure';
  if (results.some((r) => r.conclusion === 'cancelled')) return 'cancelled';
  return results.some((r) => r.conclusion !== 'skipped') ? 'success' : 'skipped';
}

/** Outputs merged in finishing order: the last one that set a value wins; empty values do not overwrite. */
export function mergeOutputs(outputs: Array<Record<string, string>>): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const o of outputs) for (const [k, v] of Object.entries(o)) if (v !== '') merged[k] = v;
  return merged;
}

/** True when the job's matrix, runs-on or name reads one of these contexts. */
export function readsContexts(job: JobDef, names: string[]): boolean {
  const templates: string[] = [job.runsOn, ...(job.name !== undefined ? [job.name] : [])];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') templates.push(value);
    else if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(job.strategy?.matrix);
  return templates.some((t) => t.includes('${{') && contextsUsedBy(conditionExpression(t)).some((c) => names.includes(c)));
}

function baseResult(conclusion: JobConclusion, startedAt = new Date()): JobResult {
  return { conclusion, steps: [], outputs: {}, logPath: '', startedAt: startedAt.toISOString(), durationMs: Date.now() - startedAt.getTime() };
}

export function skippedResult(): JobResult {
  return baseResult('skipped');
}

export function cancelledResult(): JobResult {
  return baseResult('cancelled');
}

export function failedResult(error: string, startedAt?: Date): JobResult {
  return { ...baseResult('failure', startedAt), error };
}
