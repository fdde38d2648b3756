/**
 * What a workflow may contain, and which expression contexts and functions GitHub makes
 * available at each place (GitHub's "Context availability" table in the contexts reference).
 */

export const WORKFLOW_KEYS = ['name', 'run-name', 'on', 'env', 'defaults', 'concurrency', 'jobs', 'permissions'] as const;

export const JOB_KEYS = [
  'name',
  'runs-on',
  'needs',
  'if',
  'env',
  'defaults',
  'timeout-minutes',
  'continue-on-error',
  'outputs',
  'strategy',
  'concurrency',
  'steps',
  'permissions',
  'environment',
  'uses',
  'with',
  'secrets',
] as const;

/** The keys GitHub allows in a job that calls a reusable workflow (`jobs.<id>.uses`). */
export const CALL_JOB_KEYS = ['name', 'uses', 'with', 'secrets', 'needs', 'if', 'strategy', 'concurrency', 'permissions'] as const;

/** Job keys GitHub has and forgevm does not run: what they are, and what to do instead. */
export const UNSUPPORTED_JOB_KEYS: Record<string, string> = {
  services: 'service containers are not supported by forgevm; start the service in a step instead (the VM is yours)',
  container: 'job containers are not supported by forgevm; the job runs in a VM: pick the image with runs-on',
};

/** GitHub: "You can connect a maximum of ten levels of workflows" (the caller and 9 called). */
export const MAX_WORKFLOW_LEVELS = 10;

export const CALL_INPUT_KEYS = ['description', 'required', 'default', 'type'] as const;
export const CALL_INPUT_TYPES = ['string', 'boolean', 'number'] as const;
export const CALL_OUTPUT_KEYS = ['description', 'value'] as const;
export const CALL_SECRET_KEYS = ['description', 'required'] as const;

export const STEP_KEYS = [
  'id',
  'name',
  'if',
  'run',
  'uses',
  'with',
  'shell',
  'working-directory',
  'env',
  'timeout-minutes',
  'continue-on-error',
] as const;

export const PUSH_KEYS = ['branches', 'branches-ignore', 'tags', 'tags-ignore', 'paths', 'paths-ignore'] as const;
export const PULL_REQUEST_KEYS = ['types', 'branches', 'branches-ignore', 'paths', 'paths-ignore'] as const;
export const DISPATCH_INPUT_KEYS = ['description', 'required', 'default', 'type', 'options'] as const;
export const DISPATCH_INPUT_TYPES = ['string', 'boolean', 'number', 'choice', 'environment'] as const;

export const PULL_REQUEST_TYPES = [
  'assigned',
  'unassigned',
  'labeled',
  'unlabeled',
  'opened',
  'edited',
  'closed',
  'reopened',
  'synchronize',
  'converted_to_draft',
  'ready_for_review',
  'locked',
  'unlocked',
  'review_requested',
  'review_request_removed',
  'auto_merge_enabled',
  'auto_merge_disabled',
  'milestoned',
  'demilestoned',
  'enqueued',
  'dequeued',
] as const;

/** GitHub's events: accepted in `on:`, but only push, pull_request and workflow_dispatch ever match. */
export const KNOWN_EVENTS = [
  'push',
  'pull_request',
  'workflow_dispatch',
  'pull_request_target',
  'pull_request_review',
  'pull_request_review_comment',
  'schedule',
  'workflow_call',
  'workflow_run',
  'repository_dispatch',
  'release',
  'create',
  'delete',
  'deployment',
  'deployment_status',
  'issues',
  'issue_comment',
  'label',
  'milestone',
  'page_build',
  'project',
  'project_card',
  'project_column',
  'public',
  'registry_package',
  'status',
  'watch',
  'fork',
  'gollum',
  'check_run',
  'check_suite',
  'discussion',
  'discussion_comment',
  'merge_group',
  'branch_protection_rule',
] as const;

const STATUS = ['success', 'failure', 'cancelled', 'always'];

/** Contexts and functions allowed at a place in a workflow. */
export interface ExpressionScope {
  contexts: string[];
  functions: string[];
}

const scope = (contexts: string[], functions: string[] = []): ExpressionScope => ({ contexts, functions });

const STEP_CONTEXTS = ['github', 'needs', 'strategy', 'matrix', 'job', 'runner', 'env', 'vars', 'secrets', 'steps', 'inputs'];

export const SCOPES = {
  runName: scope(['github', 'inputs', 'vars']),
  workflowEnv: scope(['github', 'secrets', 'inputs', 'vars']),
  workflowConcurrency: scope(['github', 'inputs', 'vars']),
  workflowDefaults: scope(['github', 'inputs', 'vars']),
  jobName: scope(['github', 'needs', 'strategy', 'matrix', 'vars', 'inputs']),
  jobWith: scope(['github', 'needs', 'strategy', 'matrix', 'inputs', 'vars']),
  jobSecrets: scope(['github', 'needs', 'strategy', 'matrix', 'secrets', 'inputs', 'vars']),
  jobEnvironment: scope(['github', 'needs', 'strategy', 'matrix', 'vars', 'inputs']),
  jobEnvironmentUrl: scope(['github', 'needs', 'strategy', 'matrix', 'job', 'runner', 'env', 'vars', 'steps', 'inputs']),
  callInputDefault: scope(['github', 'inputs', 'vars']),
  callOutput: scope(['github', 'jobs', 'vars', 'inputs']),
  jobIf: scope(['github', 'needs', 'vars', 'inputs'], STATUS),
  runsOn: scope(['github', 'needs', 'strategy', 'matrix', 'vars', 'inputs']),
  jobEnv: scope(['github', 'needs', 'strategy', 'matrix', 'vars', 'secrets', 'inputs']),
  jobConcurrency: scope(['github', 'needs', 'strategy', 'matrix', 'inputs', 'vars']),
  jobOutputs: scope(['github', 'needs', 'strategy', 'matrix', 'job', 'runner', 'env', 'vars', 'secrets', 'steps', 'inputs']),
  strategy: scope(['github', 'needs', 'vars', 'inputs']),
  jobContinueOnError: scope(['github', 'needs', 'strategy', 'vars', 'matrix', 'inputs']),
  jobTimeout: scope(['github', 'needs', 'strategy', 'matrix', 'vars', 'inputs']),
  jobDefaults: scope(['github', 'needs', 'strategy', 'matrix', 'env', 'vars', 'inputs']),
  stepIf: scope(['github', 'needs', 'strategy', 'matrix', 'job', 'runner', 'env', 'vars', 'steps', 'inputs'], [
    ...STATUS,
    'hashFiles',
  ]),
  step: scope(STEP_CONTEXTS, ['hashFiles']),
} satisfies Record<string, ExpressionScope>;
