/**
 * The offline `tiny` guest image: its recipe hash, a real build from Debian packages (the first run
 * downloads them; later runs reuse <imagesDir>/.debcache), and the build cache.
 * Booting the image is covered by the VM engine's tests.
 */
import { execa } from 'execa';
import { cp, mkdtemp, readFile, readdir, rm, stat, writeFile, appendFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyImage, tinyRecipeHash, type TinyImage } from '../src/vm/image/tiny/build.ts';
import { hasPvhEntryNote } from '../src/vm/image/tiny/elf.ts';
import { GUEST_NODE_RELEASE } from '../src/vm/guest-node/release.ts';
import { guestNodeCacheIn } from '../src/vm/guest-node/host-cache.ts';
import { DISK_SIZE_MIB, GUEST_DIR } from '../src/vm/image/tiny/recipe.ts';
import { defaultStateRoot, stateDir } from '../src/vm/state-dir.ts';

// Shared between runs so the .deb cache makes CI rebuilds fast; override with FORGEVM_TEST_IMAGES_DIR.
const imagesDir = process.env.FORGEVM_TEST_IMAGES_DIR ?? path.join(os.tmpdir(), 'forgevm-test-images');
const scratch: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tiny-test-'));
  scratch.push(dir);
  return dir;
}

afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

describe('tiny recipe hash', () => {
  it('is a stable sha256 of the shipped recipe', () => {
    const first = tinyRecipeHash();
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(tinyRecipeHash()).toBe(first);
    expect(tinyRecipeHash(GUEST_DIR)).toBe(first);
  });

  it('changes when a guest script changes, and only then', async () => {
    const copy = path.join(await tempDir(), 'guest');
    await cp(GUEST_DIR, copy, { recursive: true });
    expect(tinyRecipeHash(copy)).toBe(tinyRecipeHash());

    const init = path.join(copy, 'rootfs/sbin/init');
    const original = await readFile(init);
    await appendFile(init, '# changed\n');
    const changed = tinyRecipeHash(copy);
    expect(changed).not.toBe(tinyRecipeHash());

    await writeFile(init, original);
    expect(tinyRecipeHash(copy)).toBe(tinyRecipeHash());

    await writeFile(path.join(copy, 'initramfs/extra'), 'new file\n');
    expect(tinyRecipeHash(copy)).not.toBe(tinyRecipeHash());
  });

  it('changes when the pinned Node release changes', () => {
    const pinned = tinyRecipeHash(GUEST_DIR, GUEST_NODE_RELEASE);
    expect(pinned).toBe(tinyRecipeHash());
    expect(tinyRecipeHash(GUEST_DIR, { ...GUEST_NODE_RELEASE, version: '24.99.0' })).not.toBe(pinned);
    expect(tinyRecipeHash(GUEST_DIR, { ...GUEST_NODE_RELEASE, integrity: `sha512-${'A'.repeat(86)}==` })).not.toBe(pinned);
    expect(tinyRecipeHash(GUEST_DIR, { ...GUEST_NODE_RELEASE, binarySha256: '0'.repeat(64) })).not.toBe(pinned);
  });
});

describe('tiny image cache', () => {
  it('returns an image whose recipe.sha256 matches without touching it', async () => {
    const dir = await tempDir();
    const tiny = path.join(dir, 'tiny');
    await mkdir(tiny);
    for (const name of ['vmlinuz', 'initrd.img', 'disk.qcow2']) await writeFile(path.join(tiny, name), 'placeholder');
    await writeFile(path.join(tiny, 'recipe.sha256'), `${tinyRecipeHash()}\n`);
    const lines: string[] = [];
    const image = await buildTinyImage({ imagesDir: dir, log: (l) => lines.push(l) });
    expect(image).toEqual({
      kernel: path.join(tiny, 'vmlinuz'),
      initrd: path.join(tiny, 'initrd.img'),
      disk: path.join(tiny, 'disk.qcow2'),
      recipeHash: tinyRecipeHash(),
    });
    expect(await readFile(image.disk, 'utf8')).toBe('placeholder');
    expect(lines.join('\n')).toMatch(/up to date/);
    expect(await readdir(dir)).toEqual(['tiny']);
  });
});

describe('tiny image build', () => {
  let image: TinyImage;
  let buildLog: string[];

  beforeAll(async () => {
    buildLog = [];
    // The guest Node comes from the shared cache (the first build anywhere fetches it from npm).
    const nodeCacheDir = guestNodeCacheIn(stateDir(defaultStateRoot()).images);
    image = await buildTinyImage({ imagesDir, force: true, nodeCacheDir, log: (l) => buildLog.push(l) });
  }, 900_000);

  it('writes kernel, initrd, qcow2 disk and the recipe hash into <imagesDir>/tiny', async () => {
    const dir = path.join(imagesDir, 'tiny');
    expect(image.kernel).toBe(path.join(dir, 'vmlinuz'));
    expect(image.initrd).toBe(path.join(dir, 'initrd.img'));
    expect(image.disk).toBe(path.join(dir, 'disk.qcow2'));
    expect(image.recipeHash).toBe(tinyRecipeHash());
    expect((await readFile(path.join(dir, 'recipe.sha256'), 'utf8')).trim()).toBe(tinyRecipeHash());
    // No staging folders are left behind next to the image.
    expect((await readdir(imagesDir)).filter((e) => e.startsWith('.tiny-build-') || e.includes('.old-'))).toEqual([]);
  });

  it('carries a bootable Debian kernel (PVH ELF, or the bzImage as a fallback)', async () => {
    const kernel = await readFile(image.kernel);
    const isPvhElf = hasPvhEntryNote(kernel);
    const isBzImage = kernel.toString('latin1', 0x202, 0x206) === 'HdrS';
    expect(isPvhElf || isBzImage).toBe(true);
    expect(buildLog.join('\n')).toMatch(/kernel package: linux-image-\d+\.\d+\.\d+-\d+-amd64/);
  });

  it('has an initramfs with busybox, /dev/console, the init and the root-disk modules in order', async () => {
    const archive = gunzipSync(await readFile(image.initrd)).toString('latin1');
    expect(archive.startsWith('070701')).toBe(true);
    for (const name of ['init', 'bin/busybox', 'dev/console', 'TRAILER!!!']) expect(archive).toContain(`${name}\0`);
    const load = /tiny-initramfs\.load\0+([^\0]*)/.exec(archive)?.[1] ?? '';
    const order = load.trim().split('\n').map((l) => path.basename(l, '.ko'));
    for (const module of ['virtio_pci', 'virtio_blk', 'ext4']) expect(order).toContain(module);
    expect(order.indexOf('virtio')).toBeLessThan(order.indexOf('virtio_blk'));
    expect(order.indexOf('jbd2')).toBeLessThan(order.indexOf('ext4'));
  });

  it('bakes in the pinned Node.js', () => {
    expect(buildLog).toContain(`adding Node.js ${GUEST_NODE_RELEASE.version} at /opt/forgevm/node`);
  });

  it('has a sparse qcow2 root disk', async () => {
    const { stdout } = await execa('qemu-img', ['info', '--output=json', image.disk]);
    const info = JSON.parse(stdout) as { format: string; 'virtual-size': number; 'actual-size': number };
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(DISK_SIZE_MIB * 1024 * 1024);
    expect(info['actual-size']).toBeLessThan(info['virtual-size'] / 2);
  });

  it('keeps the downloaded packages in <imagesDir>/.debcache', async () => {
    const cached = await readdir(path.join(imagesDir, '.debcache'));
    for (const pkg of ['busybox-static_', 'dropbear-bin_', 'bash-static_', 'git_', 'linux-image-', 'libstdc++6_', 'libgcc-s1_']) {
      expect(cached.some((f) => f.startsWith(pkg) && f.endsWith('.deb'))).toBe(true);
    }
  });

  it('returns at once on a second call, without rebuilding', async () => {
    const before = await Promise.all([image.kernel, image.initrd, image.disk].map((f) => stat(f)));
    const started = Date.now();
    const again = await buildTinyImage({ imagesDir });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(again).toEqual(image);
    const after = await Promise.all([image.kernel, image.initrd, image.disk].map((f) => stat(f)));
    expect(after.map((s) => s.mtimeMs)).toEqual(before.map((s) => s.mtimeMs));
    expect(after.map((s) => s.ino)).toEqual(before.map((s) => s.ino));
  });

  it("parses forgevm's NoCloud seed with the guest's busybox awk", async () => {
    const work = await tempDir();
    const cache = path.join(imagesDir, '.debcache');
    const busyboxDeb = (await readdir(cache)).find((f) => f.startsWith('busybox-static_'));
    await execa('dpkg-deb', ['-x', path.join(cache, busyboxDeb!), path.join(work, 'bb')]);
    const hostKey = [
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
      'QyNTUxOQAAACAihS77sCp+htUwXi4k+VX0BVwxDAfEiI8n1xdYkj1ZEQAAAJB/jYXyf42F',
      '-----END OPENSSH PRIVATE KEY-----',
    ];
    await writeFile(path.join(work, 'meta-data'), 'instance-id: forgevm-3f2a9c\nlocal-hostname: forgevm-meta\n');
    await writeFile(
      path.join(work, 'user-data'),
      [
        '#cloud-config',
        'hostname: forgevm-3f2a9c',
        'disable_root: false',
        'ssh_pwauth: false',
        'ssh_authorized_keys:',
        '  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIjobkey forgevm-job',
        'ssh_deletekeys: true',
        'ssh_genkeytypes: []',
        'ssh_keys:',
        '  ed25519_private: |',
        ...hostKey.map((l) => `    ${l}`),
        '  ed25519_public: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIhostkey forgevm-host',
        'unknown_key: ignored',
        '',
      ].join('\n'),
    );
    const out = path.join(work, 'out');
    await mkdir(out);
    await execa(path.join(work, 'bb/bin/busybox'), [
      'awk', '-v', `out=${out}`, '-f', path.join(GUEST_DIR, 'rootfs/usr/lib/tiny/cloud-seed.awk'),
      path.join(work, 'meta-data'), path.join(work, 'user-data'),
    ]);
    const read = (name: string) => readFile(path.join(out, name), 'utf8');
    expect(await read('instance-id')).toBe('forgevm-3f2a9c\n');
    expect(await read('hostname')).toBe('forgevm-3f2a9c\n');
    expect(await read('authorized_keys')).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIjobkey forgevm-job\n');
    expect(await read('ssh_host_ed25519_key')).toBe(`${hostKey.join('\n')}\n`);
    expect((await readdir(out)).sort()).toEqual(['authorized_keys', 'hostname', 'instance-id', 'ssh_host_ed25519_key']);
  });
});
