/**
 * The folder that becomes the tiny guest's root disk: unpacked Debian packages, busybox applet
 * links, /bin/bash, the kernel modules the disk's init loads, and the files from ./guest/rootfs.
 */
import { access, chmod, copyFile, lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readNeededLibraries } from './elf.ts';
import type { KernelModule } from './kernel-modules.ts';
import { listFiles } from './recipe.ts';
import { runTool } from './run-tool.ts';

const LIBRARY_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'lib', 'usr/lib'];

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

export async function unpackDebs(debs: readonly string[], into: string): Promise<void> {
  await mkdir(into, { recursive: true });
  for (const deb of debs) await runTool('dpkg-deb', ['-x', deb, into]);
}

/** Symlinks for every busybox applet that no real program already provides. */
export async function linkBusyboxApplets(root: string): Promise<number> {
  // busybox-static is a static x86-64 binary: asking it for its applet list works on any such host.
  const list = await runTool(path.join(root, 'bin/busybox'), ['--list-full']);
  let linked = 0;
  for (const applet of list.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = path.join(root, applet);
    if (await exists(at)) continue;
    await mkdir(path.dirname(at), { recursive: true });
    await symlink('/bin/busybox', at);
    linked++;
  }
  return linked;
}

/** Fail the build when a binary needs a shared library that no package in the recipe provides. */
export async function checkSharedLibraries(root: string, binaries: readonly string[]): Promise<void> {
  const seen = new Set<string>();
  const queue = binaries.map((b) => ({ file: path.join(root, b), from: b }));
  while (queue.length > 0) {
    const { file, from } = queue.shift()!;
    for (const soname of await readNeededLibraries(file)) {
      if (seen.has(soname)) continue;
      seen.add(soname);
      let found: string | undefined;
      for (const dir of LIBRARY_DIRS) {
        const candidate = path.join(root, dir, soname);
        if (await exists(candidate)) {
          found = candidate;
          break;
        }
      }
      if (!found) {
        throw new Error(`${from} needs ${soname}, which no package in the tiny recipe provides: add its package to ROOTFS_PACKAGES`);
      }
      queue.push({ file: found, from: soname });
    }
  }
}

export async function copyModules(
  modulesDir: string,
  modules: readonly KernelModule[],
  destModulesDir: string,
  loadListName: string,
): Promise<void> {
  for (const module of modules) {
    const dest = path.join(destModulesDir, module.relPath);
    await mkdir(path.dirname(dest), { recursive: true });
    await copyFile(path.join(modulesDir, module.relPath), dest);
  }
  await writeFile(path.join(destModulesDir, loadListName), modules.map((m) => `${m.relPath}\n`).join(''));
}

/** Scripts (#!) are executable, /etc/shadow is private, everything else is world-readable. */
async function guestFileMode(file: string, rel: string): Promise<number> {
  if (rel === 'etc/shadow') return 0o600;
  const head = (await readFile(file)).subarray(0, 2).toString('latin1');
  return head === '#!' ? 0o755 : 0o644;
}

/** Copy a guest overlay folder over `root`, replacing what is there (e.g. busybox's sbin/init link). */
export async function layGuestFiles(guestDir: string, root: string): Promise<void> {
  for (const rel of listFiles(guestDir)) {
    const src = path.join(guestDir, rel);
    const dest = path.join(root, rel);
    await mkdir(path.dirname(dest), { recursive: true });
    await rm(dest, { force: true });
    await copyFile(src, dest);
    await chmod(dest, await guestFileMode(src, rel));
  }
}

export async function finishDiskTree(root: string, prunedPaths: readonly string[]): Promise<void> {
  for (const rel of prunedPaths) await rm(path.join(root, rel), { recursive: true, force: true });
  // Root's login shell; bash-static installs itself as /bin/bash-static.
  await access(path.join(root, 'bin/bash-static'));
  await rm(path.join(root, 'bin/bash'), { force: true });
  await symlink('bash-static', path.join(root, 'bin/bash'));
  const dirs: Array<[string, number]> = [
    ['proc', 0o555], ['sys', 0o555], ['dev', 0o755], ['run', 0o755], ['tmp', 0o1777],
    ['root', 0o700], ['home', 0o755], ['mnt', 0o755], ['etc/dropbear', 0o755],
    ['var/lib', 0o755], ['var/log', 0o755], ['var/tmp', 0o1777],
    ['usr/local/bin', 0o755], ['usr/local/sbin', 0o755],
  ];
  for (const [rel, mode] of dirs) {
    await mkdir(path.join(root, rel), { recursive: true });
    await chmod(path.join(root, rel), mode);
  }
}
