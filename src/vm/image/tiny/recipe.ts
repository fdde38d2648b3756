/**
 * What the `tiny` guest image is made of. Everything here, plus every file under ./guest/, goes
 * into the recipe hash: change any of it and the next build rebuilds the image.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_NODE_DIR, GUEST_NODE_RELEASE, type GuestNodeRelease } from '../../guest-node/release.ts';

/** Bump when the builder's own logic changes what it produces. */
export const TINY_BUILDER_VERSION = 5;

/** Debian's meta package; the versioned kernel package behind it is resolved with apt-cache. */
export const KERNEL_META_PACKAGE = 'linux-image-amd64';

/** Debian packages unpacked onto the root disk (shared libraries listed explicitly, checked at build). */
export const ROOTFS_PACKAGES = [
  'busybox-static',
  'bash-static',
  'dropbear-bin',
  'libtomcrypt1',
  'libtommath1',
  'libgmp10',
  'libcrypt1',
  'zlib1g',
  'libc6',
  'git',
  'libpcre2-8-0',
  'tar',
  'libacl1',
  'libselinux1',
  // Node.js (below) is linked against libstdc++ and libgcc_s.
  'libstdc++6',
  'libgcc-s1',
] as const;

/** The guest Node (official build, from the npm registry) baked in at the path every image uses. */
export const NODE_RELEASE = GUEST_NODE_RELEASE;
export const NODE_DIR = GUEST_NODE_DIR;

/** Binaries whose shared libraries (DT_NEEDED, transitively) must all be present on the disk. */
export const LINKED_BINARIES = [
  'usr/bin/git',
  'usr/sbin/dropbear',
  'usr/bin/dropbearconvert',
  'usr/bin/dropbearkey',
  'bin/tar',
  `${GUEST_NODE_DIR.slice(1)}/bin/node`,
] as const;

/** Modules the initramfs loads to reach the root disk: virtio-blk and ext4 (crc32c is a soft dependency). */
export const INITRAMFS_MODULES = ['crc32c_generic', 'virtio_pci', 'virtio_blk', 'ext4'] as const;

/**
 * Modules the disk's init loads, in groups it loads side by side (the storage chain is the slow
 * one under TCG): network, entropy and the ACPI power button (evdev gives it a /dev/input node);
 * then the IDE CD-ROM that carries the seed.
 */
export const ROOTFS_MODULE_GROUPS = [
  ['virtio_net', 'virtio_rng', 'evdev', 'button'],
  ['ata_piix', 'sr_mod', 'isofs'],
] as const;

/** Folders removed from the disk: documentation nobody reads in a CI guest. */
export const PRUNED_PATHS = [
  'usr/share/doc',
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/share/bug',
] as const;

/**
 * Virtual size of the root disk; the qcow2 is sparse, so only used blocks cost space. Node takes
 * ~120 MiB of it; jobs get the rest (workspaces, actions and what they install).
 */
export const DISK_SIZE_MIB = 1024;

/** Guest files: ./guest/initramfs becomes the initramfs' files, ./guest/rootfs is laid over the disk. */
export const GUEST_DIR = fileURLToPath(new URL('./guest/', import.meta.url));

/** Relative paths of all files under `dir`, sorted, with '/' separators. */
export function listFiles(dir: string): string[] {
  const entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  return entries
    .filter((entry) => statSync(path.join(dir, entry)).isFile())
    .map((entry) => entry.split(path.sep).join('/'))
    .sort();
}

/**
 * Hash of the recipe: builder version, package and module lists, the Node release (version and
 * both pins) and its place, and every guest file's path and contents. The parameters exist for
 * tests; the image always uses GUEST_DIR and NODE_RELEASE.
 */
export function tinyRecipeHash(guestDir: string = GUEST_DIR, nodeRelease: GuestNodeRelease = NODE_RELEASE): string {
  const hash = createHash('sha256');
  const recipe = {
    builder: TINY_BUILDER_VERSION,
    kernel: KERNEL_META_PACKAGE,
    packages: ROOTFS_PACKAGES,
    linked: LINKED_BINARIES,
    initramfsModules: INITRAMFS_MODULES,
    rootfsModules: ROOTFS_MODULE_GROUPS,
    pruned: PRUNED_PATHS,
    diskMiB: DISK_SIZE_MIB,
    node: { release: nodeRelease, dir: NODE_DIR },
  };
  hash.update(JSON.stringify(recipe));
  for (const file of listFiles(guestDir)) {
    const contents = readFileSync(path.join(guestDir, file));
    hash.update(`\0${file}\0${contents.length}\0`);
    hash.update(contents);
  }
  return hash.digest('hex');
}
