/**
 * The tiny initramfs: busybox, the modules that reach the root disk, and ./guest/initramfs/init.
 * Written as a newc archive in TypeScript, so /dev/console exists before init runs (without it the
 * kernel starts init with no stdout) and no root rights are needed to create it.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { copyModules, layGuestFiles } from './disk-tree.ts';
import type { KernelModule } from './kernel-modules.ts';
import { entriesFromDirectory, gzipNewcArchive } from './newc-archive.ts';

export interface InitramfsInputs {
  /** Folder to assemble the initramfs in (created). */
  workDir: string;
  busybox: string;
  kernelVersion: string;
  modulesDir: string;
  modules: readonly KernelModule[];
  guestDir: string;
  output: string;
}

export async function buildInitramfs(inputs: InitramfsInputs): Promise<void> {
  const root = inputs.workDir;
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await mkdir(path.join(root, 'dev'), { recursive: true });
  await copyFile(inputs.busybox, path.join(root, 'bin/busybox'));
  await copyModules(
    inputs.modulesDir,
    inputs.modules,
    path.join(root, 'lib/modules', inputs.kernelVersion),
    'tiny-initramfs.load',
  );
  await layGuestFiles(inputs.guestDir, root);
  const entries = await entriesFromDirectory(root);
  entries.push({ kind: 'chardev', path: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  entries.push({ kind: 'chardev', path: 'dev/null', mode: 0o666, major: 1, minor: 3 });
  await writeFile(inputs.output, gzipNewcArchive(entries));
}
