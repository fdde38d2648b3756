/**
 * Git against one action repository, for src/actions/fetch.ts: `ls-remote` to resolve a ref,
 * shallow fetches into a bare cache, and every failure turned into one line that names the
 * action, the cause and what to do. As in src/forge/fetch-source.ts, the forge's token travels as
 * an `http.extraHeader` in the environment (never in argv, URLs or the cache's config) and is
 * scrubbed from anything git prints.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { gitAuthEnv, scrub } from '../forge/fetch-source.ts';
import { FULL_SHA, type RemoteActionRef } from './reference.ts';

/** The run's forge and its git credential. The token is sent to this host and no other. */
export interface ForgeGitCredential {
  /** Web root of the forge: `https://github.com`, a GitHub Enterprise host, the Forgejo URL. */
  serverUrl: string;
  /** Basic-auth username paired with the token (GitHub: `x-access-token`). */
  username: string;
  /** Called only when the network is needed, so a renewed token is used. */
  token: () => Promise<string>;
}

export interface ActionSource {
  /** Web root the repository is fetched from, without a trailing slash. */
  serverUrl: string;
  /** `<serverUrl>/<owner>/<repo>.git`. */
  repositoryUrl: string;
  /** True when the forge's token is sent (the repository is on the forge itself). */
  authenticated: boolean;
}

export type ActionFetchFailure =
  | 'invalid-reference'
  | 'repository-not-found'
  | 'ref-not-found'
  | 'path-not-found'
  | 'refused'
  | 'unreachable'
  | 'too-large'
  | 'cancelled'
  | 'failed';

/** A fetch that failed; `message` is one line naming the action, the cause and what to do. */
export class ActionFetchError extends Error {
  constructor(
    readonly reason: ActionFetchFailure,
    message: string,
  ) {
    super(message);
    this.name = 'ActionFetchError';
  }
}

/** What git says when another process is fetching into the same cache at that moment. */
const CONCURRENT_GIT = /\.lock': File exists|Unable to create .*\.lock|shallow file has changed since we read it|cannot lock ref|unable to update local ref/i;
/** Git holds a lock for the length of one command; an older lock was left by a killed process. */
const STALE_LOCK_MS = 10 * 60 * 1000;

/** Config for every git command: no credential helpers, no hooks, no prompts, no background gc. */
const GIT_CONFIG = [
  '-c', 'credential.helper=',
  '-c', 'core.askPass=',
  '-c', 'core.hooksPath=/dev/null',
  '-c', 'protocol.version=2',
  '-c', 'gc.auto=0',
  '-c', 'maintenance.auto=false',
  // A host that stalls below 1 KiB/s for a minute is treated as gone.
  '-c', 'http.lowSpeedLimit=1024',
  '-c', 'http.lowSpeedTime=60',
];

const GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '',
  SSH_ASKPASS: '',
  GIT_CONFIG_NOSYSTEM: '1',
  // Only the transports forgevm builds URLs for; redirects to file:// or ext:: are refused.
  GIT_ALLOW_PROTOCOL: 'http:https',
};

interface GitResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  isCanceled: boolean;
}

/** One fetch's git commands against the action's repository: the credential (asked once, lazily), the bare cache, the messages. */
export class RemoteRepository {
  readonly where: string;
  #auth?: Promise<Record<string, string>>;
  #secrets: string[] = [];

  constructor(
    readonly ref: RemoteActionRef,
    readonly source: ActionSource,
    readonly options: { forge?: ForgeGitCredential; signal?: AbortSignal },
    readonly timeoutMs: number,
    readonly bareDir: string,
  ) {
    this.where = source.repositoryUrl.replace(/\.git$/, '');
  }

  get signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  error(reason: ActionFetchFailure, cause: string, todo: string): ActionFetchError {
    return new ActionFetchError(reason, scrub(`action "${this.ref.uses}": ${cause} (${todo})`, this.#secrets));
  }

  async #authEnv(): Promise<Record<string, string>> {
    const forge = this.options.forge;
    if (!this.source.authenticated || !forge) return {};
    this.#auth ??= forge.token().then((token) => {
      const env = gitAuthEnv(token, forge.username);
      this.#secrets = [token, env.GIT_CONFIG_VALUE_0!, Buffer.from(`${forge.username}:${token}`).toString('base64')];
      return env;
    });
    return this.#auth;
  }

  /**
   * Git in a process group of its own: on cancel or timeout the whole group is killed, because
   * `git fetch` leaves the transfer to a `git-remote-https` child that would otherwise keep the
   * pipes open (and the fetch alive) until the server gives up.
   */
  async git(args: string[], { network }: { network: boolean }): Promise<GitResult> {
    const auth = network ? await this.#authEnv() : {};
    const child = execa('git', [...GIT_CONFIG, `--git-dir=${this.bareDir}`, ...args], {
      env: { ...GIT_ENV, ...auth },
      extendEnv: true,
      reject: false,
      detached: true,
    });
    let timedOut = false;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, this.timeoutMs);
    this.signal?.addEventListener('abort', killGroup, { once: true });
    if (this.signal?.aborted) killGroup();
    try {
      const result = await child;
      return {
        exitCode: result.exitCode,
        stdout: String(result.stdout ?? ''),
        stderr: scrub(String(result.stderr ?? ''), this.#secrets),
        timedOut,
        isCanceled: this.signal?.aborted === true,
      };
    } finally {
      clearTimeout(timer);
      this.signal?.removeEventListener('abort', killGroup);
    }
  }

  /** Bytes of all files in the tree at `sha`, before anything is unpacked. */
  async treeBytes(sha: string): Promise<number> {
    const listing = await this.git(['ls-tree', '-r', '-l', '--full-tree', sha], { network: false });
    if (listing.exitCode !== 0) throw this.failure('reading the tree', listing);
    let bytes = 0;
    for (const line of listing.stdout.split('\n')) {
      // `<mode> <type> <object> <size>\t<path>`; submodules have `-` for a size.
      const size = Number(line.split('\t')[0]?.trim().split(/\s+/)[3]);
      if (Number.isFinite(size)) bytes += size;
    }
    return bytes;
  }

  /** `git archive | tar -x`: the tree at `sha` into the folder `into`; throws on failure. */
  async archiveInto(sha: string, into: string): Promise<void> {
    const archive = execa('git', [...GIT_CONFIG, `--git-dir=${this.bareDir}`, 'archive', '--format=tar', sha], {
      env: GIT_ENV,
      extendEnv: true,
      cancelSignal: this.signal,
      timeout: this.timeoutMs,
    });
    // No owner or permission bits from the archive beyond the executable bit git records.
    await archive.pipe('tar', ['-x', '-f', '-', '-C', into, '--no-same-owner', '--no-same-permissions'], {
      cancelSignal: this.signal,
      timeout: this.timeoutMs,
    });
  }

  async #ensureRepository(): Promise<void> {
    if (await isDirectory(join(this.bareDir, 'objects'))) {
      await removeStaleLocks(this.bareDir);
      return;
    }
    // Made aside and renamed in: two processes creating it at once would trip over git's config lock.
    const temp = join(dirname(this.bareDir), `.tmp-repo-${process.pid}-${randomBytes(4).toString('hex')}`);
    const init = await execa('git', ['init', '--quiet', '--bare', temp], { env: GIT_ENV, extendEnv: true, reject: false });
    if (init.exitCode !== 0) {
      await rm(temp, { recursive: true, force: true });
      throw this.error('failed', `cannot create the cache ${this.bareDir}: ${lastLine(String(init.stderr))}`, 'check that the state folder is writable');
    }
    await rename(temp, this.bareDir).catch(async (error: unknown) => {
      await rm(temp, { recursive: true, force: true });
      if (!(await isDirectory(join(this.bareDir, 'objects')))) throw error;
    });
  }

  /** Tags (peeled) before branches, as git's own lookup order has it. */
  async lsRemote(name: string): Promise<{ sha: string; refName: string } | undefined> {
    await this.#ensureRepository();
    const candidates = name.startsWith('refs/') ? [name] : [`refs/tags/${name}`, `refs/heads/${name}`];
    const patterns = candidates.flatMap((c) => [c, `${c}^{}`]);
    const result = await this.git(['ls-remote', this.source.repositoryUrl, ...patterns], { network: true });
    if (result.exitCode !== 0) throw this.failure('resolving the version', result);
    const refs = new Map<string, string>();
    for (const line of result.stdout.split('\n')) {
      const [sha, refName] = line.split('\t');
      if (sha && refName && FULL_SHA.test(sha)) refs.set(refName, sha);
    }
    for (const candidate of candidates) {
      const sha = refs.get(`${candidate}^{}`) ?? refs.get(candidate);
      if (sha) return { sha, refName: candidate };
    }
    return undefined;
  }

  /** A short SHA is found in history: first in the cache, else after fetching all branches and tags. */
  async expandShortSha(short: string): Promise<string | undefined> {
    const local = await this.#revParse(short);
    if (local) return local;
    await this.#fetchEverything();
    return this.#revParse(short);
  }

  async #revParse(short: string): Promise<string | undefined> {
    const result = await this.git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${short}^{commit}`], { network: false });
    if (result.exitCode === 0 && FULL_SHA.test(result.stdout.trim())) return result.stdout.trim();
    if (/ambiguous/i.test(result.stderr)) throw this.error('ref-not-found', `the short SHA "${short}" matches several commits in ${this.where}`, 'use more digits, or the full SHA');
    return undefined;
  }

  /** The commit, shallow; by SHA first, by its ref name when the server refuses a bare SHA. */
  async ensureCommit(sha: string, refName?: string): Promise<void> {
    await this.#ensureRepository();
    if (await this.#hasCommit(sha)) return;
    const keep = `refs/forgevm/${sha}`;
    let result = await this.#fetch(['--depth=1', this.source.repositoryUrl, `+${sha}:${keep}`]);
    if (result.exitCode !== 0 && refName) result = await this.#fetch(['--depth=1', this.source.repositoryUrl, `+${refName}:${keep}`]);
    if (await this.#hasCommit(sha)) return;
    if (result.exitCode !== 0 && !/not our ref|couldn't find remote ref|unadvertised object|no such remote ref|upload-pack: not our/i.test(result.stderr)) {
      throw this.failure('fetching the commit', result);
    }
    // Servers that serve only advertised refs: take every branch and tag, then look again.
    await this.#fetchEverything();
    if (!(await this.#hasCommit(sha))) {
      throw this.error('ref-not-found', `commit ${sha.slice(0, 12)} is not on any branch or tag of ${this.where}`, 'check the SHA after "@" in uses:');
    }
  }

  async #fetchEverything(): Promise<void> {
    await this.#ensureRepository();
    const shallow = (await this.git(['rev-parse', '--is-shallow-repository'], { network: false })).stdout.trim() === 'true';
    const result = await this.#fetch([...(shallow ? ['--unshallow'] : []), this.source.repositoryUrl, '+refs/heads/*:refs/forgevm/heads/*', '+refs/tags/*:refs/forgevm/tags/*']);
    if (result.exitCode !== 0) throw this.failure('fetching the history', result);
  }

  async #fetch(args: string[]): Promise<GitResult> {
    // Another process may hold the cache's locks for a moment: wait for it rather than fail.
    for (let attempt = 0; ; attempt++) {
      const result = await this.git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-auto-gc', ...args], { network: true });
      if (result.exitCode === 0 || attempt >= 10 || !CONCURRENT_GIT.test(result.stderr)) return result;
      await new Promise((resolve) => setTimeout(resolve, 500 + attempt * 250));
    }
  }

  async #hasCommit(sha: string): Promise<boolean> {
    return (await this.git(['cat-file', '-e', `${sha}^{commit}`], { network: false })).exitCode === 0;
  }

  /** A failed git command as one line: repository missing, access refused, host unreachable, or git's last words. */
  failure(doing: string, result: GitResult): ActionFetchError {
    if (result.isCanceled || this.signal?.aborted) return this.error('cancelled', `${doing} was cancelled`, 'nothing to do: the next job fetches it again');
    const host = new URL(this.source.serverUrl).host;
    if (result.timedOut) return this.error('unreachable', `${doing} from ${host} took longer than ${Math.round(this.timeoutMs / 1000)} s`, 'check the network, or try again later');
    const stderr = result.stderr;
    if (/could not resolve host|failed to connect|couldn't connect|connection refused|connection timed out|operation timed out|network is unreachable|no route to host|ssl|tls|certificate/i.test(stderr)) {
      return this.error('unreachable', `cannot reach ${host} (${lastLine(stderr).replace(/^fatal: unable to access '[^']*': /, '')})`, 'check the network and the actions.url setting');
    }
    const notFound = /repository '[^']*' not found|repository not found|returned error: 404|HTTP 404/i.test(stderr);
    const authNeeded = /could not read username|authentication failed|returned error: 40[13]|HTTP 40[13]|terminal prompts disabled/i.test(stderr);
    if (notFound || (authNeeded && !this.source.authenticated)) {
      return this.error('repository-not-found', `repository ${this.where} not found, or private`, `check owner/repo in uses:${this.source.authenticated ? '' : '; forgevm fetches it without credentials'}`);
    }
    if (authNeeded) return this.error('refused', `${host} refused forgevm's token for ${this.where}`, "check the app's or token's read access to that repository");
    if (/returned error: 5\d\d/i.test(stderr)) return this.error('unreachable', `${host} answered with a server error (${lastLine(stderr)})`, 'try again later');
    return this.error('failed', `${doing} from ${this.where} failed: ${lastLine(stderr) || `git exit ${result.exitCode}`}`, 'check the reference, or try again later');
  }
}

/** `*.lock` files git left behind when it was killed; fresh ones belong to a running git. */
async function removeStaleLocks(bareDir: string): Promise<void> {
  const now = Date.now();
  const visit = async (dir: string, depth: number): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && depth < 6 && entry.name !== 'objects') await visit(path, depth + 1);
      else if (entry.isFile() && entry.name.endsWith('.lock')) {
        const info = await stat(path).catch(() => undefined);
        if (info && now - info.mtimeMs > STALE_LOCK_MS) await rm(path, { force: true });
      }
    }
  };
  await visit(bareDir, 0);
}

export async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

export function lastLine(text: string): string {
  return text.trim().split('\n').filter((l) => l.trim() !== '').at(-1)?.trim() ?? '';
}
