/**
 * What every VM benchmark needs: the shared `tiny` image (built once, cached by recipe, as the
 * tests do), a private state folder whose `images` points at it, an engine, and a one-commit
 * repository to use as the job's workspace.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildCatalog, builtinImages, type ImageCatalog } from '../../src/config/catalog.ts';
import type { Engine } from '../../src/job/run-job.ts';
import { createEngine } from '../../src/vm/engine.ts';
import { buildTinyImage, type TinyImage } from '../../src/vm/image/tiny/build.ts';
import { defaultStateRoot, stateDir } from '../../src/vm/state-dir.ts';

export interface BenchSetup {
  /** Private state folder (short path: QMP socket paths are limited to 108 bytes). */
  stateRoot: string;
  engine: Engine;
  catalog: ImageCatalog;
  tiny: TinyImage;
  repo: { dir: string; sha: string };
  /** Remove the private folders (the shared image stays). */
  cleanup(): Promise<void>;
}

export interface BenchSetupOptions {
  log?: (line: string) => void;
  /** Override the tiny image's boot deadline (many VMs at once under TCG boot slowly). */
  bootTimeoutSeconds?: number;
}

export async function benchSetup(options: BenchSetupOptions = {}): Promise<BenchSetup> {
  const log = options.log ?? (() => {});
  const shared = stateDir(defaultStateRoot());
  await mkdir(shared.images, { recursive: true });
  log(`tiny image: ${shared.images}/tiny (built if missing, a few minutes the first time)`);
  const tiny = await buildTinyImage({ imagesDir: shared.images, log });
  const stateRoot = await mkdtemp(join(tmpdir(), 'fvb-'));
  await symlink(shared.images, join(stateRoot, 'images'));
  const overrides = options.bootTimeoutSeconds ? { tiny: { ...builtinImages.tiny, bootTimeoutSeconds: options.bootTimeoutSeconds } } : {};
  const { catalog, problems } = buildCatalog(overrides);
  if (problems.length) throw new Error(problems.join('\n'));
  const engine = await createEngine({ stateDir: stateRoot, catalog, accelCacheFile: shared.accelCache, log });
  const repo = await makeRepo();
  return {
    stateRoot,
    engine,
    catalog,
    tiny,
    repo,
    async cleanup() {
      await rm(stateRoot, { recursive: true, force: true });
      await rm(repo.dir, { recursive: true, force: true });
    },
  };
}

async function makeRepo(): Promise<{ dir: string; sha: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fvb-repo-'));
  const git = (...args: string[]) => execa('git', args, { cwd: dir });
  await git('init', '-q', '-b', 'main');
  await writeFile(join(dir, 'README'), 'benchmark workspace\n');
  await git('add', '.');
  await git('-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', 'commit', '-q', '-m', 'bench');
  return { dir, sha: (await git('rev-parse', 'HEAD')).stdout.trim() };
}
