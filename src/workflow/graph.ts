/**
 * The job graph runner: starts jobs when everything they `need` has finished, in parallel up to
 * a limit, with GitHub's rules for job `if:`, skipped dependencies, matrix fail-fast and
 * max-parallel, `needs.<job>.result/outputs` of matrix jobs and job-level continue-on-error.
 *
 * GitHub rules followed here:
 * - A job's `if:` defaults to `success()`: every job up its needs chain (not only the direct
 *   needs) ended in success, so a skipped or failed ancestor skips it. `failure()` is true when
 *   any job up its needs chain failed; `always()` runs regardless; `cancelled()` when the run
 *   was cancelled.
 * - `needs.<job>.result` of a matrix job: failure if any instance failed, else cancelled if any
 *   was cancelled, else success if any succeeded, else skipped.
 * - `needs.<job>.outputs` of a matrix job: instances' outputs merged in the order they finished,
 *   so the last finished instance that set an output wins; empty values do not overwrite.
 * - fail-fast (default true): when one instance of a matrix fails, running siblings are cancelled
 *   (their signal is aborted) and pending ones end `cancelled` without running. An instance with
 *   `continue-on-error: true` does not trigger it (GitHub's "experimental" matrix pattern).
 * - Job `continue-on-error: true`: the job's own conclusion stays `failure` (what the user sees),
 *   but dependents see `success` and the run does not fail: see failureIsAllowed / runConclusion.
 * - A job whose matrix, `runs-on` or `name` reads `needs` is planned as one placeholder instance;
 *   once its needs finish it is expanded again (planner's expandJob) into its real instances.
 */
import type { JobConclusion, JobResult } from '../job/result.ts';
import { conditionExpression, contextsUsedBy, evaluateCondition, evaluateExpression, interpolate } from './expressions.ts';
import type { JobDef, NeedsEntry, PlannedJob } from './model.ts';
import { expandJob } from './planner.ts';

export interface GraphOptions {
  /** Jobs running at once, over the whole run. */
  maxParallel: number;
  /** Aborting cancels the run: running jobs get their signal aborted, pending ones end cancelled. */
  signal?: AbortSignal;
  onJobStart?(p: PlannedJob): void;
  onJobEnd?(p: PlannedJob, r: JobResult): void;
  /** Run-level contexts for job `if:` and `continue-on-error` (github, vars, inputs). */
  contexts?: { github?: unknown; vars?: Record<string, string>; inputs?: Record<string, unknown> };
}

export type RunJob = (job: PlannedJob, needs: Record<string, NeedsEntry>, signal: AbortSignal) => Promise<JobResult>;

/** True when this failed result must not fail its dependents or the run (job continue-on-error). */
/** The contexts a job-level expression (`if:`, `concurrency:`) sees once its needs settled. */
export function jobContexts(p: PlannedJob, needs: Record<string, NeedsEntry>, base: Record<string, unknown>): Record<string, unknown> {
  const s = p.instance.strategy;
  return {
    ...base,
    needs,
    matrix: p.instance.matrix,
    strategy: { 'fail-fast': s.failFast, 'job-index': s.jobIndex, 'job-total': s.jobTotal, 'max-parallel': s.maxParallel ?? s.jobTotal },
  };
}

export function failureIsAllowed(result: JobResult): boolean {
  return result.allowedFailure === true;
}

/** The run's conclusion from its job results, as GitHub rolls them up. */
export function runConclusion(results: Iterable<JobResult>): JobConclusion {
  const list = [...results];
  const counts = (c: JobConclusion) => list.some((r) => r.conclusion === c && !failureIsAllowed(r));
  if (counts('failure') || counts('timed_out')) return 'failure';
  if (counts('cancelled')) return 'cancelled';
  if (list.length > 0 && list.every((r) => r.conclusion === 'skipped')) return 'skipped';
  return 'success';
}

export async function runJobGraph(plan: PlannedJob[], runJob: RunJob, opts: GraphOptions): Promise<Map<string, JobResult>> {
  return new GraphRun(plan, runJob, opts).run();
}

interface Group {
  id: string;
  needs: string[];
  instances: PlannedJob[];
  /** In the order they finished. */
  finished: Array<{ planned: PlannedJob; result: JobResult }>;
  running: number;
  failFastTriggered: boolean;
  /** True once a job that reads needs in its matrix/runs-on/name was expanded with them. */
  expanded: boolean;
}

class GraphRun {
  readonly #plan: PlannedJob[];
  readonly #runJob: RunJob;
  readonly #opts: GraphOptions;
  readonly #groups = new Map<string, Group>();
  readonly #results = new Map<string, JobResult>();
  readonly #pending: PlannedJob[];
  readonly #running = new Map<string, AbortController>();
  #resolve: (() => void) | undefined;

  constructor(plan: PlannedJob[], runJob: RunJob, opts: GraphOptions) {
    this.#plan = plan;
    this.#runJob = runJob;
    this.#opts = opts;
    this.#pending = [...plan];
    for (const p of plan) {
      const id = p.instance.job.id;
      let group = this.#groups.get(id);
      if (!group) {
        group = { id, needs: p.instance.job.needs, instances: [], finished: [], running: 0, failFastTriggered: false, expanded: false };
        this.#groups.set(id, group);
      }
      group.instances.push(p);
    }
  }

  get #runCancelled(): boolean {
    return this.#opts.signal?.aborted ?? false;
  }

  async run(): Promise<Map<string, JobResult>> {
    if (this.#plan.length === 0) return this.#results;
    const done = new Promise<void>((resolve) => (this.#resolve = resolve));
    const onCancel = (): void => {
      for (const controller of this.#running.values()) controller.abort();
      this.#pump();
    };
    this.#opts.signal?.addEventListener('abort', onCancel, { once: true });
    try {
      this.#pump();
      await done;
    } finally {
      this.#opts.signal?.removeEventListener('abort', onCancel);
    }
    return this.#results;
  }

  #group(p: PlannedJob): Group {
    return this.#groups.get(p.instance.job.id) as Group;
  }

  #groupDone(id: string): boolean {
    const g = this.#groups.get(id);
    return g !== undefined && g.finished.length === g.instances.length;
  }

  /** Starts or settles every pending job that can go now; resolves the run when all are done. */
  #pump(): void {
    // Settling one job can make an earlier one in plan order ready: repeat until nothing moves.
    while (this.#pumpOnce());
    if (this.#pending.length > 0 && this.#running.size === 0) {
      // Nothing runs and nothing can start: the remaining jobs wait on each other.
      for (const p of [...this.#pending]) {
        this.#settle(p, failedResult(`job ${p.instance.job.id} is part of a needs cycle (needs: ${this.#group(p).needs.join(', ')}); break the cycle`));
      }
    }
    if (this.#pending.length === 0 && this.#running.size === 0) this.#resolve?.();
  }

  /** One pass over the pending jobs; true when any job started or settled. */
  #pumpOnce(): boolean {
    const before = this.#pending.length;
    for (const p of [...this.#pending]) {
      const group = this.#group(p);
      if (!p.decision.runs) {
        this.#settle(p, skippedResult());
        continue;
      }
      const unknown = group.needs.find((id) => !this.#groups.has(id));
      if (unknown !== undefined) {
        this.#settle(p, failedResult(`job ${group.id} needs "${unknown}", which is not a job of this workflow; fix its needs list`));
        continue;
      }
      if (!group.needs.every((id) => this.#groupDone(id))) continue;
      if (!group.expanded && readsNeeds(p.instance.job)) {
        this.#expandWithNeeds(group);
        return true; // the pending list changed: start a new pass
      }
      if (group.failFastTriggered) {
        this.#settle(p, cancelledResult());
        continue;
      }
      const needs = this.#needsFor(group);
      let runs: boolean;
      try {
        runs = evaluateCondition(p.instance.job.if ?? 'success()', this.#jobContexts(p, needs), this.#statusFor(group));
      } catch (err) {
        this.#settle(p, failedResult(`job ${group.id}: ${messageOf(err)}`));
        continue;
      }
      if (!runs) {
        this.#settle(p, this.#runCancelled ? cancelledResult() : skippedResult());
        continue;
      }
      if (this.#running.size >= Math.max(1, this.#opts.maxParallel)) continue;
      const limit = p.instance.strategy.maxParallel;
      if (limit !== undefined && limit > 0 && group.running >= limit) continue;
      this.#start(p, group, needs);
    }
    return this.#pending.length !== before;
  }

  /** Replaces a needs-dependent placeholder by the instances its matrix yields now. */
  #expandWithNeeds(group: Group): void {
    group.expanded = true;
    const placeholder = group.instances.find((p) => this.#pending.includes(p));
    if (!placeholder || group.instances.length !== 1) return;
    const { workflow, job } = placeholder.instance;
    const contexts = { ...this.#baseContexts(), needs: this.#needsFor(group) };
    const fresh: PlannedJob[] = expandJob(workflow, job, contexts).map((instance) => ({ instance, decision: { runs: true } }));
    group.instances = fresh;
    this.#pending.splice(this.#pending.indexOf(placeholder), 1, ...fresh);
  }

  #baseContexts(): Record<string, unknown> {
    return { github: this.#opts.contexts?.github ?? {}, vars: this.#opts.contexts?.vars ?? {}, inputs: this.#opts.contexts?.inputs ?? {} };
  }

  #start(p: PlannedJob, group: Group, needs: Record<string, NeedsEntry>): void {
    this.#pending.splice(this.#pending.indexOf(p), 1);
    const controller = new AbortController();
    // A job started after the run was cancelled (an always() job) must not be cancelled at once.
    this.#running.set(p.instance.key, controller);
    group.running += 1;
    this.#opts.onJobStart?.(p);
    const startedAt = new Date();
    let promise: Promise<JobResult>;
    try {
      promise = this.#runJob(p, needs, controller.signal);
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise
      .catch((err: unknown) => failedResult(`job ${p.instance.displayName} crashed: ${messageOf(err)}`, startedAt))
      .then((result) => {
        this.#running.delete(p.instance.key);
        group.running -= 1;
        this.#finish(p, group, result);
        this.#pump();
      })
      .catch(() => {
        // a listener threw; the run must still end
        this.#pump();
      });
  }

  #settle(p: PlannedJob, result: JobResult): void {
    this.#pending.splice(this.#pending.indexOf(p), 1);
    this.#finish(p, this.#group(p), result);
  }

  #finish(p: PlannedJob, group: Group, finished: JobResult): void {
    const failed = finished.conclusion === 'failure' || finished.conclusion === 'timed_out';
    const result = failed && this.#continueOnError(p) ? { ...finished, allowedFailure: true } : finished;
    this.#results.set(p.instance.key, result);
    group.finished.push({ planned: p, result });
    if (failed && !failureIsAllowed(result) && p.instance.strategy.failFast && group.instances.length > 1 && !group.failFastTriggered) {
      group.failFastTriggered = true;
      for (const sibling of group.instances) this.#running.get(sibling.instance.key)?.abort();
    }
    this.#opts.onJobEnd?.(p, result);
  }

  #continueOnError(p: PlannedJob): boolean {
    const value = p.instance.job.continueOnError;
    if (typeof value === 'boolean') return value;
    try {
      const sole = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(value);
      const contexts = this.#jobContexts(p, this.#needsFor(this.#group(p)));
      const raw = sole?.[1] !== undefined ? evaluateExpression(sole[1].trim(), contexts) : interpolate(value, contexts);
      return raw === true || raw === 'true';
    } catch {
      return false;
    }
  }

  #jobContexts(p: PlannedJob, needs: Record<string, NeedsEntry>): Record<string, unknown> {
    return jobContexts(p, needs, this.#baseContexts());
  }

  #needsFor(group: Group): Record<string, NeedsEntry> {
    const needs: Record<string, NeedsEntry> = {};
    for (const id of group.needs) {
      const dep = this.#groups.get(id);
      if (dep) needs[id] = aggregate(dep);
    }
    return needs;
  }

  #statusFor(group: Group) {
    return {
      // Transitive, as GitHub does (actions/runner#491, #2205): a job whose grandparent failed or
      // was skipped is skipped by default even when its direct need (an always() job) succeeded.
      success: () => !this.#runCancelled && this.#ancestors(group).every((g) => aggregate(g).result === 'success'),
      failure: () => this.#ancestors(group).some((g) => aggregate(g).result === 'failure'),
      cancelled: () => this.#runCancelled,
    };
  }

  #ancestors(group: Group): Group[] {
    const seen = new Set<string>();
    const out: Group[] = [];
    const visit = (g: Group): void => {
      for (const id of g.needs) {
        const dep = this.#groups.get(id);
        if (!dep || seen.has(id)) continue;
        seen.add(id);
        out.push(dep);
        visit(dep);
      }
    };
    visit(group);
    return out;
  }
}

/** True when the job's matrix, runs-on or name reads the needs context. */
function readsNeeds(job: JobDef): boolean {
  const templates: string[] = [job.runsOn, ...(job.name !== undefined ? [job.name] : [])];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') templates.push(value);
    else if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(job.strategy?.matrix);
  return templates.some((t) => t.includes('${{') && contextsUsedBy(conditionExpression(t)).includes('needs'));
}

/** `needs.<id>` for a finished job (all its matrix instances). */
function aggregate(group: Group): NeedsEntry {
  const results = group.finished.map((f) => f.result);
  const failed = results.some((r) => (r.conclusion === 'failure' || r.conclusion === 'timed_out') && !failureIsAllowed(r));
  const result: NeedsEntry['result'] = failed
    ? 'failure'
    : results.some((r) => r.conclusion === 'cancelled')
      ? 'cancelled'
      : results.some((r) => r.conclusion !== 'skipped')
        ? 'success'
        : 'skipped';
  const outputs: Record<string, string> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.outputs)) if (v !== '') outputs[k] = v;
  return { result, outputs };
}

function baseResult(conclusion: JobConclusion, startedAt = new Date()): JobResult {
  return { conclusion, steps: [], outputs: {}, logPath: '', startedAt: startedAt.toISOString(), durationMs: Date.now() - startedAt.getTime() };
}

function skippedResult(): JobResult {
  return baseResult('skipped');
}

function cancelledResult(): JobResult {
  return baseResult('cancelled');
}

function failedResult(error: string, startedAt?: Date): JobResult {
  return { ...baseResult('failure', startedAt), error };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
