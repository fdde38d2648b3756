/**
 * Builds the offline `tiny` test guest from Debian packages and the npm registry only: Debian's
 * kernel, a small initramfs that mounts a virtio-blk ext4 root, and a qcow2 root disk with
 * busybox, dropbear, bash, git, tar and the official Node.js (at /opt/forgevm/node, for JavaScript
 * actions), whose init applies a NoCloud seed and starts SSH.
 *
 * Output goes to <imagesDir>/tiny/. A build happens in a private folder and is renamed into place
 * only when complete, with recipe.sha256 written last, so an interrupted build never looks done.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureHostNode, guestNodeCacheIn, type HostNode } from '../../guest-node/host-cache.ts';
import { settleAll } from '../../../util/settle-all.ts';
import { writeBootKernel } from './boot-kernel.ts';
import { fetchDebs, pruneDebCache, resolveKernelPackage, type FetchedDeb } from './debian-packages.ts';
import { checkSharedLibraries, finishDiskTree, layGuestFiles, linkBusyboxApplets, copyModules, unpackDebs } from './disk-tree.ts';
import { buildInitramfs } from './initramfs.ts';
import { resolveModuleOrder, type KernelModule } from './kernel-modules.ts';
import {
  DISK_SIZE_MIB,
  GUEST_DIR,
  INITRAMFS_MODULES,
  KERNEL_META_PACKAGE,
  LINKED_BINARIES,
  NODE_DIR,
  NODE_RELEASE,
  PRUNED_PATHS,
  ROOTFS_MODULE_GROUPS,
  ROOTFS_PACKAGES,
  tinyRecipeHash,
} from './recipe.ts';
import { runTool } from './run-tool.ts';

export { tinyRecipeHash } from './recipe.ts';

export interface TinyImage {
  kernel: string;
  initrd: string;
  /** qcow2 root disk (use it as an overlay's backing file; never write to it). */
  disk: string;
  recipeHash: string;
}

export interface BuildTinyImageOptions {
  imagesDir: string;
  /** Rebuild even when the cached image matches the recipe. */
  force?: boolean;
  /** The host's guest-Node cache (see src/vm/guest-node); default <imagesDir>/.guest-node, as jobs use. */
  nodeCacheDir?: string;
  log?: (line: string) => void;
}

/** Kernel command line the image is made for (the image catalog carries its own copy). */
export const TINY_KERNEL_CMDLINE = 'console=ttyS0 root=/dev/vda rw quiet';

const FILES = { kernel: 'vmlinuz', initrd: 'initrd.img', disk: 'disk.qcow2', hash: 'recipe.sha256' } as const;

function imageIn(dir: string, recipeHash: string): TinyImage {
  return {
    kernel: path.join(dir, FILES.kernel),
    initrd: path.join(dir, FILES.initrd),
    disk: path.join(dir, FILES.disk),
    recipeHash,
  };
}

async function isBuilt(dir: string, recipeHash: string): Promise<boolean> {
  const stored = await readFile(path.join(dir, FILES.hash), 'utf8').catch(() => '');
  if (stored.trim() !== recipeHash) return false;
  for (const name of [FILES.kernel, FILES.initrd, FILES.disk]) {
    const info = await stat(path.join(dir, name)).catch(() => undefined);
    if (!info?.isFile() || info.size === 0) return false;
  }
  return true;
}

export async function buildTinyImage(opts: BuildTinyImageOptions): Promise<TinyImage> {
  const log = opts.log ?? (() => {});
  const recipeHash = tinyRecipeHash();
  const finalDir = path.join(opts.imagesDir, 'tiny');
  if (!opts.force && (await isBuilt(finalDir, recipeHash))) {
    log(`tiny image is up to date in ${finalDir}`);
    return imageIn(finalDir, recipeHash);
  }

  await mkdir(opts.imagesDir, { recursive: true });
  const staging = path.join(opts.imagesDir, `.tiny-build-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const caches = { debs: path.join(opts.imagesDir, '.debcache'), node: opts.nodeCacheDir ?? guestNodeCacheIn(opts.imagesDir) };
    await assemble(staging, caches, recipeHash, log);
    await replaceDir(path.join(staging, 'out'), finalDir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  log(`tiny image ready in ${finalDir}`);
  return imageIn(finalDir, recipeHash);
}

async function assemble(staging: string, caches: { debs: string; node: string }, recipeHash: string, log: (line: string) => void): Promise<void> {
  const out = path.join(staging, 'out');
  const kernelTree = path.join(staging, 'kernel');
  const diskTree = path.join(staging, 'rootfs');
  await mkdir(out, { recursive: true });

  const kernelPackage = await resolveKernelPackage(KERNEL_META_PACKAGE);
  log(`kernel package: ${kernelPackage}`);
  // Debian's archive and the npm registry are fetched from side by side.
  const fetched = await settleAll<[FetchedDeb[], HostNode]>([
    fetchDebs([kernelPackage, ...ROOTFS_PACKAGES], caches.debs, log),
    ensureHostNode(caches.node, { release: NODE_RELEASE, log }),
  ]);
  if (fetched.error) throw fetched.error;
  const [debs, node] = fetched.values as [FetchedDeb[], HostNode];
  await pruneDebCache(caches.debs, debs);
  const [kernelDeb, ...rootfsDebs] = debs;

  log('unpacking the kernel');
  await unpackDebs([kernelDeb!.file], kernelTree);
  const kernelVersion = await onlyEntry(path.join(kernelTree, 'lib/modules'), 'kernel module folder');
  const modulesDir = path.join(kernelTree, 'lib/modules', kernelVersion);
  const kernelFormat = await writeBootKernel(path.join(kernelTree, 'boot', `vmlinuz-${kernelVersion}`), path.join(out, FILES.kernel), log);
  log(`kernel ${kernelVersion} written as ${kernelFormat}`);

  const initramfsModules = await resolveModuleOrder(modulesDir, INITRAMFS_MODULES);
  log(`initramfs modules: ${initramfsModules.map((m) => m.name).join(' ')}`);
  const rootfsGroups: KernelModule[][] = [];
  for (const group of ROOTFS_MODULE_GROUPS) {
    // Each group is loaded in parallel with the others: it must not rely on another group's modules.
    const resolved = await resolveModuleOrder(modulesDir, group, [...initramfsModules, ...rootfsGroups.flat()]);
    rootfsGroups.push(resolved);
    log(`disk modules (group ${rootfsGroups.length}): ${resolved.map((m) => m.name).join(' ')}`);
  }

  log(`unpacking ${rootfsDebs.length} packages for the root disk`);
  await unpackDebs(rootfsDebs.map((d) => d.file), diskTree);
  log(`adding Node.js ${NODE_RELEASE.version} at ${NODE_DIR}`);
  await cp(node.guestTree, path.join(diskTree, NODE_DIR), { recursive: true });
  await checkSharedLibraries(diskTree, LINKED_BINARIES);
  const linked = await linkBusyboxApplets(diskTree);
  log(`linked ${linked} busybox applets`);
  for (const [i, group] of rootfsGroups.entries()) {
    await copyModules(modulesDir, group, path.join(diskTree, 'lib/modules', kernelVersion), `tiny-rootfs-${i + 1}.load`);
  }
  await finishDiskTree(diskTree, PRUNED_PATHS);
  await layGuestFiles(path.join(GUEST_DIR, 'rootfs'), diskTree);

  log('writing initrd.img');
  await buildInitramfs({
    workDir: path.join(staging, 'initramfs'),
    busybox: path.join(diskTree, 'bin/busybox'),
    kernelVersion,
    modulesDir,
    modules: initramfsModules,
    guestDir: path.join(GUEST_DIR, 'initramfs'),
    output: path.join(out, FILES.initrd),
  });
  // The kernel tree is the bulk of the staging folder; drop it before making the disk.
  await rm(kernelTree, { recursive: true, force: true });

  log(`writing disk.qcow2 (${DISK_SIZE_MIB} MiB ext4)`);
  const raw = path.join(staging, 'disk.raw');
  await runTool('mkfs.ext4', [
    '-q', '-F', '-L', 'tiny-root', '-m', '0', '-E', 'root_owner=0:0', '-d', diskTree, raw, `${DISK_SIZE_MIB}M`,
  ]);
  await runTool('qemu-img', ['convert', '-O', 'qcow2', raw, path.join(out, FILES.disk)]);
  await rm(raw, { force: true });

  // Written last: its presence with the right hash is what marks the image as complete.
  await writeFile(path.join(out, FILES.hash), `${recipeHash}\n`);
}

async function onlyEntry(dir: string, what: string): Promise<string> {
  const entries = await readdir(dir);
  if (entries.length !== 1 || !entries[0]) {
    throw new Error(`expected one ${what} in ${dir}, found ${entries.length}: the kernel package layout changed`);
  }
  return entries[0];
}

/** Put a finished build in place; the old image (if any) is moved aside first, then deleted. */
async function replaceDir(from: string, to: string): Promise<void> {
  const aside = `${to}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  const hadOld = await rename(to, aside).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
  await rename(from, to);
  if (hadOld) await rm(aside, { recursive: true, force: true });
}
