/**
 * Everything the job lifecycle needs from the host, resolved once per process: the catalog,
 * the folders, QEMU's path, and the accelerator (probed by booting, cached per host).
 */
import { mkdir } from 'node:fs/promises';
import type { ImageCatalog } from '../config/catalog.ts';
import type { Engine } from '../job/run-job.ts';
import { probeAccelerator } from './accel.ts';
import { hostTools, requireTool } from './host-tools.ts';
import { isPresent, localImage } from './images.ts';
import { stateDir } from './state-dir.ts';
import { sweepOrphans } from './sweep.ts';

export interface EngineOptions {
  stateDir: string;
  catalog: ImageCatalog;
  /** Default: accel.json in the state folder. */
  accelCacheFile?: string;
  /** Default 512 MiB. */
  minFreeBytes?: number;
  /** One line per notable event (the accelerator choice, a sweep). */
  log?: (line: string) => void;
}

export async function createEngine(options: EngineOptions): Promise<Engine> {
  const dirs = stateDir(options.stateDir);
  await Promise.all([dirs.images, dirs.jobs, dirs.logs].map((d) => mkdir(d, { recursive: true })));
  const [qemu] = await Promise.all([
    requireTool(hostTools.qemu),
    requireTool(hostTools.qemuImg),
    requireTool(hostTools.genisoimage),
    requireTool(hostTools.setpriv),
  ]);
  const swept = await sweepOrphans(dirs.jobs);
  if (swept.removedDirs.length > 0) {
    options.log?.(`swept ${swept.removedDirs.length} job folder(s) left by an earlier crash (${swept.killedPids.length} QEMU killed)`);
  }
  const probe = await probeKernel(options.catalog, dirs.images);
  const accel = await probeAccelerator({ qemu, cacheFile: options.accelCacheFile ?? dirs.accelCache, ...probe });
  options.log?.(accel.reason);
  return {
    catalog: options.catalog,
    imagesDir: dirs.images,
    jobsRoot: dirs.jobs,
    logsDir: dirs.logs,
    qemu,
    accel,
    minFreeBytes: options.minFreeBytes ?? 512 * 1024 ** 2,
  };
}

/** Any present image with a kernel of its own serves for the KVM probe. */
async function probeKernel(catalog: ImageCatalog, imagesDir: string): Promise<{ kernel?: string; initrd?: string }> {
  for (const [label, spec] of Object.entries(catalog)) {
    if (!spec.kernel) continue;
    const image = localImage(imagesDir, label, spec);
    if (await isPresent(image)) return { kernel: image.kernel, initrd: image.initrd };
  }
  return {};
}
