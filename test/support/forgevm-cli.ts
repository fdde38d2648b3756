/**
 * Drives the real `forgevm` command as a subprocess, the way a user runs it: from inside a git
 * repository, with its own state folder whose `images` points at the shared, cached `tiny` image
 * (built once by buildTinyImage, as test/support/vm-harness.ts does).
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { RunReport } from '../../src/cli/run.ts';
import { buildTinyImage } from '../../src/vm/image/tiny/build.ts';
import { defaultStateRoot, stateDir } from '../../src/vm/state-dir.ts';

export const FORGEVM_BIN = join(import.meta.dirname, '..', '..', 'bin', 'forgevm.js');

/** A fresh state folder sharing the built `tiny` image. Short path: QMP sockets live under it. */
export async function cliStateRoot(): Promise<string> {
  const sharedImages = stateDir(defaultStateRoot()).images;
  await mkdir(sharedImages, { recursive: true });
  await buildTinyImage({ imagesDir: sharedImages });
  const root = await mkdtemp(join(tmpdir(), 'fvc-'));
  await symlink(sharedImages, join(root, 'images'));
  return root;
}

/** Removes a state folder made by cliStateRoot (the images symlink goes, not what it points at). */
export async function removeStateRoot(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
}

/** A git repository on branch main with these files committed, as a user's clone would be. */
export async function gitRepo(files: Record<string, string>): Promise<{ dir: string; sha: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fvc-repo-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  const git = (...args: string[]) => execa('git', args, { cwd: dir });
  await git('init', '-q', '-b', 'main');
  await git('add', '.');
  await git('-c', 'user.name=Test', '-c', 'user.email=test@example.invalid', 'commit', '-q', '-m', 'fixtures');
  return { dir, sha: (await git('rev-parse', 'HEAD')).stdout.trim() };
}

/**
 * `forgevm ARGS` in `cwd` with this state folder. Never rejects: look at exitCode, stdout,
 * stderr and `all` (both, interleaved). The environment carries no other forgevm settings.
 */
export function forgevm(
  args: string[],
  options: {
    cwd: string;
    stateRoot: string;
    /** SIGKILL it after this long, so a hung run fails with its output instead of outliving the test. */
    timeoutMs?: number;
    /** Piped to standard input (otherwise it is empty). */
    input?: string | Buffer;
    /** Settings added to the environment. */
    env?: Record<string, string>;
  },
): ResultPromise<{ all: true; reject: false; killSignal: 'SIGKILL' }> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('FORGEVM_')) delete env[key];
  return execa(process.execPath, [FORGEVM_BIN, ...args], {
    cwd: options.cwd,
    env: { ...env, ...options.env, FORGEVM_STATE_DIR: options.stateRoot },
    ...(options.input !== undefined ? { input: options.input } : {}),
    extendEnv: false,
    all: true,
    reject: false,
    killSignal: 'SIGKILL',
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
  });
}

export async function readRunReport(file: string): Promise<RunReport> {
  return JSON.parse(await readFile(file, 'utf8')) as RunReport;
}

/** The summary table's row for a job instance: its cells, split on runs of 2+ spaces. */
export function summaryRow(output: string, key: string): string[] | undefined {
  const table = output.slice(output.lastIndexOf('\nJOB '));
  const line = table.split('\n').find((l) => l.startsWith(`${key}  `));
  return line?.trimEnd().split(/ {2,}/);
}
