/**
 * Reads a webhook body once, as bytes, with a hard size cap enforced while reading: a declared
 * Content-Length over the cap is refused before reading anything, and a chunked (or lying)
 * body is cut off as soon as the running total passes the cap, so memory stays bounded.
 *
 * Under @hono/node-server the Node request is read directly (cheaper than going through a web
 * ReadableStream); otherwise (app.request in tests, other runtimes) the Request body is used.
 *
 * With a `Reservation` from the intake's ByteBudget (body-budget.ts), a body longer than what
 * was reserved grows the reservation as it arrives, and is cut off (`busy`) when the budget is
 * spent. A body of known length is read into one buffer of that size: no second copy.
 */
import type { IncomingMessage } from 'node:http';
import type { Reservation } from './body-budget.ts';

/** GitHub caps payloads at 25 MB; nothing larger is a real delivery. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' | 'busy' };

/** The declared Content-Length, when it is a plain number. */
export function declaredLength(contentLength: string | null | undefined): number | undefined {
  return typeof contentLength === 'string' && /^\d+$/.test(contentLength.trim()) ? Number(contentLength) : undefined;
}

function declaredTooLarge(contentLength: string | null | undefined, maxBytes: number): boolean {
  return (declaredLength(contentLength) ?? 0) > maxBytes;
}

export async function readCappedBody(request: Request, maxBytes: number = MAX_WEBHOOK_BYTES, incoming?: IncomingMessage, reservation?: Reservation): Promise<BodyResult> {
  if (incoming) return readIncoming(incoming, maxBytes, reservation);
  if (declaredTooLarge(request.headers.get('content-length'), maxBytes)) return { ok: false, reason: 'too-large' };
  if (!request.body) return { ok: true, body: Buffer.alloc(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        return { ok: false, reason: 'too-large' };
      }
      if (reservation && !reservation.growTo(total)) {
        await reader.cancel().catch(() => undefined);
        return { ok: false, reason: 'busy' };
      }
      chunks.push(value);
    }
  } catch {
    return { ok: false, reason: 'aborted' };
  }
  return { ok: true, body: Buffer.concat(chunks, total) };
}

function readIncoming(incoming: IncomingMessage, maxBytes: number, reservation?: Reservation): Promise<BodyResult> {
  const declared = declaredLength(incoming.headers['content-length']);
  if (declared !== undefined && declared > maxBytes) {
    discardRest(incoming);
    return Promise.resolve({ ok: false, reason: 'too-large' });
  }
  if (incoming.readableEnded) return Promise.resolve({ ok: true, body: Buffer.alloc(0) });
  return new Promise((resolve) => {
    // Node's parser never delivers more than a declared Content-Length: one buffer holds it all.
    // Its own allocation (not the pool's), so the store can move it to its writer thread.
    const exact = declared !== undefined ? Buffer.allocUnsafeSlow(declared) : undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    const finish = (result: BodyResult) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onAbort);
      incoming.off('close', onAbort);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      if (exact) {
        if (total + chunk.length > exact.length) {
          finish({ ok: false, reason: 'aborted' }); // more than declared: not a well-formed request
          discardRest(incoming);
          return;
        }
        chunk.copy(exact, total);
        total += chunk.length;
        return;
      }
      total += chunk.length;
      if (total > maxBytes) {
        finish({ ok: false, reason: 'too-large' });
        discardRest(incoming);
        return;
      }
      if (reservation && !reservation.growTo(total)) {
        finish({ ok: false, reason: 'busy' });
        discardRest(incoming);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (exact) finish(total === exact.length ? { ok: true, body: exact } : { ok: false, reason: 'aborted' });
      else finish({ ok: true, body: Buffer.concat(chunks, total) });
    };
    const onAbort = () => finish({ ok: false, reason: 'aborted' });
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onAbort);
    incoming.once('close', onAbort);
  });
}

/**
 * After refusing a body (too large, or no room in the budget): keep reading and dropping what the client still sends, so
 * that it can read our 413 (closing a socket with unread data makes the kernel send a reset,
 * which can destroy the response in flight). Bounded: past 64 MiB or 2 s, the socket is cut.
 */
export function discardRest(incoming: IncomingMessage): void {
  let dropped = 0;
  const cut = () => {
    cleanup();
    incoming.socket?.destroy();
  };
  const onData = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > 64 * 1024 * 1024) cut();
  };
  const cleanup = () => {
    clearTimeout(timer);
    incoming.off('data', onData);
    incoming.off('end', cleanup);
    incoming.off('close', cleanup);
  };
  const timer = setTimeout(cut, 2000);
  timer.unref();
  incoming.on('data', onData);
  incoming.once('end', cleanup);
  incoming.once('close', cleanup);
  incoming.resume();
}
