/**
 * Brings a commit onto the host: `git fetch` into a per-repository bare cache under the state
 * folder (so repeat fetches only transfer what is new), with the installation token passed as an
 * `http.extraHeader` through GIT_CONFIG_* environment variables: never in the URL, the argv, the
 * cache's config, the logs, or the VM. The engine then makes the job's shallow working copy from
 * the cache (src/job/workspace.ts `prepareWorkspace`), which has no remote and no credentials.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { WorkspaceSource } from '../job/workspace.ts';

export interface FetchSourceRequest {
  /** `<state>/repos`: one bare cache per forge + repository below it. */
  cacheRoot: string;
  forge: 'github' | 'forgejo';
  /** `owner/name`: names the cache folder. */
  repo: string;
  /** HTTPS clone URL without credentials (for fork PRs, the head repository's). */
  cloneUrl: string;
  sha: string;
  /** Branch to leave checked out in the working copy (`refs/heads/x`). */
  branch?: string;
  /** A ref that contains `sha`, fetched when the server refuses to serve a bare SHA. */
  ref?: string;
  /** Called right before fetching, so a renewed token is used. */
  token: () => Promise<string>;
  /** Username paired with the token in Basic auth (GitHub: `x-access-token`). */
  username?: string;
  signal?: AbortSignal;
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;
const FULL_SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** One fetch at a time per cache: git's ref locks would otherwise make concurrent jobs fail. */
const locks = new Map<string, Promise<unknown>>();

export async function withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(work);
  locks.set(key, next);
  try {
    return await next;
  } finally {
    if (locks.get(key) === next) locks.delete(key);
  }
}

export function cacheDirFor(cacheRoot: string, forge: string, repo: string): string {
  const [owner, name, ...rest] = repo.split('/');
  if (!owner || !name || rest.length > 0 || !SAFE_NAME.test(owner) || !SAFE_NAME.test(name) || owner.startsWith('.') || name.startsWith('.')) {
    throw new Error(`refusing to cache repository "${repo}": expected owner/name made of letters, digits, ".", "_" or "-"`);
  }
  return join(cacheRoot, forge, owner, `${name}.git`);
}

/** Environment that carries the credential to git without it ever appearing in argv or config files. */
export function gitAuthEnv(token: string, username = 'x-access-token'): Record<string, string> {
  const basic = Buffer.from(`${username}:${token}`).toString('base64');
  return {
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    GIT_CONFIG_NOSYSTEM: '1',
  };
}

function git(cwd: string, args: string[], env: Record<string, string> = {}, signal?: AbortSignal) {
  // credential.helper= disables helpers from the user's config: the header is the only credential.
  return execa('git', ['-c', 'credential.helper=', '-c', 'protocol.version=2', ...args], {
    cwd,
    env: { GIT_TERMINAL_PROMPT: '0', ...env },
    extendEnv: true,
    reject: false,
    cancelSignal: signal,
  });
}

async function hasCommit(dir: string, sha: string): Promise<boolean> {
  const result = await git(dir, ['cat-file', '-e', `${sha}^{commit}`]);
  return result.exitCode === 0;
}

export function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('[redacted]');
  return out;
}

/** Makes sure `sha` is in the repository's bare cache and returns it as the job's workspace source. */
export async function fetchSource(request: FetchSourceRequest): Promise<WorkspaceSource> {
  if (!FULL_SHA.test(request.sha)) throw new Error(`"${request.sha}" is not a full commit SHA`);
  const url = new URL(request.cloneUrl);
  if (url.username || url.password) throw new Error(`clone URL for ${request.repo} carries credentials: pass the token separately`);
  const dir = cacheDirFor(request.cacheRoot, request.forge, request.repo);
  const source: WorkspaceSource = { repoDir: dir, sha: request.sha, ...(request.branch ? { branch: request.branch } : {}) };

  return withLock(dir, async () => {
    await mkdir(dir, { recursive: true });
    if ((await git(dir, ['rev-parse', '--is-bare-repository'])).stdout.trim() !== 'true') {
      const init = await git(dir, ['init', '--quiet', '--bare', dir]);
      if (init.exitCode !== 0) throw new Error(`cannot create the repository cache ${dir}: ${init.stderr.trim()}`);
    }
    if (await hasCommit(dir, request.sha)) return source;

    const token = await request.token();
    const env = gitAuthEnv(token, request.username);
    const secrets = [token, env.GIT_CONFIG_VALUE_0!];
    const fetchInto = async (what: string) =>
      git(dir, ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', request.cloneUrl, what], env, request.signal);

    // Keep what we fetched reachable from a ref, so `git gc` never drops it.
    let result = await fetchInto(`+${request.sha}:refs/forgevm/${request.sha}`);
    if (result.exitCode !== 0 && request.ref) {
      result = await fetchInto(`+${request.ref}:refs/forgevm/ref/${request.ref.replace(/^refs\//, '')}`);
    }
    if (result.exitCode !== 0 || !(await hasCommit(dir, request.sha))) {
      const why = scrub((result.stderr || result.stdout || 'commit not found after fetch').trim().split('\n').at(-1) ?? '', secrets);
      throw new Error(`git fetch of ${request.sha.slice(0, 12)} from ${request.cloneUrl} failed: ${why} (check the app's contents permission and that the commit exists)`);
    }
    return source;
  });
}
