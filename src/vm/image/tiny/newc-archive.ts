/**
 * A gzip-compressed cpio "newc" archive (the initramfs format the kernel unpacks), written in
 * TypeScript so that device nodes such as /dev/console can be added without root, and so that
 * owners (always root) and times (always 0) do not depend on who builds the image.
 */
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export type NewcEntry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; data: Buffer }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(fields: number[]): string {
  return '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
}

function encodeEntry(entry: NewcEntry | { kind: 'trailer' }, ino: number): Buffer[] {
  let mode = 0;
  let data: Buffer = Buffer.alloc(0);
  let rdev = [0, 0];
  let name = 'TRAILER!!!';
  if (entry.kind !== 'trailer') {
    name = entry.path.replace(/^\/+/, '');
    if (entry.kind === 'dir') mode = S_IFDIR | entry.mode;
    if (entry.kind === 'file') [mode, data] = [S_IFREG | entry.mode, entry.data];
    if (entry.kind === 'symlink') [mode, data] = [S_IFLNK | 0o777, Buffer.from(entry.target)];
    if (entry.kind === 'chardev') [mode, rdev] = [S_IFCHR | entry.mode, [entry.major, entry.minor]];
  }
  const nameBytes = Buffer.from(`${name}\0`);
  const nlink = entry.kind === 'dir' ? 2 : 1;
  const fields = [ino, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev[0]!, rdev[1]!, nameBytes.length, 0];
  const head = Buffer.from(header(fields), 'ascii');
  return [head, nameBytes, pad4(head.length + nameBytes.length), data, pad4(data.length)];
}

/** Entries for everything under `dir`, parents before children, in a stable order. */
export async function entriesFromDirectory(dir: string): Promise<NewcEntry[]> {
  const out: NewcEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const relPath = path.posix.join(rel, name);
      const full = path.join(dir, relPath);
      const info = await lstat(full);
      if (info.isDirectory()) {
        out.push({ kind: 'dir', path: relPath, mode: info.mode & 0o7777 });
        await walk(relPath);
      } else if (info.isSymbolicLink()) {
        out.push({ kind: 'symlink', path: relPath, target: await readlink(full) });
      } else if (info.isFile()) {
        out.push({ kind: 'file', path: relPath, mode: info.mode & 0o7777, data: await readFile(full) });
      } else {
        throw new Error(`initramfs source ${full} is neither file, folder nor symlink`);
      }
    }
  };
  await walk('');
  return out;
}

/** The whole archive, gzip-compressed, ready to pass to QEMU's -initrd. */
export function gzipNewcArchive(entries: readonly NewcEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((entry, i) => parts.push(...encodeEntry(entry, i + 1)));
  parts.push(...encodeEntry({ kind: 'trailer' }, 0));
  return gzipSync(Buffer.concat(parts), { level: 9 });
}
