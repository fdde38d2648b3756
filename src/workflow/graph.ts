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
 * - A job the planner could not run because of an error (decision.failure) ends `failure` with
 *   the reason as its error, never `skipped`.
 *
 * Reusable workflows (jobs of a called workflow carry their CallFrame):
 * - Each call instance (one per combination of the caller's matrix) is a scope: its jobs' `needs`
 *   name jobs of the same call, and their status functions look only inside it.
 * - A call starts once the calling job's needs have finished and its `if:` (default success())
 *   holds; then `with:` is evaluated if the planner could not, and jobs whose runs-on, name or
 *   matrix read `inputs` are expanded again. A false `if:` skips all its jobs; an error (a bad
 *   input type) fails them with the reason.
 * - A job that needs the caller waits for every job of every call instance.
 *   `needs.<caller>.result` rolls up all their results like a matrix job's, and
 *   `needs.<caller>.outputs` are the called workflow's `on.workflow_call.outputs`, evaluated over
 *   its `jobs` context per call instance, merged in the order the instances finished.
 * - The caller's `strategy`: fail-fast cancels the other call instances, max-parallel bounds how
 *   many run at once.
 */
import type { JobConclusion, JobResult } from '../job/result.ts';
import { callInputs } from './call-inputs.ts';
import { evaluateCondition, evaluateExpression, interpolate } from './expressions.ts';
import { cancelledResult, failedResult, failureIsAllowed, mergeOutputs, readsContexts, rollUp, skippedResult } from './graph-results.ts';
import type { CallFrame, InstanceStrategy, JobDef, NeedsEntry, PlannedJob } from './model.ts';
import { expandJob, matrixProblem } from './planner.ts';

export { failureIsAllowed } from './graph-results.ts';

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

function strategyContext(s: InstanceStrategy): Record<string, unknown> {
  return { 'fail-fast': s.failFast, 'job-index': s.jobIndex, 'job-total': s.jobTotal, 'max-parallel': s.maxParallel ?? s.jobTotal };
}

/**
 * The contexts a job-level expression (`if:`, `concurrency:`) sees once its needs settled. A job
 * of a called workflow sees that workflow's inputs instead of the run's.
 */
export function jobContexts(p: PlannedJob, needs: Record<string, NeedsEntry>, base: Record<string, unknown>): Record<string, unknown> {
  return {
    ...base,
    ...(p.instance.inputs ? { inputs: p.instance.inputs } : {}),
    needs,
    matrix: p.instance.matrix,
    strategy: strategyContext(p.instance.strategy),
  };
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

/** `needs.<name>` as a job writes it, and the node (in its scope) that it means. */
interface Need {
  name: string;
  id: string;
}

/** One job (all its matrix instances) in one scope: the run, or one call instance. */
interface Group {
  kind: 'job';
  id: string;
  needs: Need[];
  instances: PlannedJob[];
  /** In the order they finished. */
  finished: Array<{ planned: PlannedJob; result: JobResult }>;
  running: number;
  failFastTriggered: boolean;
  /** True once a job that reads needs in its matrix/runs-on/name was expanded with them. */
  expanded: boolean;
  /** The calls it runs in, outermost first. */
  frames: FrameState[];
}

/** A job that calls a reusable workflow, in its scope: what `needs: <caller>` waits for. */
interface CallNode {
  kind: 'call';
  id: string;
  needs: Need[];
  frames: FrameState[];
  /** Call instances whose jobs have all finished, in that order (for outputs). */
  finished: FrameState[];
}

type Gate = 'pending' | 'open' | { closed: 'skipped' | 'cancelled' } | { closed: 'failure'; error: string };

/** One call instance: its gate, and every job group inside it (nested calls included). */
interface FrameState {
  frame: CallFrame;
  node: CallNode;
  parent?: FrameState;
  gate: Gate;
  members: Group[];
  /** Set when fail-fast of the caller's matrix cancelled this call instance. */
  failFastCancelled: boolean;
}

const scopeOf = (frame: CallFrame | undefined): string => (frame ? `${frame.key} / ` : '');

class GraphRun {
  readonly #plan: PlannedJob[];
  readonly #runJob: RunJob;
  readonly #opts: GraphOptions;
  readonly #nodes = new Map<string, Group | CallNode>();
  readonly #frames = new Map<CallFrame, FrameState>();
  readonly #results = new Map<string, JobResult>();
  readonly #pending: PlannedJob[];
  readonly #running = new Map<string, AbortController>();
  #resolve: (() => void) | undefined;

  constructor(plan: PlannedJob[], runJob: RunJob, opts: GraphOptions) {
    this.#plan = plan;
    this.#runJob = runJob;
    this.#opts = opts;
    this.#pending = [...plan];
    for (const p of plan) this.#register(p);
  }

  #register(p: PlannedJob): void {
    const call = p.instance.call;
    const id = `${scopeOf(call)}${p.instance.job.id}`;
    let group = this.#nodes.get(id) as Group | undefined;
    if (!group) {
      const frames = this.#frameChain(call);
      group = { kind: 'job', id, needs: this.#scopedNeeds(p.instance.job, call), instances: [], finished: [], running: 0, failFastTriggered: false, expanded: false, frames };
      this.#nodes.set(id, group);
      for (const fs of frames) fs.members.push(group);
    }
    group.instances.push(p);
  }

  #scopedNeeds(job: JobDef, frame: CallFrame | undefined): Need[] {
    return job.needs.map((name) => ({ name, id: `${scopeOf(frame)}${name}` }));
  }

  /** The frame states of a call chain, outermost first, created on first sight. */
  #frameChain(frame: CallFrame | undefined): FrameState[] {
    if (!frame) return [];
    const outer = this.#frameChain(frame.parent);
    let state = this.#frames.get(frame);
    if (!state) {
      const nodeId = `${scopeOf(frame.parent)}${frame.job.id}`;
      let node = this.#nodes.get(nodeId) as CallNode | undefined;
      if (!node) {
        node = { kind: 'call', id: nodeId, needs: this.#scopedNeeds(frame.job, frame.parent), frames: [], finished: [] };
        this.#nodes.set(nodeId, node);
      }
      state = { frame, node, gate: 'pending', members: [], failFastCancelled: false, ...(outer.length > 0 ? { parent: outer[outer.length - 1] } : {}) };
      node.frames.push(state);
      this.#frames.set(frame, state);
    }
    return [...outer, state];
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
    return this.#nodes.get(`${scopeOf(p.instance.call)}${p.instance.job.id}`) as Group;
  }

  #done(id: string): boolean {
    const node = this.#nodes.get(id);
    if (!node) return false;
    if (node.kind === 'job') return node.finished.length === node.instances.length;
    return node.frames.every((fs) => this.#frameDone(fs));
  }

  #frameDone(fs: FrameState): boolean {
    return fs.members.every((g) => g.finished.length === g.instances.length);
  }

  /** Starts or settles every pending job that can go now; resolves the run when all are done. */
  #pump(): void {
    // Settling one job can make an earlier one in plan order ready: repeat until nothing moves.
    while (this.#pumpOnce());
    if (this.#pending.length > 0 && this.#running.size === 0) {
      // Nothing runs and nothing can start: the remaining jobs wait on each other.
      for (const p of [...this.#pending]) {
        const needs = this.#group(p).needs.map((n) => n.name);
        this.#settle(p, failedResult(`job ${p.instance.job.id} is part of a needs cycle (needs: ${needs.join(', ')}); break the cycle`));
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
        this.#settle(p, p.decision.failure ? failedResult(p.decision.reason) : skippedResult());
        continue;
      }
      const unknown = group.needs.find((n) => !this.#nodes.has(n.id));
      if (unknown !== undefined) {
        this.#settle(p, failedResult(`job ${p.instance.job.id} needs "${unknown.name}", which is not a job of this workflow; fix its needs list`));
        continue;
      }
      const gate = this.#gates(group);
      if (gate === 'changed') return true; // the pending list changed: start a new pass
      if (gate === 'pending') continue;
      if (gate !== 'open') {
        this.#settle(p, gate.closed === 'failure' ? failedResult(gate.error) : gate.closed === 'cancelled' ? cancelledResult() : skippedResult());
        continue;
      }
      if (!group.needs.every((n) => this.#done(n.id))) continue;
      if (!group.expanded && readsContexts(p.instance.job, ['needs'])) {
        this.#expand(group, this.#needsFor(group));
        return true;
      }
      if (group.failFastTriggered || group.frames.some((fs) => fs.failFastCancelled)) {
        this.#settle(p, cancelledResult());
        continue;
      }
      const needs = this.#needsFor(group);
      let runs: boolean;
      try {
        runs = evaluateCondition(p.instance.job.if ?? 'success()', jobContexts(p, needs, this.#baseContexts()), this.#statusFor(group));
      } catch (err) {
        this.#settle(p, failedResult(`job ${p.instance.job.id}: ${messageOf(err)}`));
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

  /** The calls around a group, outermost first: the first that is not open decides. */
  #gates(group: Group): Gate | 'changed' {
    for (const fs of group.frames) {
      const gate = this.#gate(fs);
      if (gate !== 'open') return gate;
    }
    return 'open';
  }

  /** Opens a call instance once its caller's needs are done and its `if:` holds (or closes it). */
  #gate(fs: FrameState): Gate | 'changed' {
    if (fs.gate !== 'pending') return fs.gate;
    const { frame, node } = fs;
    if (fs.parent && fs.parent.gate !== 'open') return fs.parent.gate; // #gates opens outer calls first
    if (!node.needs.every((n) => this.#done(n.id))) return 'pending';
    const close = (gate: Exclude<Gate, 'pending' | 'open'>): Gate => (fs.gate = gate);
    const missing = node.needs.find((n) => !this.#nodes.has(n.id));
    if (missing) return close({ closed: 'failure', error: `job ${frame.job.id} needs "${missing.name}", which is not a job of this workflow; fix its needs list` });
    const needs = this.#needsOf(node.needs);
    const callerInputs = fs.parent?.frame.inputs ?? frame.callerInputs;
    const contexts = { ...this.#baseContexts(), inputs: callerInputs, needs, matrix: frame.matrix, strategy: strategyContext(frame.strategy) };
    let runs: boolean;
    try {
      runs = evaluateCondition(frame.job.if ?? 'success()', contexts, this.#statusFor(node));
    } catch (err) {
      return close({ closed: 'failure', error: `job ${frame.job.id}: ${messageOf(err)}` });
    }
    if (!runs) return close({ closed: this.#runCancelled ? 'cancelled' : 'skipped' });
    const limit = frame.strategy.maxParallel;
    const active = node.frames.filter((other) => other.gate === 'open' && !this.#frameDone(other)).length;
    if (limit !== undefined && limit > 0 && active >= limit) return 'pending';
    frame.needs = needs;
    frame.callerInputs = callerInputs;
    fs.gate = 'open';
    if (frame.inputs !== undefined) return 'open';
    try {
      frame.inputs = callInputs(frame.job.call!, contexts);
    } catch (err) {
      return close({ closed: 'failure', error: `job ${frame.job.id}: ${messageOf(err)}` });
    }
    // The planner could not evaluate with: (it reads the caller's needs): the jobs learn their inputs now.
    let changed = false;
    for (const group of fs.members) {
      for (const p of group.instances) if (p.instance.call === frame) p.instance.inputs = frame.inputs;
      const direct = group.frames[group.frames.length - 1] === fs;
      if (direct && readsContexts(group.instances[0]!.instance.job, ['inputs']) && !readsContexts(group.instances[0]!.instance.job, ['needs'])) {
        this.#expand(group, {});
        changed = true;
      }
    }
    return changed ? 'changed' : 'open';
  }

  /** Replaces a placeholder by the instances its matrix, runs-on and name yield now. */
  #expand(group: Group, needs: Record<string, NeedsEntry>): void {
    group.expanded = true;
    const placeholder = group.instances.find((p) => this.#pending.includes(p));
    if (!placeholder || group.instances.length !== 1) return;
    const { workflow, job, call } = placeholder.instance;
    const contexts = { ...this.#baseContexts(), ...(call?.inputs ? { inputs: call.inputs } : {}), needs };
    const problem = matrixProblem(job, contexts);
    const fresh: PlannedJob[] = expandJob(workflow, job, contexts, call).map((instance) => ({
      instance,
      decision: problem ? { runs: false, reason: problem, failure: true } : { runs: true },
    }));
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
    const counts = failed && !failureIsAllowed(result);
    if (counts && p.instance.strategy.failFast && group.instances.length > 1 && !group.failFastTriggered) {
      group.failFastTriggered = true;
      for (const sibling of group.instances) this.#running.get(sibling.instance.key)?.abort();
    }
    for (const fs of group.frames) {
      if (counts && fs.frame.strategy.failFast && fs.node.frames.length > 1) this.#failFastCall(fs);
      if (this.#frameDone(fs) && !fs.node.finished.includes(fs)) fs.node.finished.push(fs);
    }
    this.#opts.onJobEnd?.(p, result);
  }

  /** A failed call instance cancels its caller's other instances (fail-fast of the caller's matrix). */
  #failFastCall(failing: FrameState): void {
    for (const fs of failing.node.frames) {
      if (fs === failing || fs.failFastCancelled) continue;
      fs.failFastCancelled = true;
      for (const group of fs.members) for (const p of group.instances) this.#running.get(p.instance.key)?.abort();
    }
  }

  #continueOnError(p: PlannedJob): boolean {
    const value = p.instance.job.continueOnError;
    if (typeof value === 'boolean') return value;
    try {
      const sole = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(value);
      const contexts = jobContexts(p, this.#needsFor(this.#group(p)), this.#baseContexts());
      const raw = sole?.[1] !== undefined ? evaluateExpression(sole[1].trim(), contexts) : interpolate(value, contexts);
      return raw === true || raw === 'true';
    } catch {
      return false;
    }
  }

  #needsFor(group: Group): Record<string, NeedsEntry> {
    return this.#needsOf(group.needs);
  }

  #needsOf(list: Need[]): Record<string, NeedsEntry> {
    const needs: Record<string, NeedsEntry> = {};
    for (const need of list) {
      const node = this.#nodes.get(need.id);
      if (node) needs[need.name] = this.#aggregate(node);
    }
    return needs;
  }

  /** `needs.<id>` for a finished job (all its matrix instances) or call (all its jobs). */
  #aggregate(node: Group | CallNode): NeedsEntry {
    if (node.kind === 'job') {
      return { result: rollUp(node.finished.map((f) => f.result)), outputs: mergeOutputs(node.finished.map((f) => f.result.outputs)) };
    }
    const results = node.frames.flatMap((fs) => fs.members.flatMap((g) => g.finished.map((f) => f.result)));
    return { result: rollUp(results), outputs: mergeOutputs(node.finished.map((fs) => this.#callOutputs(fs))) };
  }

  /** `on.workflow_call.outputs` of one call instance, over its `jobs` context; '' where one cannot be evaluated. */
  #callOutputs(fs: FrameState): Record<string, string> {
    const called = fs.frame.job.call?.workflow;
    if (!called || fs.gate !== 'open') return {};
    const jobs: Record<string, NeedsEntry> = {};
    for (const job of called.jobs) {
      const node = this.#nodes.get(`${fs.frame.key} / ${job.id}`);
      if (node) jobs[job.id] = this.#aggregate(node);
    }
    const contexts = { ...this.#baseContexts(), inputs: fs.frame.inputs ?? {}, jobs };
    const outputs: Record<string, string> = {};
    for (const [name, output] of Object.entries(called.on.workflowCall?.outputs ?? {})) {
      try {
        outputs[name] = interpolate(output.value, contexts);
      } catch {
        outputs[name] = '';
      }
    }
    return outputs;
  }

  #statusFor(node: Group | CallNode) {
    return {
      // Transitive, as GitHub does (actions/runner#491, #2205): a job whose grandparent failed or
      // was skipped is skipped by default even when its direct need (an always() job) succeeded.
      success: () => !this.#runCancelled && this.#ancestors(node).every((g) => this.#aggregate(g).result === 'success'),
      failure: () => this.#ancestors(node).some((g) => this.#aggregate(g).result === 'failure'),
      cancelled: () => this.#runCancelled,
    };
  }

  #ancestors(node: Group | CallNode): Array<Group | CallNode> {
    const seen = new Set<string>();
    const out: Array<Group | CallNode> = [];
    const visit = (n: Group | CallNode): void => {
      for (const need of n.needs) {
        const dep = this.#nodes.get(need.id);
        if (!dep || seen.has(need.id)) continue;
        seen.add(need.id);
        out.push(dep);
        visit(dep);
      }
    };
    visit(node);
    return out;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
