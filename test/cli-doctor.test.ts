/** `forgevm doctor` tells what this host has and, for each problem, the fix. */
import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTinyImage } from '../src/vm/image/tiny/build.ts';
import { defaultStateRoot, stateDir } from '../src/vm/state-dir.ts';

const forgevm = (args: string[], env: Record<string, string>) =>
  execa(process.execPath, ['bin/forgevm.js', ...args], { env: { ...process.env, ...env }, reject: false, all: true });

describe('forgevm doctor', () => {
  let withImages: string;
  beforeAll(async () => {
    const shared = stateDir(defaultStateRoot()).images;
    await buildTinyImage({ imagesDir: shared });
    withImages = await mkdtemp(join(tmpdir(), 'fvm-doc-'));
    await symlink(shared, join(withImages, 'images'));
  });

  it('reports QEMU, the tools, the images, KVM and free disk', async () => {
    const result = await forgevm(['doctor'], { FORGEVM_STATE_DIR: withImages });
    expect(result.all).toMatch(/ok {4}QEMU version: QEMU emulator version \d+\.\d+/);
    expect(result.all).toMatch(/ok {4}qemu-img \(/);
    expect(result.all).toMatch(/ok {4}genisoimage \(/);
    expect(result.all).toMatch(/ok {4}tiny present/);
    expect(result.all).toMatch(/-\s+debian-13 not present \(forgevm image pull debian-13\)/);
    expect(result.all).toMatch(/ok {4}Node\.js 24\.\d+\.\d+ for JavaScript actions cached in .*\/images\/\.guest-node\/node-v24\.\d+\.\d+-linux-x64\n/);
    // On this project's machines /dev/kvm exists but guests hang: the probe must say so, not hang.
    expect(result.all).toMatch(/(ok|warn) +(KVM usable|KVM present but unusable \(.*\), using TCG|KVM not available .*using TCG)/);
    expect(result.all).toMatch(/ok {4}[\d.]+ (GiB|TiB) free in /);
    expect(result.exitCode).toBe(0);
    expect(result.all).toMatch(/ready to run jobs/);
  }, 120_000);

  it('exits non-zero with the fix for each problem', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'fvm-doc-'));
    // A PATH with node and nothing else.
    const bin = join(empty, 'bin');
    await mkdir(bin);
    await symlink(process.execPath, join(bin, 'node'));
    const result = await forgevm(['doctor'], { FORGEVM_STATE_DIR: empty, PATH: bin });
    expect(result.exitCode).toBe(1);
    expect(result.all).toMatch(/FAIL {2}qemu-system-x86_64 missing \(runs the job VMs\)/);
    expect(result.all).toMatch(/to fix:\n(.*\n)*\s+- install qemu-system-x86_64: apt-get install qemu-system-x86/);
    expect(result.all).toMatch(/- build the test image: forgevm image build tiny/);
    // Not a failure: the first job that needs it fetches it.
    expect(result.all).toMatch(/-\s+Node\.js 24\.\d+\.\d+ for JavaScript actions not cached \(fetched from the npm registry by "forgevm image build tiny", or by the first job that needs it\)/);
  }, 60_000);
});
