/**
 * A minimal ustar writer for a handful of small regular files, so several guest files can be
 * created by one `tar -x` (one SSH round trip) instead of one command each. Parent folders are
 * created by tar itself. Only what the step executor needs: regular files, owner uid/gid 0
 * (ignored when not extracting as root), mtime now.
 */

export interface ArchiveFile {
  /** Path inside the archive (relative, '/'-separated). */
  path: string;
  content: Buffer;
  mode: number;
}

const BLOCK = 512;

export function tarArchive(files: ArchiveFile[]): Buffer {
  const parts: Buffer[] = [];
  const mtime = Math.floor(Date.now() / 1000);
  for (const file of files) {
    parts.push(header(file, mtime), file.content);
    const pad = (BLOCK - (file.content.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK)); // end of archive
  return Buffer.concat(parts);
}

function header(file: ArchiveFile, mtime: number): Buffer {
  const { name, prefix } = splitPath(file.path);
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, file.mode & 0o7777);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, file.content.length);
  octal(block, 136, 12, mtime);
  block.fill(' ', 148, 156); // checksum counts as spaces while summing
  block.write('0', 156, 1, 'ascii'); // regular file
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

function octal(block: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  if (digits.length > width - 1) throw new Error(`tar field too small for ${value}`);
  block.write(`${digits}\0`, offset, width, 'ascii');
}

/** ustar keeps paths up to 255 bytes as prefix (≤155) + '/' + name (≤100). */
function splitPath(path: string): { name: string; prefix: string } {
  if (path.includes('\0') || path.startsWith('/') || path.split('/').includes('..')) throw new Error(`unsafe archive path "${path}"`);
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { name, prefix };
  }
  throw new Error(`path too long for a tar archive: "${path}"`);
}
