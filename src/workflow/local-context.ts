/** The `github` context for a run in a local repository (`forgevm run`, `forgevm plan`). */
import { basename, resolve } from 'node:path';
import type { GithubContext } from './model.ts';
import type { PlanEvent } from './planner.ts';

export function localGithubContext(event: PlanEvent, repoDir: string, runId = '0'): GithubContext {
  const refName = event.ref.replace(/^refs\/(heads|tags)\//, '');
  const name = basename(resolve(repoDir));
  return {
    event_name: event.name,
    event: event.payload,
    sha: event.sha,
    ref: event.ref,
    ref_name: refName,
    ref_type: event.ref.startsWith('refs/tags/') ? 'tag' : event.ref.startsWith('refs/heads/') ? 'branch' : '',
    head_ref: event.name === 'pull_request' ? refName : '',
    base_ref: event.name === 'pull_request' ? (event.baseRef ?? '') : '',
    repository: `local/${name}`,
    repository_owner: 'local',
    run_id: runId,
    run_number: '1',
    run_attempt: '1',
    actor: process.env.USER ?? 'local',
    workflow: '',
    server_url: 'https://github.com',
    api_url: 'https://api.github.com',
  };
}
