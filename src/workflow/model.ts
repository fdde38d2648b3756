/**
 * The parsed workflow model: what the parser produces and the planner, the step executor and
 * the job graph runner consume. Strings that may hold `${{ }}` expressions stay raw here; they
 * are evaluated when the job or step runs, with the contexts available at that moment.
 */

/** Where a node came from, for file:line:column messages. 1-based. */
export interface SourcePos {
  line: number;
  column: number;
}

export interface RunDefaults {
  shell?: string;
  workingDirectory?: string;
}

export interface Concurrency {
  group: string;
  cancelInProgress: boolean | string;
}

export interface PushTrigger {
  branches?: string[];
  branchesIgnore?: string[];
  tags?: string[];
  tagsIgnore?: string[];
  paths?: string[];
  pathsIgnore?: string[];
}

export interface PullRequestTrigger {
  /** Default: opened, synchronize, reopened. */
  types: string[];
  branches?: string[];
  branchesIgnore?: string[];
  paths?: string[];
  pathsIgnore?: string[];
}

export interface DispatchInput {
  description?: string;
  required: boolean;
  default?: string | boolean | number;
  type: 'string' | 'boolean' | 'number' | 'choice' | 'environment';
  options?: string[];
}

/** `on.workflow_call.inputs.<id>`: what a caller passes in `with:`. */
export interface CallInput {
  description?: string;
  required: boolean;
  /** A literal, or a string that may hold an expression (github, inputs, vars). */
  default?: string | boolean | number;
  type: 'string' | 'boolean' | 'number';
}

/** `on.workflow_call`: the interface of a reusable workflow. */
export interface WorkflowCallTrigger {
  inputs: Record<string, CallInput>;
  /** Output name → `value:` expression over the `jobs` context (plus github, inputs, vars). */
  outputs: Record<string, { value: string; description?: string }>;
  secrets: Record<string, { required: boolean; description?: string }>;
}

export interface Triggers {
  push?: PushTrigger;
  pullRequest?: PullRequestTrigger;
  workflowDispatch?: { inputs: Record<string, DispatchInput> };
  /** Present when another workflow may call this one (`jobs.<id>.uses`). */
  workflowCall?: WorkflowCallTrigger;
}

export interface StepDef {
  /** 0-based index within the job. */
  index: number;
  id?: string;
  name?: string;
  if?: string;
  run?: string;
  /**
   * The action, as written: `./path`, `owner/repo[/path]@ref` or `https://host/owner/repo[/path]@ref`.
   * The parser checks the form only; the step executor resolves and fetches it.
   */
  uses?: string;
  /** `with:` values; YAML numbers and booleans arrive as strings, as GitHub passes them. */
  with: Record<string, string>;
  shell?: string;
  workingDirectory?: string;
  env: Record<string, string>;
  /** Number, or an expression string. */
  timeoutMinutes?: number | string;
  continueOnError: boolean | string;
  pos: SourcePos;
}

export interface Strategy {
  /** Raw matrix: axes, plus `include` / `exclude` lists; or an expression string (fromJSON). */
  matrix?: Record<string, unknown> | string;
  failFast: boolean;
  maxParallel?: number;
}

/** `secrets:` of a reusable-workflow call: all of the caller's secrets, or name → expression. */
export type SecretsRule = 'inherit' | Record<string, string>;

/** A job that calls a reusable workflow (`jobs.<id>.uses`) instead of running steps itself. */
export interface WorkflowCall {
  /** As written, e.g. `./.github/workflows/build.yml`. */
  uses: string;
  /** Repository-relative path of the called file, e.g. `.github/workflows/build.yml`. */
  path: string;
  /**
   * `with:` values: YAML strings (may hold `${{ }}`), numbers and booleans kept typed, so that
   * they can be checked against the input types.
   */
  with: Record<string, string | number | boolean>;
  /** Secrets passed to the called workflow; `{}` when the caller passes none. */
  secrets: SecretsRule;
  /** The called workflow, attached by the loader (load.ts) once read and valid. */
  workflow?: Workflow;
  /** Where `uses:` is, and each `with.<name>` / `secrets.<name>` key, for messages. */
  pos: SourcePos;
  keyPos: Record<string, SourcePos>;
}

/** `jobs.<id>.environment`: the name (and url) only; forgevm has no protection rules. */
export interface JobEnvironment {
  name: string;
  url?: string;
}

export interface JobDef {
  id: string;
  name?: string;
  /** An image label, possibly an expression such as `${{ matrix.os }}`. Empty for a call job. */
  runsOn: string;
  needs: string[];
  if?: string;
  env: Record<string, string>;
  defaults: RunDefaults;
  timeoutMinutes?: number | string;
  continueOnError: boolean | string;
  outputs: Record<string, string>;
  strategy?: Strategy;
  concurrency?: Concurrency;
  /** Raw strings (may hold expressions); accepted and shown, never enforced. */
  environment?: JobEnvironment;
  /** Set when the job calls a reusable workflow; it then has no steps and no runs-on. */
  call?: WorkflowCall;
  steps: StepDef[];
  pos: SourcePos;
}

export interface Workflow {
  /** Path relative to the repository root, e.g. `.forgevm/workflows/ci.yml`. */
  file: string;
  /** `name:`, or the file path when absent (as GitHub does). */
  name: string;
  runName?: string;
  on: Triggers;
  env: Record<string, string>;
  defaults: RunDefaults;
  concurrency?: Concurrency;
  /** In file order. */
  jobs: JobDef[];
}

/** One validation problem, printed as `file:line:column: message`. */
export interface WorkflowProblem {
  file: string;
  line: number;
  column: number;
  message: string;
  /** A warning does not make the workflow invalid (e.g. a runs-on label missing from the catalog). */
  severity?: 'warning';
}

/** GitHub's `github` context, as forgevm fills it (snake_case keys, as in expressions). */
export interface GithubContext {
  event_name: string;
  event: Record<string, unknown>;
  sha: string;
  ref: string;
  ref_name: string;
  ref_type: 'branch' | 'tag' | '';
  head_ref: string;
  base_ref: string;
  repository: string;
  repository_owner: string;
  run_id: string;
  run_number: string;
  run_attempt: string;
  actor: string;
  workflow: string;
  server_url: string;
  api_url: string;
  /** Set per job by the executor. */
  job?: string;
  workspace?: string;
  [key: string]: unknown;
}

export interface InstanceStrategy {
  failFast: boolean;
  maxParallel?: number;
  jobIndex: number;
  jobTotal: number;
}

/**
 * One call of a reusable workflow, as the jobs it runs see it: the calling job's instance (one
 * per matrix combination of the caller), and the call it is nested in, if any.
 */
export interface CallFrame {
  /** The calling job's instance key, prefixed by the outer calls': `deploy`, `ci / deploy (eu)`. */
  key: string;
  /** The calling job's display name, prefixed the same way (GitHub's `caller / called` names). */
  displayName: string;
  /** The calling job (its `call` is set) and the workflow it is written in. */
  job: JobDef;
  workflow: Workflow;
  matrix: Record<string, unknown>;
  strategy: InstanceStrategy;
  /**
   * The called workflow's `inputs` context: typed, defaults applied. Undefined while `with:`
   * waits for the caller's needs; the job graph runner fills it in when the call starts.
   */
  inputs?: Record<string, unknown>;
  /** The `inputs` context around the calling job (the outer call's, or the run's). */
  callerInputs: Record<string, unknown>;
  /** `needs` of the calling job, set by the job graph runner when the call starts. */
  needs?: Record<string, NeedsEntry>;
  parent?: CallFrame;
}

/** One runnable instance of a job: matrix expanded, `runs-on` evaluated. */
export interface JobInstance {
  workflow: Workflow;
  job: JobDef;
  /**
   * Unique within a run: the job id, plus the matrix values, e.g. `test (20, debian)`; jobs of a
   * called workflow are prefixed by their call, e.g. `deploy / test (20)`.
   */
  key: string;
  /** `name:` (evaluated) or the id, plus the matrix values in parentheses; prefixed like `key`. */
  displayName: string;
  matrix: Record<string, unknown>;
  strategy: InstanceStrategy;
  /** The image label to boot. */
  runsOn: string;
  /** Set for a job of a called workflow: the (innermost) call it runs in. */
  call?: CallFrame;
  /**
   * The job's `inputs` context when it differs from the run's: a called workflow's inputs
   * (see CallFrame.inputs). Undefined for the jobs of the top-level workflow.
   */
  inputs?: Record<string, unknown>;
}

/**
 * Planner verdict for one job instance (the "why did / didn't it run" answer). `failure` marks
 * a job that cannot run because of an error (matrix over the limit, an `if:` that cannot be
 * evaluated): it concludes `failure` with the reason, never `skipped`, so that branch protection
 * does not count it as passing.
 */
export type JobDecision = { runs: true } | { runs: false; reason: string; failure?: true };

export interface PlannedJob {
  instance: JobInstance;
  decision: JobDecision;
}

export interface PlannedWorkflow {
  workflow: Workflow;
  /** Set when the whole workflow does not run (trigger or filter did not match, skip marker). */
  skipped?: string;
  jobs: PlannedJob[];
}

/** `needs.<job>` as seen by a dependent job. */
export interface NeedsEntry {
  result: 'success' | 'failure' | 'cancelled' | 'skipped';
  outputs: Record<string, string>;
}
