/**
 * The webhook intake under pressure and on redelivery, over real HTTP with a real store: the
 * bytes of bodies read at once are bounded (503 + Retry-After beyond), rejections say which
 * delivery they refused, and a redelivery of a failed delivery runs it again.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ByteBudget } from '../src/forge/body-budget.ts';
import { startHttpServer, type RunningServer } from '../src/forge/serve.ts';
import { createApp } from '../src/forge/server.ts';
import { createLogger } from '../src/log/logger.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { githubExample, githubHeaders } from './support/webhooks.ts';

const SECRET = 'intake secret';
const KB = 1024;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

let store: SqliteStore;
let server: RunningServer;
let lines: Array<Record<string, unknown>>;
let wakeups: number;

beforeEach(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forgevm-intake-'));
  dirs.push(dir);
  store = new SqliteStore({ dir });
  lines = [];
  wakeups = 0;
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const app = createApp({ store, github: { appId: 2, webhookSecret: SECRET }, logger, maxBytesInFlight: 1024 * KB, onDelivery: () => wakeups++ });
  server = await startHttpServer(app, { port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await server.close();
  await store.close();
});

/** A signed push padded to about `bytes`. */
function signedPush(delivery: string, bytes: number): { body: string; headers: Record<string, string> } {
  const payload = githubExample('push', (p) => p.deleted === false && p.ref === 'refs/heads/master');
  (payload as { padding?: string }).padding = 'x'.repeat(Math.max(0, bytes - JSON.stringify(payload).length - 20));
  const body = JSON.stringify(payload);
  return { body, headers: githubHeaders(SECRET, 'push', delivery, body) };
}

/** A POST whose body is sent later (`send`), so that it holds its share of the budget meanwhile. */
function openPost(headers: Record<string, string>): { req: ClientRequest; response: Promise<{ status: number; headers: Record<string, unknown>; body: string }> } {
  const req = httpRequest(`${server.url}/webhooks/github`, { method: 'POST', headers, agent: false });
  const response = new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, response };
}

describe('byte budget', () => {
  it('reserves up front, grows, refuses what does not fit, and gives back once', () => {
    const budget = new ByteBudget(100);
    const a = budget.reserve(60)!;
    expect(budget.reserve(41)).toBeNull();
    const b = budget.reserve(0)!;
    expect(b.growTo(40)).toBe(true);
    expect(budget.used).toBe(100);
    expect(b.growTo(41)).toBe(false);
    expect(b.held).toBe(40);
    a.release();
    a.release();
    expect(budget.used).toBe(40);
    expect(b.growTo(100)).toBe(true);
    b.release();
    expect(budget.used).toBe(0);
  });
});

describe('webhook intake limits', () => {
  it('answers 503 with Retry-After while the bodies being read fill the budget, and takes deliveries again after', async () => {
    const big = signedPush('held-1', 800 * KB);
    const held = openPost({ ...big.headers, 'content-length': String(Buffer.byteLength(big.body)) });
    held.req.write(big.body.slice(0, 1000));
    await new Promise((r) => setTimeout(r, 200)); // let the server take its reservation

    // 800 KiB are reserved out of 1 MiB: a declared 300 KiB body does not fit.
    const second = signedPush('refused-1', 300 * KB);
    const refused = await fetch(`${server.url}/webhooks/github`, { method: 'POST', headers: second.headers, body: second.body });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/^too many webhook bytes in flight \(1048576 bytes at once\); try again in 5 s$/) });

    // A chunked body (no Content-Length) is cut off once it grows past what is left.
    const chunked = openPost({ ...second.headers, 'transfer-encoding': 'chunked' });
    chunked.req.end(second.body);
    expect((await chunked.response).status).toBe(503);

    held.req.end(big.body.slice(1000));
    expect((await held.response).status).toBe(202);
    expect((await fetch(`${server.url}/webhooks/github`, { method: 'POST', headers: second.headers, body: second.body })).status).toBe(202);
    expect(await store.countDeliveries()).toBe(2);
    expect(lines.filter((l) => l.status === 503).map((l) => [l.delivery, l.event, l.outcome])).toEqual([
      ['refused-1', 'push', 'rejected'],
      ['refused-1', 'push', 'rejected'],
    ]);
  });

  it('logs the delivery id and event the headers claim on every rejection, a bad signature too', async () => {
    const { body, headers } = signedPush('forged-1', 2 * KB);
    const forged = await fetch(`${server.url}/webhooks/github`, { method: 'POST', headers: { ...headers, 'x-hub-signature-256': 'sha256=00' }, body });
    expect(forged.status).toBe(401);
    const typed = await fetch(`${server.url}/webhooks/github`, { method: 'POST', headers: { ...headers, 'content-type': 'text/plain', 'x-github-delivery': 'typed-1' }, body });
    expect(typed.status).toBe(415);
    expect(lines.map((l) => [l.kind, l.delivery, l.event, l.status, l.outcome])).toEqual([
      ['delivery', 'forged-1', 'push', 401, 'rejected'],
      ['delivery', 'typed-1', 'push', 415, 'rejected'],
    ]);
    expect(lines[0]!.msg).toMatch(/^delivery forged-1 github\/push: rejected \(missing or invalid signature/);
  });

  it('runs a redelivery of a failed delivery again, and still answers duplicate for one that is done', async () => {
    const { body, headers } = signedPush('again-1', 2 * KB);
    const post = () => fetch(`${server.url}/webhooks/github`, { method: 'POST', headers, body });
    expect((await post()).status).toBe(202);
    await store.claimNextDelivery();
    await store.markDelivery('again-1', 'failed', 'gave up after 290 attempts over 24 h; last error: 502 Bad Gateway');

    const again = await post();
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual({ delivery: 'again-1', requeued: true });
    expect(await store.getDelivery('again-1')).toMatchObject({ status: 'pending', failures: 0 });
    expect(wakeups).toBe(2);
    expect(lines.at(-1)).toMatchObject({ delivery: 'again-1', outcome: 'requeued', status: 202 });

    await store.claimNextDelivery();
    await store.markDelivery('again-1', 'done');
    const duplicate = await post();
    expect(duplicate.status).toBe(200);
    expect(await duplicate.json()).toEqual({ duplicate: true, delivery: 'again-1' });
  });
});
