/**
 * Shared set-up for tests that boot real VMs: the `tiny` image is built once into the normal
 * images folder (cached by recipe, so CI builds it during setup and tests reuse it), and each
 * test file gets its own state folder whose `images` points at it.
 */
import { mkdtemp, mkdir, readdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildCatalog, type ImageCatalog } from '../../src/config/catalog.ts';
import type { Engine } from '../../src/job/run-job.ts';
import { createEngine } from '../../src/vm/engine.ts';
import { buildTinyImage } from '../../src/vm/image/tiny/build.ts';
import { defaultStateRoot, stateDir } from '../../src/vm/state-dir.ts';

export interface VmHarness {
  stateRoot: string;
  engine: Engine;
  catalog: ImageCatalog;
}

export async function vmHarness(extraImages: Record<string, unknown> = {}): Promise<VmHarness> {
  const shared = stateDir(defaultStateRoot());
  const sharedImages = shared.images;
  await mkdir(sharedImages, { recursive: true });
  await buildTinyImage({ imagesDir: sharedImages });
  // Short paths: QMP sockets live in job folders and UNIX socket paths are limited to 108 bytes.
  const stateRoot = await mkdtemp(join(tmpdir(), 'fvm-'));
  await symlink(sharedImages, join(stateRoot, 'images'));
  const { catalog, problems } = buildCatalog(extraImages);
  if (problems.length) throw new Error(problems.join('\n'));
  const engine = await createEngine({ stateDir: stateRoot, catalog, accelCacheFile: shared.accelCache });
  return { stateRoot, engine, catalog };
}

/** QEMU processes whose command line mentions this folder. */
export async function qemuProcessesUnder(dir: string): Promise<number[]> {
  const result = await execa('pgrep', ['-f', `qemu-system-x86_64.*${dir}`], { reject: false });
  return result.stdout.split('\n').filter(Boolean).map(Number);
}

export async function jobFolders(stateRoot: string): Promise<string[]> {
  try {
    return await readdir(join(stateRoot, 'jobs'));
  } catch {
    return [];
  }
}
