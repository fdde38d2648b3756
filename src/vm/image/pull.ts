/**
 * Download an image file: to a temporary name, hashing as it streams, renamed into place only
 * when the checksum matches. An interrupted download never looks finished.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImageFile } from '../../config/catalog.ts';

export class ChecksumMismatchError extends Error {}

export interface Progress {
  (received: number, total: number | undefined): void;
}

type Digest = { algorithm: 'sha256' | 'sha512'; hex: string };

export async function downloadImageFile(
  file: Extract<ImageFile, { url: string }>,
  destination: string,
  onProgress?: Progress,
  fetchImpl: typeof fetch = fetch,
): Promise<void> {
  const expected = await expectedDigest(file, fetchImpl);
  await mkdir(dirname(destination), { recursive: true });
  const partial = `${destination}.partial`;
  try {
    const response = await fetchImpl(file.url);
    if (!response.ok || !response.body) throw new Error(`download of ${file.url} failed: HTTP ${response.status}`);
    const total = Number(response.headers.get('content-length')) || undefined;
    const hash = createHash(expected.algorithm);
    let received = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        received += chunk.length;
        onProgress?.(received, total);
        callback(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(response.body as never), meter, createWriteStream(partial, { mode: 0o644 }));
    const actual = hash.digest('hex');
    if (actual !== expected.hex) {
      throw new ChecksumMismatchError(
        `checksum mismatch for ${basename(destination)}: expected ${expected.algorithm}:${expected.hex.slice(0, 16)}…, got ${actual.slice(0, 16)}…; the download is corrupt or the catalog entry is stale, so it was discarded — retry, or fix the checksum in the config`,
      );
    }
    await rename(partial, destination);
  } finally {
    await rm(partial, { force: true });
  }
}

async function expectedDigest(file: Extract<ImageFile, { url: string }>, fetchImpl: typeof fetch): Promise<Digest> {
  if (typeof file.checksum === 'string') {
    const [algorithm, hex] = file.checksum.split(':') as ['sha256' | 'sha512', string];
    return { algorithm, hex };
  }
  const response = await fetchImpl(file.checksum.sums);
  if (!response.ok) throw new Error(`could not fetch the checksum list ${file.checksum.sums}: HTTP ${response.status}`);
  const name = basename(new URL(file.url).pathname);
  const hex = findInSums(await response.text(), name);
  if (!hex) throw new ChecksumMismatchError(`${file.checksum.sums} lists no checksum for ${name}: the catalog URL is stale; update it`);
  return { algorithm: file.checksum.algorithm, hex };
}

/** Find a file's digest in a `SHA256SUMS`-style list (`<hex>  name` or `<hex> *name`). */
export function findInSums(sums: string, name: string): string | undefined {
  for (const line of sums.split('\n')) {
    const match = /^([0-9a-f]{64,128})\s+\*?(.+)$/.exec(line.trim());
    if (match && (match[2] === name || match[2]!.endsWith(`/${name}`))) return match[1];
  }
  return undefined;
}
