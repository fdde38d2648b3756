/**
 * The planner: which workflows and job instances an event runs, and why not. Pure: no I/O.
 *
 * Rules worth knowing:
 * - A workflow is skipped (PlannedWorkflow.skipped) when its trigger or filters do not match,
 *   or when the head commit message holds a skip marker (push and pull_request events; for a
 *   pull_request the caller passes the PR head commit's message). Its `jobs` are still listed
 *   with their own verdicts, so "run anyway" tools can use them; nothing of a skipped workflow
 *   should run on an event.
 * - A job `if:` is decided here only when it reads nothing but github, inputs, vars, matrix and
 *   strategy and calls no status function. A false answer skips the job; a true one means
 *   "runs if its needs succeed", which the job graph runner enforces. Any other `if:` (reading
 *   needs, or calling always()/failure()/…) is left to the graph runner: the job is marked runs.
 * - A job needing a job that is skipped here is skipped too, unless its `if:` calls a status
 *   function (then the graph runner decides, as GitHub does).
 * - A matrix, `runs-on` or `name` that reads `needs` cannot be known yet: the job is planned as
 *   one instance with an empty matrix and the raw `runs-on` text; the graph runner must call
 *   expandJob again once needs are known.
 * - A job that cannot run because of an error (a matrix over GitHub's limit or that does not
 *   evaluate, an `if:` that cannot be evaluated) is planned as a failure with the reason, never
 *   as skipped: branch protection counts a skipped check as passing.
 * - A job that calls a reusable workflow (`uses:`) becomes the called workflow's jobs, once per
 *   combination of the caller's matrix, keyed and named `caller / called` as GitHub shows them
 *   (see CallFrame). The caller's `if:` and needs decide for all of them; their own `needs` stay
 *   within the call. `with:` is evaluated into the called workflow's `inputs` when it reads only
 *   plan-time contexts; when it reads the caller's needs, the graph runner does it when the call
 *   starts (and until then the called jobs' `inputs`-dependent fields wait, like `needs` above).
 */
import { callInputs, callInputsKnown } from './call-inputs.ts';
import { conditionExpression as conditionText, contextsUsedBy, evaluateCondition, evaluateValue, functionsUsedBy, interpolate, type Contexts } from './expressions.ts';
import { combinationLabel, expandMatrix, MatrixError, type MatrixCombination } from './matrix.ts';
import type { CallFrame, DispatchInput, GithubContext, JobDecision, JobDef, JobInstance, PlannedJob, PlannedWorkflow, Workflow } from './model.ts';
import { MAX_WORKFLOW_LEVELS } from './schema.ts';
import { skipMarkerIn, triggerMismatch } from './trigger-match.ts';

export interface PlanEvent {
  name: 'push' | 'pull_request' | 'workflow_dispatch' | string;
  /** pull_request: opened, synchronize (or Forgejo's synchronized), reopened, closed... */
  action?: string;
  /** refs/heads/main, refs/tags/v1 (push); for PRs the head ref. */
  ref: string;
  /** PR base branch name. */
  baseRef?: string;
  sha: string;
  before?: string;
  deleted?: boolean;
  headCommitMessage?: string;
  /** github.event */
  payload: Record<string, unknown>;
  inputs?: Record<string, string>;
}

/** Contexts whose values are known when the event arrives. */
export const PLAN_TIME_CONTEXTS = ['github', 'inputs', 'vars', 'matrix', 'strategy'];

const STATUS_FUNCTIONS = ['success', 'failure', 'cancelled', 'always'];

export function planWorkflows(
  event: PlanEvent,
  workflows: Workflow[],
  changedFiles: string[] | undefined,
  github: GithubContext,
  vars: Record<string, string> = {},
): PlannedWorkflow[] {
  return workflows.map((workflow) => planWorkflow(event, workflow, changedFiles, github, vars));
}

function planWorkflow(
  event: PlanEvent,
  workflow: Workflow,
  changedFiles: string[] | undefined,
  github: GithubContext,
  vars: Record<string, string>,
): PlannedWorkflow {
  let skipped = triggerMismatch(workflow.on, event, changedFiles);
  if (!skipped) {
    const marker = skipMarkerIn(event);
    if (marker) skipped = `skip marker "${marker}" in the head commit message`;
  }
  const contexts: Contexts = {
    github: { ...github, workflow: github.workflow || workflow.name },
    inputs: event.name === 'workflow_dispatch' ? dispatchInputs(workflow, event.inputs ?? {}) : {},
    vars,
    needs: {},
  };
  const jobs = planJobs(workflow, contexts);
  return skipped ? { workflow, skipped, jobs } : { workflow, jobs };
}

/** The `inputs` context: given values over defaults, typed by the input's declared type. */
export function dispatchInputs(workflow: Workflow, given: Record<string, string>): Record<string, unknown> {
  const declared = workflow.on.workflowDispatch?.inputs ?? {};
  const out: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(declared)) {
    const raw = given[name] ?? (input.default !== undefined ? String(input.default) : undefined);
    out[name] = typedInput(input, raw);
  }
  for (const [name, value] of Object.entries(given)) if (!(name in out)) out[name] = value;
  return out;
}

function typedInput(input: DispatchInput, raw: string | undefined): unknown {
  if (input.type === 'boolean') return raw === undefined ? false : raw === 'true';
  if (input.type === 'number') return raw === undefined || raw === '' ? null : Number(raw);
  return raw ?? '';
}

/** Plans one workflow's jobs; `frame` is set when it runs as a called workflow. */
export function planJobs(workflow: Workflow, contexts: Contexts, frame?: CallFrame): PlannedJob[] {
  const byId = new Map(workflow.jobs.map((job) => [job.id, job]));
  const planned = new Map<string, PlannedJob[]>();
  const planOne = (job: JobDef, trail: Set<string>): PlannedJob[] => {
    const done = planned.get(job.id);
    if (done) return done;
    // Needs that are wholly skipped at plan time skip this job, unless its if: handles status.
    let needsReason: string | undefined;
    for (const need of job.needs) {
      const needed = byId.get(need);
      if (!needed || trail.has(need)) continue; // validation reports unknown needs and cycles
      const results = planOne(needed, new Set([...trail, job.id]));
      if (results.length > 0 && results.every((r) => !r.decision.runs) && !callsStatus(job.if)) {
        needsReason ??= `needs "${need}", which is skipped`;
      }
    }
    const result = job.call ? planCall(workflow, job, contexts, frame, needsReason) : planStepsJob(workflow, job, contexts, frame, needsReason);
    planned.set(job.id, result);
    return result;
  };
  return workflow.jobs.flatMap((job) => planOne(job, new Set()));
}

function planStepsJob(workflow: Workflow, job: JobDef, contexts: Contexts, frame: CallFrame | undefined, needsReason: string | undefined): PlannedJob[] {
  const matrixReason = matrixProblem(job, contexts);
  return expandJob(workflow, job, contexts, frame).map((instance) => ({
    instance,
    decision: needsReason ? skip(needsReason) : matrixReason ? fail(matrixReason) : decideIf(job, instance, contexts),
  }));
}

/** A call job: the called workflow's jobs, once per instance (matrix combination) of the caller. */
function planCall(workflow: Workflow, job: JobDef, contexts: Contexts, parent: CallFrame | undefined, needsReason: string | undefined): PlannedJob[] {
  const call = job.call!;
  const matrixReason = matrixProblem(job, contexts);
  const levels = callDepth(parent) + 2; // the top-level workflow is level 1
  return expandJob(workflow, job, contexts, parent).flatMap((caller): PlannedJob[] => {
    let decision = needsReason ? skip(needsReason) : matrixReason ? fail(matrixReason) : decideIf(job, caller, contexts);
    const called = call.workflow;
    if (!called || levels > MAX_WORKFLOW_LEVELS) {
      // Validation refuses both; a plan made anyway shows the call itself as failed.
      const why = called ? `reusable workflows nest deeper than GitHub's ${MAX_WORKFLOW_LEVELS} levels` : `the called workflow ${call.path} was not loaded`;
      return [{ instance: caller, decision: fail(`jobs.${job.id}.uses: ${why}`) }];
    }
    const frame: CallFrame = {
      key: caller.key,
      displayName: caller.displayName,
      job,
      workflow,
      matrix: caller.matrix,
      strategy: caller.strategy,
      callerInputs: (contexts.inputs as Record<string, unknown> | undefined) ?? {},
      ...(parent ? { parent } : {}),
    };
    const scoped = instanceContexts(contexts, caller);
    if (decision.runs && callInputsKnown(call, scoped)) {
      try {
        frame.inputs = callInputs(call, scoped);
      } catch (err) {
        decision = fail(`jobs.${job.id}.${(err as Error).message}`);
      }
    }
    const inner: Contexts = { github: contexts.github, vars: contexts.vars, needs: {}, ...(frame.inputs ? { inputs: frame.inputs } : {}) };
    const members = planJobs(called, inner, frame);
    if (decision.runs) return members;
    // The call does not run: neither does any of its jobs, for the caller's reason.
    const denied: JobDecision = { ...decision, reason: `calling job "${job.id}": ${decision.reason}` };
    return members.map((p) => ({ instance: p.instance, decision: denied }));
  });
}

/** How many calls deep a frame is (0 outside any call). */
function callDepth(frame: CallFrame | undefined): number {
  let depth = 0;
  for (let f = frame; f; f = f.parent) depth++;
  return depth;
}

function skip(reason: string): JobDecision {
  return { runs: false, reason };
}

function fail(reason: string): JobDecision {
  return { runs: false, reason, failure: true };
}

function callsStatus(cond: string | undefined): boolean {
  if (!cond) return false;
  return functionsUsedBy(conditionText(cond)).some((f) => STATUS_FUNCTIONS.includes(f));
}

/** Whether an expression (or template) only reads contexts known at plan time (a called workflow's inputs may wait for its caller's needs). */
function knownAtPlanTime(template: string, contexts: Contexts): boolean {
  return contextsUsedBy(conditionText(template)).every((c) => PLAN_TIME_CONTEXTS.includes(c) && (c === 'matrix' || c === 'strategy' || c in contexts));
}

function decideIf(job: JobDef, instance: JobInstance, contexts: Contexts): JobDecision {
  const cond = job.if;
  if (cond === undefined || cond.trim() === '') return { runs: true };
  if (callsStatus(cond) || !knownAtPlanTime(cond, contexts)) return { runs: true };
  const scoped = instanceContexts(contexts, instance);
  try {
    // success() is true here: needs are checked by the graph runner, so only `false` is final.
    const passing = { success: () => true, failure: () => false, cancelled: () => false };
    return evaluateCondition(cond, scoped, passing) ? { runs: true } : skip(`if: ${cond.trim()} was false`);
  } catch (err) {
    return fail(`if: ${cond.trim()} could not be evaluated: ${(err as Error).message}`);
  }
}

function instanceContexts(contexts: Contexts, instance: JobInstance): Contexts {
  return {
    ...contexts,
    matrix: instance.matrix,
    strategy: {
      'fail-fast': instance.strategy.failFast,
      'job-index': instance.strategy.jobIndex,
      'job-total': instance.strategy.jobTotal,
      'max-parallel': instance.strategy.maxParallel ?? instance.strategy.jobTotal,
    },
  };
}

/**
 * Expands one job into its instances: matrix combinations, evaluated `runs-on` and display name.
 * `contexts` holds github, inputs, vars and (at run time) needs. A matrix that cannot be expanded
 * yields one instance (matrixProblem gives the reason to fail it).
 * `frame`: the call the job runs in, if any; it prefixes the key and display name.
 */
export function expandJob(workflow: Workflow, job: JobDef, contexts: Contexts, frame?: CallFrame): JobInstance[] {
  let combos: MatrixCombination[];
  try {
    combos = matrixCombinations(job, contexts);
  } catch {
    combos = [{}]; // the planner and the graph runner fail the job with matrixProblem's reason
  }
  if (combos.length === 0) combos = [{}];
  const total = combos.length;
  const used = new Set<string>();
  return combos.map((matrix, index) => {
    const strategy = {
      failFast: job.strategy?.failFast ?? true,
      ...(job.strategy?.maxParallel !== undefined ? { maxParallel: job.strategy.maxParallel } : {}),
      jobIndex: index,
      jobTotal: total,
    };
    const draft: JobInstance = {
      workflow,
      job,
      key: job.id,
      displayName: job.id,
      matrix,
      strategy,
      runsOn: job.runsOn,
      ...(frame ? { call: frame } : {}),
      ...(frame?.inputs ? { inputs: frame.inputs } : {}),
    };
    const scoped = instanceContexts(contexts, draft);
    const label = Object.keys(matrix).length > 0 ? combinationLabel(matrix) : '';
    let key = label ? `${job.id} (${label})` : job.id;
    for (let n = 2; used.has(key); n++) key = `${label ? `${job.id} (${label})` : job.id} #${n}`;
    used.add(key);
    const name = job.name !== undefined ? evaluateOrRaw(job.name, scoped) : job.id;
    // GitHub appends the matrix values unless the name already uses an expression.
    const suffixed = label && !(job.name ?? '').includes('${{') ? `${name} (${label})` : name;
    return {
      ...draft,
      key: frame ? `${frame.key} / ${key}` : key,
      displayName: frame ? `${frame.displayName} / ${suffixed}` : suffixed,
      runsOn: evaluateOrRaw(job.runsOn, scoped),
    };
  });
}

/** Interpolates when every context it reads is present; otherwise keeps the raw text. */
function evaluateOrRaw(template: string, contexts: Contexts): string {
  if (!template.includes('${{')) return template;
  const available = new Set(Object.keys(contexts));
  const needsMissing = contextsUsedBy(conditionText(template)).some(
    (c) => !available.has(c) || (c === 'needs' && Object.keys((contexts.needs as object) ?? {}).length === 0),
  );
  if (needsMissing) return template;
  try {
    return interpolate(template, contexts);
  } catch {
    return template;
  }
}

/** Waiting for needs (or a called workflow's inputs) is not a problem. */
class MatrixNeedsDeferred extends MatrixError {}

/** Why the job's matrix cannot be expanded (bad fromJSON, empty axis, too many jobs), if so. */
export function matrixProblem(job: JobDef, contexts: Contexts): string | undefined {
  try {
    matrixCombinations(job, contexts);
    return undefined;
  } catch (err) {
    return err instanceof MatrixNeedsDeferred ? undefined : `strategy.matrix: ${(err as Error).message}`;
  }
}

function matrixCombinations(job: JobDef, contexts: Contexts): MatrixCombination[] {
  const raw = job.strategy?.matrix;
  if (raw === undefined) return [{}];
  const matrix = resolveMatrixValue(raw, contexts);
  if (matrix === null || typeof matrix !== 'object' || Array.isArray(matrix)) {
    throw new MatrixError('strategy.matrix must evaluate to a mapping');
  }
  const resolved: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(matrix as Record<string, unknown>)) resolved[key] = resolveMatrixValue(value, contexts);
  return expandMatrix(resolved);
}

/** A matrix (or axis, include, exclude) given as `${{ fromJSON(…) }}` is evaluated first. */
function resolveMatrixValue(value: unknown, contexts: Contexts): unknown {
  if (typeof value !== 'string' || !value.includes('${{')) return value;
  const needs = (contexts.needs ?? {}) as Record<string, unknown>;
  const used = contextsUsedBy(conditionText(value));
  if ((Object.keys(needs).length === 0 && used.includes('needs')) || (used.includes('inputs') && !('inputs' in contexts))) {
    throw new MatrixNeedsDeferred('the matrix reads needs (or inputs that wait for them), so it is expanded once the needed jobs finish');
  }
  return evaluateValue(value, contexts);
}
