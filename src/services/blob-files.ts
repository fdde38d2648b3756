/**
 * Files behind the cache and artifact services. Every path is built here from a folder the
 * caller owns and a number or fixed word of ours: nothing a guest sends (keys, names, block
 * ids) ever becomes part of a path. Uploads land under a temporary name and are renamed into
 * place only when complete, so a half-written blob never looks finished.
 */
import { createReadStream, constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export class BodyTooLargeError extends Error {}
/**
 * Past its limit, a body is still read and dropped for this much more, so that the client can
 * read the refusal (closing a socket with unread data resets the connection and can destroy the
 * answer in flight); a client that sends more than that loses its connection instead.
 */
const DISCARD_LIMIT = 64 * 1024 * 1024;
/** The body was not the length it announced, or stopped early. */
export class BodyLengthError extends Error {}

/** A failed read of the request body (the client went away); file errors pass through. */
function interrupted(error: unknown, received: number): Error {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ECONNABORTED' || (error as Error).message === 'aborted') {
    return new BodyLengthError(`the upload was interrupted after ${received} bytes`);
  }
  return error as Error;
}

/** A storage folder with `parts/` for uploads in progress and `blobs/` for finished ones. */
export class BlobFolder {
  readonly parts: string;
  readonly blobs: string;

  constructor(readonly root: string) {
    this.parts = join(root, 'parts');
    this.blobs = join(root, 'blobs');
  }

  async create(): Promise<void> {
    await mkdir(this.parts, { recursive: true, mode: 0o700 });
    await mkdir(this.blobs, { recursive: true, mode: 0o700 });
  }

  /** A finished blob. */
  blob(id: number): string {
    return join(this.blobs, `${safeId(id)}`);
  }

  /** An upload in progress (one file, written at offsets). */
  part(id: number): string {
    return join(this.parts, `${safeId(id)}.part`);
  }

  /** One staged block of an upload in progress. */
  block(id: number, seq: number): string {
    return join(this.parts, `${safeId(id)}.block-${safeId(seq)}`);
  }

  /** Publish a finished upload under its final name. */
  async publish(from: string, id: number): Promise<void> {
    await rename(from, this.blob(id));
  }

  async removeUpload(id: number): Promise<void> {
    const prefix = `${safeId(id)}.`;
    const names = await readdir(this.parts).catch(() => [] as string[]);
    await Promise.all(names.filter((name) => name.startsWith(prefix)).map((name) => rm(join(this.parts, name), { force: true })));
  }

  async removeBlob(id: number): Promise<void> {
    await rm(this.blob(id), { force: true });
  }

  /** Files whose id the keep-test rejects (left by a crash between a file operation and its row). */
  async sweep(keepBlob: (id: number) => boolean, keepUpload: (id: number) => boolean): Promise<number> {
    let removed = 0;
    for (const [dir, keep] of [
      [this.blobs, keepBlob],
      [this.parts, keepUpload],
    ] as const) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const id = Number(/^(\d+)/.exec(name)?.[1] ?? NaN);
        if (Number.isSafeInteger(id) && keep(id)) continue;
        await rm(join(dir, name), { force: true, recursive: true });
        removed++;
      }
    }
    return removed;
  }
}

function safeId(id: number): number {
  if (!Number.isSafeInteger(id) || id < 0) throw new Error(`not a storage id: ${id}`);
  return id;
}

/**
 * Write a request body into `path` at `offset`, creating the file if needed and leaving other
 * ranges alone (concurrent chunks of one upload write side by side). The body must be exactly
 * `length` bytes: more is refused, less is an error.
 */
export async function writeAt(path: string, offset: number, length: number, body: Readable): Promise<void> {
  const file = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
  const received = await copyBody(file, body, offset, length).finally(() => file.close());
  if (received > length) throw new BodyLengthError(`the body is longer than the ${length} bytes its range announces`);
  if (received !== length) throw new BodyLengthError(`the body ended after ${received} of the ${length} bytes its range announces`);
}

/** Write a whole body to a new file, refusing more than maxBytes. Returns the size. */
export async function writeNew(path: string, body: Readable, maxBytes: number): Promise<number> {
  const file = await open(path, 'w', 0o600);
  const received = await copyBody(file, body, 0, maxBytes).finally(() => file.close());
  if (received > maxBytes) throw new BodyTooLargeError(`the body is larger than the ${maxBytes} bytes allowed`);
  return received;
}

/** Copy at most `limit` bytes of the body to the file at `offset`; returns how many bytes the body had. */
async function copyBody(file: FileHandle, body: Readable, offset: number, limit: number): Promise<number> {
  let received = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (received + chunk.length <= limit) await writeAll(file, chunk, offset + received);
      received += chunk.length;
      if (received > limit + DISCARD_LIMIT) body.destroy();
    }
  } catch (error) {
    if (received <= limit) throw interrupted(error, received);
  }
  return received;
}

/** Concatenate files into `dest` (created anew), feeding each chunk to `onChunk` (a digest). */
export async function concatenate(sources: string[], dest: string, onChunk?: (chunk: Buffer) => void): Promise<number> {
  const file = await open(dest, 'w', 0o600);
  let written = 0;
  try {
    for (const source of sources) {
      for await (const chunk of createReadStream(source) as AsyncIterable<Buffer>) {
        onChunk?.(chunk);
        await writeAll(file, chunk, written);
        written += chunk.length;
      }
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return written;
}

/** Create an empty file unless it exists. */
export async function ensureFile(path: string): Promise<void> {
  await (await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600)).close();
}

export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

export async function syncFile(path: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

async function writeAll(file: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await file.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}
