/**
 * Bad input to the engine: each gives one line naming the cause and the fix, quickly, and
 * leaves no process, port or file behind.
 */
import { copyFile, mkdir, mkdtemp, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../src/job/run-job.ts';
import { createEngine } from '../src/vm/engine.ts';
import { jobFromYaml, logIn, stepsOf } from './support/job-fixture.ts';
import { jobFolders, qemuProcessesUnder, vmHarness, type VmHarness } from './support/vm-harness.ts';
import { buildCatalog } from '../src/config/catalog.ts';

let h: VmHarness;
let scratch: string;
let repo: { dir: string; sha: string };

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'fvm-bad-'));
  const images = join(scratch, 'own-images');
  await mkdir(images);
  h = await vmHarness({
    garbage: { disk: { path: join(images, 'garbage.qcow2') }, user: 'root' },
    truncated: { disk: { path: join(images, 'truncated.qcow2') }, user: 'root' },
    absent: { disk: { path: join(images, 'absent.qcow2') }, user: 'root' },
  });
  await writeFile(join(images, 'garbage.qcow2'), 'this is not a disk image\n'.repeat(1000));
  const tinyDisk = join(h.engine.imagesDir, 'tiny', 'disk.qcow2');
  await copyFile(tinyDisk, join(images, 'truncated.qcow2'));
  await truncate(join(images, 'truncated.qcow2'), Math.floor((await stat(tinyDisk)).size / 2));
  const dir = join(scratch, 'repo');
  await mkdir(dir);
  await execa('git', ['init', '-q', '-b', 'main'], { cwd: dir });
  await execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', 'commit', '-q', '--allow-empty', '-m', 'x'], { cwd: dir });
  repo = { dir, sha: (await execa('git', ['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim() };
});

async function attempt(label: string, engine = h.engine) {
  const instance = jobFromYaml(`jobs:\n  x:\n    runs-on: ${label}\n    steps:\n      - run: "true"\n`);
  const started = Date.now();
  const result = await runJob(engine, {
    id: `bad-${label}`,
    label,
    workspace: { repoDir: repo.dir, sha: repo.sha },
    repoName: 'repo',
    log: logIn(scratch, label),
    runSteps: stepsOf(instance, repo.sha),
  });
  return { result, seconds: (Date.now() - started) / 1000 };
}

async function expectNothingLeft() {
  expect(await jobFolders(h.stateRoot)).toEqual([]);
  expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
}

describe('bad input to the engine', () => {
  it('an unknown image label names the known ones', async () => {
    const { result, seconds } = await attempt('windows-11');
    expect(result.conclusion).toBe('failure');
    expect(result.error).toMatch(/^unknown image label "windows-11": runs-on must name an image in the catalog \(.*tiny.*\)/);
    expect(seconds).toBeLessThan(5);
    await expectNothingLeft();
  });

  it('an image that was never downloaded says how to get it', async () => {
    const { result } = await attempt('absent');
    expect(result.error).toMatch(/image "absent" is not present at .*absent\.qcow2/);
    await expectNothingLeft();
  });

  it('a corrupt image is named corrupt, with the fix', async () => {
    const { result, seconds } = await attempt('garbage');
    expect(result.error).toMatch(/^image "garbage" is corrupt: expected qcow2, found raw data: download it again/);
    expect(seconds).toBeLessThan(10);
    await expectNothingLeft();
  });

  it('a truncated image is caught before QEMU starts', async () => {
    const { result, seconds } = await attempt('truncated');
    expect(result.error).toMatch(/^image "truncated" is corrupt or truncated/);
    expect(seconds).toBeLessThan(15);
    await expectNothingLeft();
  });

  it('a commit that is not in the repository stops the VM that was booting meanwhile', async () => {
    const instance = jobFromYaml('jobs:\n  x:\n    runs-on: tiny\n    steps:\n      - run: "true"\n');
    const missing = 'f'.repeat(40);
    const result = await runJob(h.engine, {
      id: 'bad-commit',
      label: 'tiny',
      workspace: { repoDir: repo.dir, sha: missing },
      repoName: 'repo',
      log: logIn(scratch, 'bad-commit'),
      runSteps: stepsOf(instance, missing),
    });
    expect(result.error).toMatch(/^commit ffffffffffff is not in /);
    await expectNothingLeft();
  });

  it('a missing qemu binary names the package to install', async () => {
    const savedPath = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(createEngine({ stateDir: h.stateRoot, catalog: buildCatalog().catalog })).rejects.toThrow(
        /^qemu-system-x86_64 not found on PATH \(it runs the job VMs\): install it with "apt-get install qemu-system-x86"$/,
      );
    } finally {
      process.env.PATH = savedPath;
    }
  });

  describe('a full disk', () => {
    let mountpoint: string;
    beforeAll(async () => {
      mountpoint = await mkdtemp(join(tmpdir(), 'fvm-full-'));
      // A real, small file system: 8 MiB of tmpfs (CI runs as root).
      await execa('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountpoint]);
    });
    afterAll(async () => {
      await execa('umount', [mountpoint], { reject: false });
    });

    it('refuses to start a job and says where to free space', async () => {
      const engine = await createEngine({ stateDir: mountpoint, catalog: h.catalog, accelCacheFile: join(scratch, 'accel.json') });
      engine.imagesDir = h.engine.imagesDir;
      const { result } = await attempt('tiny', engine);
      expect(result.error).toMatch(/^not enough free disk in .*fvm-full-.*: .* free, a job needs at least 512\.0 MiB; free some space or point FORGEVM_STATE_DIR at a larger disk$/);
      expect(await readdir(join(mountpoint, 'jobs'))).toEqual([]);
    });
  });
});
