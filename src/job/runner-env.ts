/**
 * The default environment every step sees, named as on GitHub's runners so that scripts written
 * for GitHub work unchanged. forgevm is not GitHub Actions, but GITHUB_ACTIONS=true is set too:
 * many tools switch to their CI behaviour (log groups, no colours, no prompts) only on that name.
 * FORGEVM=true lets a script tell the two apart.
 */
import { posix } from 'node:path';
import type { GithubContext } from '../workflow/model.ts';

export const RUNNER_NAME = 'forgevm';

export interface StepFiles {
  env: string;
  output: string;
  path: string;
  summary: string;
  /** GITHUB_STATE, for JavaScript actions. */
  state: string;
}

/** Fresh file-command paths for one step, under the job's temp folder (as GitHub's runner lays them out). */
export function stepFiles(tempDir: string, stepKey: string): StepFiles {
  const dir = posix.join(tempDir, '_runner_file_commands');
  return {
    env: posix.join(dir, `set_env_${stepKey}`),
    output: posix.join(dir, `set_output_${stepKey}`),
    path: posix.join(dir, `add_path_${stepKey}`),
    summary: posix.join(dir, `step_summary_${stepKey}`),
    state: posix.join(dir, `save_state_${stepKey}`),
  };
}

/** Where the event payload is written, as on GitHub's runners. */
export function eventPath(tempDir: string): string {
  return posix.join(tempDir, '_github_workflow', 'event.json');
}

/** Variables that user `env:` may override (GitHub documents that CI can be overwritten). */
export function overridableDefaults(): Record<string, string> {
  return { CI: 'true' };
}

export interface FixedEnvInput {
  github: GithubContext;
  jobId: string;
  workflowFile: string;
  workspace: string;
  tempDir: string;
  /** GITHUB_ACTION: the step id, or GitHub's generated `__run`, `__run_2`… */
  action: string;
  files: StepFiles;
}

/**
 * GITHUB_* and RUNNER_* variables. They win over `env:` and GITHUB_ENV, as on GitHub
 * ("you can't overwrite the value of the default environment variables named GITHUB_* and RUNNER_*").
 */
export function fixedDefaults(input: FixedEnvInput): Record<string, string> {
  const g = input.github;
  return {
    FORGEVM: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_ACTION: input.action,
    GITHUB_ACTOR: g.actor,
    GITHUB_TRIGGERING_ACTOR: typeof g.triggering_actor === 'string' ? g.triggering_actor : g.actor,
    GITHUB_API_URL: g.api_url,
    GITHUB_GRAPHQL_URL: graphqlUrl(g.api_url),
    GITHUB_BASE_REF: g.base_ref,
    GITHUB_HEAD_REF: g.head_ref,
    GITHUB_ENV: input.files.env,
    GITHUB_OUTPUT: input.files.output,
    GITHUB_PATH: input.files.path,
    GITHUB_STEP_SUMMARY: input.files.summary,
    GITHUB_EVENT_NAME: g.event_name,
    GITHUB_EVENT_PATH: eventPath(input.tempDir),
    GITHUB_JOB: input.jobId,
    GITHUB_REF: g.ref,
    GITHUB_REF_NAME: g.ref_name,
    GITHUB_REF_TYPE: g.ref_type,
    GITHUB_REPOSITORY: g.repository,
    GITHUB_REPOSITORY_OWNER: g.repository_owner,
    GITHUB_RUN_ID: g.run_id,
    GITHUB_RUN_NUMBER: g.run_number,
    GITHUB_RUN_ATTEMPT: g.run_attempt,
    GITHUB_SERVER_URL: g.server_url,
    GITHUB_SHA: g.sha,
    GITHUB_WORKFLOW: g.workflow,
    GITHUB_WORKFLOW_REF: `${g.repository}/${input.workflowFile}@${g.ref}`,
    GITHUB_WORKFLOW_SHA: g.sha,
    GITHUB_WORKSPACE: input.workspace,
    RUNNER_ARCH: 'X64',
    RUNNER_NAME,
    RUNNER_OS: 'Linux',
    RUNNER_TEMP: input.tempDir,
    RUNNER_TOOL_CACHE: posix.join(input.tempDir, '_tool'),
  };
}

/**
 * GitHub's GraphQL endpoint beside its REST one (`@actions/github` falls back to github.com's
 * when it is unset, wrong on GitHub Enterprise); Forgejo and Gitea have none: empty.
 */
export function graphqlUrl(apiUrl: string): string {
  const url = apiUrl.replace(/\/+$/, '');
  if (url === 'https://api.github.com') return `${url}/graphql`;
  if (url.endsWith('/api/v3')) return `${url.slice(0, -'/v3'.length)}/graphql`;
  return '';
}
