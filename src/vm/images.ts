/** Map a catalog entry to files in the images folder, and say what is present. */
import { access } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { type ImageCatalog, type ImageFile, type ImageSpec, resolveImage } from '../config/catalog.ts';
import type { LocalImage } from './vm.ts';

/** Where an image file lives locally: `path` as given (relative to the images folder), or the downloaded file. */
export function localPath(imagesDir: string, label: string, file: ImageFile): string {
  if ('path' in file) return isAbsolute(file.path) ? file.path : join(imagesDir, file.path);
  return join(imagesDir, label, basename(new URL(file.url).pathname));
}

export function localImage(imagesDir: string, label: string, spec: ImageSpec): LocalImage {
  return {
    label,
    spec,
    disk: localPath(imagesDir, label, spec.disk),
    kernel: spec.kernel && localPath(imagesDir, label, spec.kernel),
    initrd: spec.initrd && localPath(imagesDir, label, spec.initrd),
  };
}

export function lookupImage(catalog: ImageCatalog, imagesDir: string, label: string): LocalImage {
  const { label: name, image } = resolveImage(catalog, label);
  return localImage(imagesDir, name, image);
}

export async function isPresent(image: LocalImage): Promise<boolean> {
  const files = [image.disk, image.kernel, image.initrd].filter((f): f is string => !!f);
  try {
    await Promise.all(files.map((f) => access(f)));
    return true;
  } catch {
    return false;
  }
}
