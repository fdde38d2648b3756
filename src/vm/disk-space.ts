/** Free space where jobs write, so a full disk is reported before QEMU fails obscurely. */
import { mkdir, statfs } from 'node:fs/promises';

export async function freeBytes(dir: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  const stats = await statfs(dir);
  return stats.bavail * stats.bsize;
}

export class DiskFullError extends Error {}

/** A job needs room for its overlay's first writes, the workspace and its log. */
export async function requireFreeSpace(dir: string, minBytes: number): Promise<void> {
  const free = await freeBytes(dir);
  if (free < minBytes) {
    throw new DiskFullError(
      `not enough free disk in ${dir}: ${formatBytes(free)} free, a job needs at least ${formatBytes(minBytes)}; free some space or point FORGEVM_STATE_DIR at a larger disk`,
    );
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
