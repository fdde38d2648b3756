/**
 * The per-job disk: a qcow2 overlay whose backing file is the base image. The base is only
 * ever read. Before building on it, check it is the format the catalog says and whole.
 */
import { stat } from 'node:fs/promises';
import { execa } from 'execa';
import type { LocalImage } from './vm.ts';

export class BrokenImageError extends Error {}

export async function createOverlay(image: LocalImage, overlay: string): Promise<void> {
  await checkBaseImage(image);
  const size = image.spec.diskGiB ? [`${image.spec.diskGiB}G`] : [];
  const result = await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.disk, '-F', image.spec.format, overlay, ...size], {
    reject: false,
  });
  if (result.exitCode !== 0) {
    throw new BrokenImageError(`image "${image.label}" cannot back a job disk: ${result.stderr.trim()}; rebuild or re-pull it`);
  }
}

/**
 * Base images that passed the checks below, by path, with the file identity they had then. The
 * base is never written, so the same inode, size and mtime means the same verdict: later jobs
 * skip two `qemu-img` runs. A rebuilt or re-pulled image is a new file and is checked again.
 */
const checkedBases = new Map<string, string>();

/** Cheap checks only (this runs for every job): format header and, for qcow2, the image's own size bookkeeping. */
export async function checkBaseImage(image: LocalImage): Promise<void> {
  const fix = image.spec.builtin
    ? `rebuild it with "forgevm image build ${image.label} --force"`
    : `download it again with "forgevm image pull ${image.label} --force"`;
  let identity: string;
  try {
    const info = await stat(image.disk);
    identity = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${image.spec.format}`;
  } catch {
    throw new BrokenImageError(`image "${image.label}" is not present at ${image.disk}: ${image.spec.builtin ? `build it with "forgevm image build ${image.label}"` : `download it with "forgevm image pull ${image.label}"`}`);
  }
  if (checkedBases.get(image.disk) === identity) return;
  await inspectBaseImage(image, fix);
  checkedBases.set(image.disk, identity);
}

async function inspectBaseImage(image: LocalImage, fix: string): Promise<void> {
  const info = await execa('qemu-img', ['info', '--output=json', image.disk], { reject: false });
  if (info.exitCode !== 0) {
    throw new BrokenImageError(`image "${image.label}" is corrupt (${lastLine(info.stderr)}): ${fix}`);
  }
  const parsed = JSON.parse(info.stdout) as { format?: string; 'actual-size'?: number; 'virtual-size'?: number };
  if (parsed.format !== image.spec.format) {
    throw new BrokenImageError(`image "${image.label}" is corrupt: expected ${image.spec.format}, found ${parsed.format ?? 'unknown'} data: ${fix}`);
  }
  if (image.spec.format === 'qcow2') {
    // `qemu-img check` reads metadata only (fast) and notices a truncated file.
    const check = await execa('qemu-img', ['check', '-q', image.disk], { reject: false });
    if (check.exitCode !== 0) {
      throw new BrokenImageError(`image "${image.label}" is corrupt or truncated (${lastLine(check.stderr) || `qemu-img check exit ${check.exitCode}`}): ${fix}`);
    }
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).at(-1) ?? '';
}
