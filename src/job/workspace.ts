/**
 * The job's source tree: the repository at one commit, with a shallow `.git` so `git` works in
 * the guest, and no remote (so no credentials or URLs) in it. Built on the host in the job
 * folder while the VM boots, then streamed in as a tar.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { execa } from 'execa';

export interface WorkspaceSource {
  /** A local repository (working tree or bare cache) that contains `sha`. */
  repoDir: string;
  sha: string;
  /** Branch to leave checked out (`refs/heads/x` or `x`); detached at sha when absent or a tag. */
  branch?: string;
}

/** Commits of history in the workspace: 1 (GitHub's checkout default), N, or 0 for all of it. */
export type HistoryDepth = number;

const git = (cwd: string, args: string[]) =>
  execa('git', ['-c', 'advice.detachedHead=false', '-c', 'init.defaultBranch=main', ...args], {
    cwd,
    env: { GIT_TERMINAL_PROMPT: '0' },
  });

export async function prepareWorkspace(source: WorkspaceSource, into: string, depth: HistoryDepth = 1): Promise<void> {
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(source.sha)) throw new Error(`"${source.sha}" is not a full commit SHA`);
  await mkdir(into, { recursive: true });
  await git(into, ['init', '-q']);
  try {
    await git(into, ['fetch', '-q', '--no-tags', ...(depth > 0 ? [`--depth=${depth}`] : []), source.repoDir, source.sha]);
  } catch (error) {
    throw new Error(`commit ${source.sha.slice(0, 12)} is not in ${source.repoDir}: ${((error as { stderr?: string }).stderr ?? '').trim().split('\n').at(-1)}`);
  }
  const branch = source.branch?.replace(/^refs\/heads\//, '');
  if (branch && !source.branch?.startsWith('refs/tags/') && (await git(into, ['check-ref-format', '--branch', branch]).then(() => true, () => false))) {
    await git(into, ['checkout', '-q', '-B', branch, source.sha]);
  } else {
    await git(into, ['checkout', '-q', '--detach', source.sha]);
  }
}

/**
 * The workspace folder as a tar stream (its contents at the archive root). The reader starts
 * late (when the SSH channel opens) and a child's unread pipe output is lost once it exits, so
 * the output goes straight into a PassThrough, whose backpressure then pauses tar.
 */
export function tarStream(dir: string): { stream: Readable; done: Promise<void>; stop: () => void } {
  const child = spawn('tar', ['-c', '-f', '-', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stream = child.stdout.pipe(new PassThrough());
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()).slice(-2000));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`packing the workspace failed: ${stderr.trim() || `tar exit ${code}`}`))));
  });
  // When the reader gave up early, tar would block on a full pipe forever: end it.
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return { stream, done, stop };
}
