/**
 * The action repositories the fixtures in workflows/actions use as remote actions
 * (`uses: fixtures/<repo>[/path]@v1`), on the public git host of the action tests: each folder
 * `workflows/actions/_hosted/<owner>/<repo>/` becomes the repository `<owner>/<repo>`, one
 * commit on main, tagged `v1`.
 *
 * GitHub runs `pre:` only for remote actions (local `./path` actions have no pre stage), so
 * the fixtures that check pre stages need this host.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startActionsHost, type ActionsHost } from './actions-host.ts';

export const HOSTED_ACTIONS = join(import.meta.dirname, '..', '..', 'workflows', 'actions', '_hosted');

function filesUnder(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const full = join(at, name);
      if (statSync(full).isDirectory()) walk(full);
      else files[relative(dir, full)] = readFileSync(full, 'utf8');
    }
  };
  walk(dir);
  return files;
}

/** `owner/repo` of every hosted action repository. */
export function hostedActionRepos(): string[] {
  return readdirSync(HOSTED_ACTIONS).flatMap((owner) => readdirSync(join(HOSTED_ACTIONS, owner)).map((repo) => `${owner}/${repo}`));
}

/** A started actions host holding every _hosted repository at tag v1. */
export async function startFixtureActionsHost(): Promise<ActionsHost> {
  const host = await startActionsHost();
  for (const fullName of hostedActionRepos()) {
    const sha = host.repos.commit(fullName, 'main', filesUnder(join(HOSTED_ACTIONS, fullName)), 'fixture action');
    execFileSync('git', ['tag', 'v1', sha], { cwd: host.repos.bareDir(fullName) });
  }
  return host;
}
