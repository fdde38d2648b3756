/**
 * The action repositories the fixtures in workflows/actions use as remote actions
 * (`uses: fixtures/<repo>[/path]@v1`), served over git smart HTTP the way github.com serves
 * them to an anonymous client. Each folder `workflows/actions/_hosted/<owner>/<repo>/` becomes
 * the repository `<owner>/<repo>` with one commit on main, tagged `v1`.
 *
 * GitHub runs `pre:` only for remote actions (local `./path` actions have no pre stage), so
 * the fixtures that check pre stages need this host.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Hono } from 'hono';
import { gitHttpBackend, GitRepos } from './git-http.ts';
import { listen } from './listen.ts';

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

/** `owner/repo` → its files, from the _hosted folder. */
export function hostedActionRepos(): Record<string, Record<string, string>> {
  const repos: Record<string, Record<string, string>> = {};
  for (const owner of readdirSync(HOSTED_ACTIONS)) {
    for (const repo of readdirSync(join(HOSTED_ACTIONS, owner))) repos[`${owner}/${repo}`] = filesUnder(join(HOSTED_ACTIONS, owner, repo));
  }
  return repos;
}

export interface FixtureActionsHost {
  /** The web root to give forgevm as its actions URL. */
  url: string;
  stop(): Promise<void>;
}

export async function startFixtureActionsHost(): Promise<FixtureActionsHost> {
  const root = mkdtempSync(join(tmpdir(), 'fixture-actions-'));
  const repos = new GitRepos(root);
  for (const [fullName, files] of Object.entries(hostedActionRepos())) {
    const sha = repos.commit(fullName, 'main', files, 'fixture action');
    execFileSync('git', ['tag', 'v1', sha], { cwd: repos.bareDir(fullName) });
  }
  const app = new Hono();
  // Clients ask for https://host/owner/repo and https://host/owner/repo.git alike.
  app.all('*', (c) => {
    const m = /^\/([^/]+)\/([^/]+?)(?:\.git)?(\/(?:info\/refs|git-upload-pack))$/.exec(c.req.path);
    if (!m) return c.text('not found\n', 404);
    return gitHttpBackend(c.req.raw, root, `/${m[1]}/${m[2]}.git${m[3]}`);
  });
  const server = await listen(app);
  return {
    url: server.url,
    stop: async () => {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
