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

export interface Triggers {
  push?: PushTrigger;
  pullRequest?: PullRequestTrigger;
  workflowDispatch?: { inputs: Record<string, DispatchInput> };
}

export interface StepDef {
  /** 0-based index within the job. */
  index: number;
  id?: string;
  name?: string;
  if?: string;
  run?: string;
  /** Only `actions/checkout@…` is accepted by validation. */
  uses?: string;
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

export interface JobDef {
  id: string;
  name?: string;
  /** An image label, possibly an expression such as `${{ matrix.os }}`. */
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

/** One runnable instance of a job: matrix expanded, `runs-on` evaluated. */
export interface JobInstance {
  workflow: Workflow;
  job: JobDef;
  /** Unique within a run: the job id, plus the matrix values, e.g. `test (20, debian)`. */
  key: string;
  /** `name:` (evaluated) or the id, plus the matrix values in parentheses. */
  displayName: string;
  matrix: Record<string, unknown>;
  strategy: { failFast: boolean; maxParallel?: number; jobIndex: number; jobTotal: number };
  /** The image label to boot. */
  runsOn: string;
}

/** Planner verdict for one job instance (the "why did / didn't it run" answer). */
export type JobDecision = { runs: true } | { runs: false; reason: string };

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
