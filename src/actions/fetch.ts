/**
 * Brings a remote action (`owner/repo[/path]@ref`) onto the host, as the runner does before a
 * job: the ref is resolved to a full commit SHA, and the repository's tree at that commit is
 * unpacked into `<cacheRoot>/<host>/<owner>/<repo>/<sha>/`. The tree is written to a temporary
 * folder and renamed into place, so an interrupted fetch never looks complete and concurrent jobs
 * fetching the same action both end up with the one complete copy.
 *
 * Git over HTTPS (src/actions/remote-repository.ts): `git ls-remote` resolves tags and branches;
 * a shallow fetch brings the commit into a bare cache next to the trees (later versions of the
 * same action then transfer only what changed); `git archive` writes the tree, with the same
 * `export-ignore` rules as the tarball GitHub's runner downloads.
 *
 * Trees are marked when a job takes them (the folder's mtime), and `prune` deletes those no job
 * took for `actions.unusedDays`; a repository left without trees goes with its bare cache.
 *
 * Where from: `owner/repo@ref` goes to the actions host (config `actions.url`, default
 * https://github.com, like Forgejo's DEFAULT_ACTIONS_URL); a full-URL reference names its host.
 * The run's forge token goes along only when that host is the forge itself, as an
 * `http.extraHeader` in the environment: never in argv, URLs, the cache's config, or messages.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, realpath, rename, rm, stat, utimes } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { withLock } from '../forge/fetch-source.ts';
import { tarStream } from '../job/workspace.ts';
import { FULL_SHA, parseActionRef, type RemoteActionRef } from './reference.ts';
import { ActionFetchError, type ActionSource, type ForgeGitCredential, isDirectory, lastLine, RemoteRepository } from './remote-repository.ts';

export { ActionFetchError, type ActionFetchFailure, type ActionSource, type ForgeGitCredential } from './remote-repository.ts';

/** Where `owner/repo@ref` is fetched from when the configuration names no other host. */
export const DEFAULT_ACTIONS_URL = 'https://github.com';

export interface ActionFetcherOptions {
  /** `<state>/actions`: trees and bare caches live below it, one folder per host/owner/repo. */
  cacheRoot: string;
  /** Host for `owner/repo@ref` (config `actions.url`); default https://github.com. */
  actionsUrl?: string;
  /** Largest tree unpacked, summed over its files; default 1 GiB. */
  maxTreeBytes?: number;
  /** Limit for each git command; default 5 minutes. */
  timeoutMs?: number;
}

export interface FetchActionOptions {
  /** The run's forge: its token is used for actions on that same host. */
  forge?: ForgeGitCredential;
  signal?: AbortSignal;
}

export interface FetchedAction {
  ref: RemoteActionRef;
  /** Full commit SHA the ref resolved to. */
  sha: string;
  /** Repository the tree came from (no credentials in it). */
  repositoryUrl: string;
  /**
   * The whole repository tree at `sha`. Upload all of it: an action in a sub-folder may use
   * files elsewhere in its repository. Shared by every job: read it, never write into it.
   */
  treeDir: string;
  /** Folder of the action inside `treeDir` ('' for the root): `ref.path`. */
  actionPath: string;
  /** `treeDir` joined with `actionPath`; holds action.yml. */
  actionDir: string;
  /** True when the tree was already in the cache (no download happened). */
  cached: boolean;
}

const SHORT_SHA = /^[0-9a-f]{7,39}$/;
const STALE_TEMP_MS = 60 * 60 * 1000;

export class ActionFetcher {
  readonly cacheRoot: string;
  readonly actionsUrl: string;
  readonly #maxTreeBytes: number;
  readonly #timeoutMs: number;

  constructor(options: ActionFetcherOptions) {
    this.cacheRoot = options.cacheRoot;
    this.actionsUrl = webRoot(options.actionsUrl ?? DEFAULT_ACTIONS_URL);
    this.#maxTreeBytes = options.maxTreeBytes ?? 1024 ** 3;
    this.#timeoutMs = options.timeoutMs ?? 5 * 60_000;
  }

  /** Where a reference is fetched from, and whether the forge's token goes with it. */
  source(ref: RemoteActionRef, forge?: ForgeGitCredential): ActionSource {
    const serverUrl = webRoot(ref.server ?? this.actionsUrl);
    return {
      serverUrl,
      repositoryUrl: `${serverUrl}/${ref.owner}/${ref.repo}.git`,
      authenticated: forge !== undefined && sameWebRoot(serverUrl, forge.serverUrl),
    };
  }

  /** Resolves the reference and makes its tree available on the host; throws ActionFetchError. */
  async fetch(ref: RemoteActionRef, options: FetchActionOptions = {}): Promise<FetchedAction> {
    checkReference(ref);
    const source = this.source(ref, options.forge);
    const repoDir = join(this.cacheRoot, hostFolder(source.serverUrl), ref.owner.toLowerCase(), ref.repo.toLowerCase());
    const remote = new RemoteRepository(ref, source, options, this.#timeoutMs, join(repoDir, 'repo.git'));
    return withLock(repoDir, async () => {
      await mkdir(repoDir, { recursive: true });
      await removeStaleTemporaries(repoDir);
      const resolved = await this.#resolve(ref, remote);
      const treeDir = join(repoDir, resolved.sha);
      const cached = await isDirectory(treeDir);
      if (!cached) {
        await remote.ensureCommit(resolved.sha, resolved.refName);
        await this.#checkSize(remote, resolved.sha);
        await this.#unpack(remote, resolved.sha, repoDir, treeDir);
      }
      const actionDir = await actionFolder(ref, treeDir, resolved.sha);
      const now = new Date();
      await utimes(treeDir, now, now); // in use: prune() keeps it
      return { ref, sha: resolved.sha, repositoryUrl: source.repositoryUrl, treeDir, actionPath: ref.path, actionDir, cached };
    });
  }

  /**
   * Deletes trees no job took since `olderThan`, each repository under its lock (a fetch of the
   * same repository waits); a repository with no tree left loses its bare cache too.
   */
  async prune(olderThan: Date): Promise<{ trees: number; repositories: number }> {
    const removed = { trees: 0, repositories: 0 };
    for (const repoDir of await subfolders(this.cacheRoot, 3)) {
      await withLock(repoDir, async () => {
        // Read first: deleting trees below touches the folder. A new folder may be another
        // process's fetch that has not unpacked yet; one with a temporary tree is unpacking.
        const before = await stat(repoDir).catch(() => undefined);
        let kept = 0;
        let pruned = 0;
        let unpacking = false;
        for (const name of await readdir(repoDir).catch(() => [] as string[])) {
          if (name.startsWith('.tmp-')) unpacking = true;
          if (!FULL_SHA.test(name)) continue;
          const info = await stat(join(repoDir, name)).catch(() => undefined);
          if (info && info.mtimeMs < olderThan.getTime()) {
            await rm(join(repoDir, name), { recursive: true, force: true });
            pruned += 1;
          } else kept += 1;
        }
        removed.trees += pruned;
        if (kept === 0 && !unpacking && before && (pruned > 0 || before.mtimeMs < olderThan.getTime())) {
          await rm(repoDir, { recursive: true, force: true });
          removed.repositories += 1;
        }
      });
    }
    return removed;
  }

  async #resolve(ref: RemoteActionRef, remote: RemoteRepository): Promise<{ sha: string; refName?: string }> {
    const wanted = ref.ref;
    // A full SHA names the tree already: nothing to ask the server when it is cached.
    if (FULL_SHA.test(wanted.toLowerCase())) return { sha: wanted.toLowerCase() };
    const listed = await remote.lsRemote(wanted);
    if (listed) return listed;
    if (SHORT_SHA.test(wanted)) {
      const sha = await remote.expandShortSha(wanted);
      if (sha) return { sha };
    }
    throw remote.error('ref-not-found', `no tag, branch or commit "${wanted}" in ${remote.where}`, 'check the version after "@" in uses:');
  }

  async #checkSize(remote: RemoteRepository, sha: string): Promise<void> {
    const bytes = await remote.treeBytes(sha);
    if (bytes > this.#maxTreeBytes) {
      throw remote.error('too-large', `its tree at ${sha.slice(0, 12)} holds ${mib(bytes)}, over the ${mib(this.#maxTreeBytes)} limit`, 'use a smaller action or raise the limit');
    }
  }

  /** `git archive | tar -x` into a temporary folder, then one rename makes it visible. */
  async #unpack(remote: RemoteRepository, sha: string, repoDir: string, treeDir: string): Promise<void> {
    const temp = join(repoDir, `.tmp-${sha}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(temp);
    try {
      await remote.archiveInto(sha, temp);
      try {
        await rename(temp, treeDir);
      } catch (error) {
        // Another job or process finished the same tree first: theirs is as good as ours.
        if (!(await isDirectory(treeDir))) throw error;
        await rm(temp, { recursive: true, force: true });
      }
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      if (error instanceof ActionFetchError) throw error;
      if (remote.signal?.aborted) throw remote.error('cancelled', 'the fetch was cancelled', 'nothing to do: the next job fetches it again');
      const detail = (error as { shortMessage?: string; stderr?: string }).stderr || (error as Error).message;
      throw remote.error('failed', `unpacking ${sha.slice(0, 12)} failed: ${lastLine(detail)}`, 'check free disk space in the state folder');
    }
  }
}

/** A reference that did not come from parseActionRef is refused before it names a folder or a URL. */
function checkReference(ref: RemoteActionRef): void {
  const parsed = parseActionRef(ref.uses);
  const same =
    parsed.ok &&
    parsed.ref.kind === 'remote' &&
    parsed.ref.owner === ref.owner &&
    parsed.ref.repo === ref.repo &&
    parsed.ref.path === ref.path &&
    parsed.ref.ref === ref.ref &&
    parsed.ref.server === ref.server;
  if (!same) throw new ActionFetchError('invalid-reference', parsed.ok ? `action "${ref.uses}": the reference does not match its uses: text (parse it with parseActionRef)` : parsed.error);
}

/** The action's folder inside the tree, which must exist and must not lead out of it by a symlink. */
async function actionFolder(ref: RemoteActionRef, treeDir: string, sha: string): Promise<string> {
  const actionDir = ref.path === '' ? treeDir : join(treeDir, ...ref.path.split('/'));
  const missing = () =>
    new ActionFetchError('path-not-found', `action "${ref.uses}": no folder "${ref.path}" in ${ref.owner}/${ref.repo} at ${sha.slice(0, 12)} (check the path in uses:)`);
  let real: string;
  try {
    real = await realpath(actionDir);
  } catch {
    throw missing();
  }
  const root = await realpath(treeDir);
  if (real !== root && !real.startsWith(root + sep)) {
    throw new ActionFetchError('path-not-found', `action "${ref.uses}": "${ref.path}" is a symbolic link out of the repository (refusing to follow it)`);
  }
  if (!(await isDirectory(real))) throw missing();
  return actionDir;
}

/** The action's whole repository tree as a tar stream, for upload into the guest. */
export function actionTarStream(action: FetchedAction): { stream: Readable; done: Promise<void>; stop: () => void } {
  return tarStream(action.treeDir);
}

function webRoot(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Same scheme, host, port and path: the only place a forge's token may go. */
function sameWebRoot(a: string, b: string): boolean {
  try {
    const x = new URL(webRoot(a));
    const y = new URL(webRoot(b));
    return x.origin === y.origin && webRoot(x.pathname) === webRoot(y.pathname);
  } catch {
    return false;
  }
}

/** `github.com`, `127.0.0.1_3000`, `example.com_forgejo`: one safe folder name per host. */
function hostFolder(serverUrl: string): string {
  const url = new URL(serverUrl);
  const name = `${url.host}${webRoot(url.pathname)}`.toLowerCase().replace(/[^a-z0-9.-]+/g, '_');
  return name.startsWith('.') ? `_${name}` : name;
}

/** Folders exactly `depth` levels below `root` (host/owner/repo for depth 3). */
async function subfolders(root: string, depth: number): Promise<string[]> {
  if (depth === 0) return [root];
  const found: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory() && !entry.name.startsWith('.')) found.push(...(await subfolders(join(root, entry.name), depth - 1)));
  }
  return found;
}

/** Temporary trees of fetches that died (process killed) are removed once they are an hour old. */
async function removeStaleTemporaries(repoDir: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(repoDir).catch(() => [] as string[])) {
    if (!name.startsWith('.tmp-')) continue;
    const path = join(repoDir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && now - info.mtimeMs > STALE_TEMP_MS) await rm(path, { recursive: true, force: true });
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
