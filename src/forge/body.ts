/**
 * Reads a webhook body once, as bytes, with a hard size cap enforced while reading: a declared
 * Content-Length over the cap is refused before reading anything, and a chunked (or lying)
 * body is cut off as soon as the running total passes the cap, so memory stays bounded.
 */

/** GitHub caps payloads at 25 MB; nothing larger is a real delivery. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

export type BodyResult = { ok: true; body: Buffer } | { ok: false; tooLarge: true; bytes: number };

export async function readCappedBody(request: Request, maxBytes: number = MAX_WEBHOOK_BYTES): Promise<BodyResult> {
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    return { ok: false, tooLarge: true, bytes: Number(declared) };
  }
  if (!request.body) return { ok: true, body: Buffer.alloc(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      // Stop reading; the server drains or drops the rest of the connection.
      await reader.cancel().catch(() => undefined);
      return { ok: false, tooLarge: true, bytes: total };
    }
    chunks.push(value);
  }
  return { ok: true, body: Buffer.concat(chunks, total) };
}
