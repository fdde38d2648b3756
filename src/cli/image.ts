/** `forgevm image list | pull LABEL | build tiny` */
import { rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { resolveImage } from '../config/catalog.ts';
import type { Config } from '../config/config.ts';
import { formatBytes } from '../vm/disk-space.ts';
import { buildTinyImage } from '../vm/image/tiny/build.ts';
import { downloadImageFile } from '../vm/image/pull.ts';
import { isPresent, localImage, localPath } from '../vm/images.ts';
import { checkBaseImage } from '../vm/overlay.ts';
import { stateDir } from '../vm/state-dir.ts';
import { table } from './table.ts';

export async function imageList(config: Config, out: (s: string) => void): Promise<number> {
  const { images } = stateDir(config.stateDir);
  const rows: string[][] = [];
  for (const [label, spec] of Object.entries(config.images)) {
    const image = localImage(images, label, spec);
    const present = await isPresent(image);
    const size = present ? formatBytes((await stat(image.disk)).size) : '';
    const how = spec.builtin ? `forgevm image build ${label}` : 'path' in spec.disk ? 'local file' : `forgevm image pull ${label}`;
    rows.push([label, present ? 'present' : 'missing', size, spec.user, `${spec.cpus} cpu, ${spec.memoryMiB} MiB`, present ? '' : how]);
  }
  out(table(['LABEL', 'STATUS', 'SIZE', 'USER', 'RESOURCES', 'TO GET IT'], rows));
  return 0;
}

export async function imagePull(config: Config, label: string, force: boolean, err: (s: string) => void): Promise<number> {
  const { images } = stateDir(config.stateDir);
  const { label: name, image: spec } = resolveImage(config.images, label);
  if (spec.builtin) throw new Error(`image "${name}" is built, not downloaded: run "forgevm image build ${name}"`);
  const files = [spec.disk, spec.kernel, spec.initrd].filter((f) => f !== undefined);
  const image = localImage(images, name, spec);
  if (!force && (await isPresent(image))) {
    err(`image "${name}" is already present (use --force to download again)`);
    return 0;
  }
  for (const file of files) {
    if (!('url' in file)) continue;
    const target = localPath(images, name, file);
    if (force) await rm(target, { force: true });
    err(`downloading ${file.url}`);
    await downloadImageFile(file, target, progressPrinter(err));
  }
  await checkBaseImage(image);
  err(`image "${name}" is ready in ${dirname(image.disk)}`);
  return 0;
}

export async function imageBuild(config: Config, label: string, force: boolean, err: (s: string) => void): Promise<number> {
  const { label: name, image: spec } = resolveImage(config.images, label);
  if (spec.builtin !== 'tiny') throw new Error(`image "${name}" is downloaded, not built: run "forgevm image pull ${name}"`);
  const { images } = stateDir(config.stateDir);
  const built = await buildTinyImage({ imagesDir: images, force, log: (line) => err(line) });
  err(`image "${name}" is ready: ${dirname(built.disk)}`);
  return 0;
}

/** A progress bar on a terminal, a line every 10% otherwise. */
function progressPrinter(err: (s: string) => void) {
  const tty = process.stderr.isTTY;
  let lastDecile = -1;
  let lastDraw = 0;
  return (received: number, total: number | undefined) => {
    const fraction = total ? received / total : 0;
    if (tty) {
      const now = Date.now();
      if (now - lastDraw < 100 && received !== total) return;
      lastDraw = now;
      const width = 30;
      const filled = Math.round(fraction * width);
      const bar = total ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%` : '';
      process.stderr.write(`\r${bar} ${formatBytes(received)}${total ? ` of ${formatBytes(total)}` : ''}   ${received === total ? '\n' : ''}`);
    } else if (total) {
      const decile = Math.floor(fraction * 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        err(`  ${decile * 10}% (${formatBytes(received)} of ${formatBytes(total)})`);
      }
    }
  };
}
