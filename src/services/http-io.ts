/**
 * Request and response plumbing shared by the service routes: bodies as Node streams (uploads
 * go straight to disk), small JSON bodies read under a cap and checked with zod, files streamed
 * back with their length.
 */
import { open } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Context } from 'hono';
import type { z } from 'zod';
import { discardRest, readCappedBody } from '../forge/body.ts';
import { refuse, type Outcome } from './outcome.ts';

/** Requests are small JSON documents; nothing legitimate comes near this. */
export const MAX_JSON_BYTES = 64 * 1024;

export function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

/** The request body as a Node stream: the socket's own under Node, the Request's otherwise. */
export function requestStream(c: Context): Readable {
  const incoming = incomingOf(c);
  if (incoming) return incoming;
  const body = c.req.raw.body;
  return body ? Readable.fromWeb(body as Parameters<typeof Readable.fromWeb>[0]) : Readable.from([]);
}

/** A JSON body, validated. Refusals name the problem in one line. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<Outcome<{ value: z.output<S> }>> {
  const body = await readCappedBody(c.req.raw, MAX_JSON_BYTES, incomingOf(c));
  if (!body.ok) return body.reason === 'too-large' ? refuse(413, `the request body is over ${MAX_JSON_BYTES} bytes`) : refuse(400, 'the request body was cut off');
  let json: unknown;
  try {
    json = JSON.parse(body.body.toString('utf8'));
  } catch {
    return refuse(400, 'the request body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return refuse(400, `invalid request: ${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return { ok: true, value: parsed.data };
}

/**
 * Before refusing a request whose body was not (fully) read: read and drop the rest, bounded,
 * so the client gets the refusal instead of a reset connection.
 */
export function dropUnreadBody(c: Context): void {
  const incoming = incomingOf(c);
  if (incoming && !incoming.readableEnded && !incoming.destroyed) discardRest(incoming);
}

/** A row id from a path segment: digits only, a safe integer. */
export function storageId(text: string): number | undefined {
  if (!/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** The declared Content-Length, when it is a plain number. */
export function declaredLength(c: Context): number | undefined {
  const value = c.req.header('content-length');
  return value !== undefined && /^\d{1,15}$/.test(value.trim()) ? Number(value) : undefined;
}

/**
 * Stream a file (GET) or only its headers (HEAD), or undefined when it is gone. The file is
 * opened before answering, so an eviction that removes it mid-download does not cut the download.
 */
export async function fileResponse(c: Context, path: string, headers: Record<string, string>): Promise<Response | undefined> {
  let file;
  try {
    file = await open(path, 'r');
  } catch {
    return undefined;
  }
  const size = (await file.stat()).size;
  const all = { 'Content-Length': String(size), ...headers };
  if (c.req.method === 'HEAD') {
    await file.close();
    return new Response(null, { status: 200, headers: all });
  }
  const stream = Readable.toWeb(file.createReadStream()) as ReadableStream<Uint8Array>;
  return new Response(stream, { status: 200, headers: all });
}
