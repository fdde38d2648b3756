/**
 * forgevm serve's webhook intake over real HTTP on loopback, with a real SQLite store:
 * what is refused (and with which status), what is ignored, what is stored, and dedupe.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/forge/server.ts';
import { startHttpServer, type RunningServer } from '../src/forge/serve.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import {
  forgejoHeaders,
  forgejoPullRequest,
  forgejoPush,
  forgejoSignature,
  githubExample,
  githubHeaders,
  githubSignature,
  rawPost,
  withAction,
} from './support/webhooks.ts';

const SECRET = 'It is a secret to everybody';
const FORGEJO_SECRET = 'forgejo secret';
/** The example check_run/check_suite payloads are for app id 2: we play that app. */
const APP_ID = 2;
const MB = 1024 * 1024;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

let store: SqliteStore;
let server: RunningServer;
let wakeups = 0;
let seq = 0;
const nextId = () => `delivery-${process.pid}-${++seq}`;

beforeEach(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forgevm-serve-'));
  dirs.push(dir);
  store = new SqliteStore({ dir });
  wakeups = 0;
  const app = createApp({
    store,
    github: { appId: APP_ID, webhookSecret: SECRET },
    forgejo: { webhookSecret: FORGEJO_SECRET },
    onDelivery: () => wakeups++,
  });
  server = await startHttpServer(app, { port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await server.close();
  await store.close();
});

async function postGithub(event: string, payload: unknown, delivery = nextId(), headers: Record<string, string> = {}) {
  const body = JSON.stringify(payload);
  const res = await fetch(`${server.url}/webhooks/github`, { method: 'POST', headers: { ...githubHeaders(SECRET, event, delivery, body), ...headers }, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, delivery };
}

async function postForgejo(event: string, payload: unknown, delivery = nextId(), flavour: 'forgejo' | 'gitea' = 'forgejo') {
  const body = JSON.stringify(payload);
  const res = await fetch(`${server.url}/webhooks/forgejo`, { method: 'POST', headers: forgejoHeaders(FORGEJO_SECRET, event, delivery, body, flavour), body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, delivery };
}

const pushExample = () => githubExample('push', (p) => p.deleted === false && p.ref === 'refs/heads/master');

describe('GitHub deliveries that start work', () => {
  it('stores a push before answering 202 and wakes the worker', async () => {
    const { status, json, delivery } = await postGithub('push', pushExample());
    expect(status).toBe(202);
    expect(json).toEqual({ delivery });
    const stored = await store.getDelivery(delivery);
    expect(stored).toMatchObject({ forge: 'github', event: 'push', status: 'pending', dedupeKey: null });
    expect(stored?.normalized).toMatchObject({
      kind: 'push',
      forge: 'github',
      ref: 'refs/heads/master',
      sha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      repo: { fullName: 'Codertocat/Hello-World', owner: 'Codertocat', name: 'Hello-World', cloneUrl: 'https://github.com/Codertocat/Hello-World.git' },
      actor: 'Codertocat',
      installationId: 1,
    });
    expect(JSON.parse(stored!.payload)).toEqual(pushExample());
    expect(wakeups).toBe(1);
  });

  it.each(['opened', 'synchronize', 'reopened'])('stores pull_request.%s with the fields the worker needs', async (action) => {
    const { status, delivery } = await postGithub('pull_request', githubExample('pull_request', withAction(action)));
    expect(status).toBe(202);
    const event = (await store.getDelivery(delivery))?.normalized;
    expect(event).toMatchObject({ kind: 'pull_request', action, repo: { fullName: 'Codertocat/Hello-World' }, number: 2, headRef: 'changes', baseRef: 'master', isFork: false });
    expect(event).toHaveProperty('headSha', expect.stringMatching(/^[0-9a-f]{40}$/));
    expect(event).toHaveProperty('authorAssociation');
  });

  it('stores check_run re-requests and button clicks on our own runs, and check_suite re-requests', async () => {
    const rerun = await postGithub('check_run', githubExample('check_run', withAction('rerequested')));
    expect(rerun.status).toBe(202);
    expect((await store.getDelivery(rerun.delivery))?.normalized).toMatchObject({ kind: 'check_run', action: 'rerequested', checkRunId: expect.any(Number), externalId: null });

    // GitHub's example click comes from app 25811; adjusted to be a click on one of our runs.
    const click = githubExample('check_run', withAction('requested_action'));
    (click.check_run as { app: { id: number } }).app.id = APP_ID;
    (click.check_run as { external_id: string }).external_id = 'job-ext-1';
    const clicked = await postGithub('check_run', click);
    expect(clicked.status).toBe(202);
    expect((await store.getDelivery(clicked.delivery))?.normalized).toMatchObject({ action: 'requested_action', requestedActionId: 'lgtm|26764', externalId: 'job-ext-1', installationId: 690857 });

    // GitHub's example suite belongs to app 29310; adjusted to be ours.
    const suitePayload = githubExample('check_suite', withAction('rerequested'));
    (suitePayload.check_suite as { app: { id: number } }).app.id = APP_ID;
    const suite = await postGithub('check_suite', suitePayload);
    expect(suite.status).toBe(202);
    expect((await store.getDelivery(suite.delivery))?.normalized).toMatchObject({ kind: 'check_suite', headBranch: 'changes' });
    expect(await store.countDeliveries('pending')).toBe(3);
  });

  it('answers a redelivery (same X-GitHub-Delivery) with 200 duplicate', async () => {
    const first = await postGithub('push', pushExample());
    const again = await postGithub('push', pushExample(), first.delivery);
    expect(again).toMatchObject({ status: 200, json: { duplicate: true, delivery: first.delivery } });
    expect(await store.countDeliveries()).toBe(1);
    expect(wakeups).toBe(1);
  });

  it('stores the same delivery sent 100 times concurrently exactly once', async () => {
    const body = JSON.stringify(pushExample());
    const headers = githubHeaders(SECRET, 'push', 'one-delivery', body);
    const statuses = await Promise.all(
      Array.from({ length: 100 }, () => fetch(`${server.url}/webhooks/github`, { method: 'POST', headers, body }).then(async (r) => (await r.text(), r.status))),
    );
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(99);
    expect(await store.countDeliveries()).toBe(1);
  });
});

describe('GitHub installation events', () => {
  it('records installations and their repositories at once, and does not wake the worker', async () => {
    const created = githubExample('installation', withAction('created'));
    expect((await postGithub('installation', created)).status).toBe(202);
    expect(await store.getInstallation(957387)).toMatchObject({ account: 'Codertocat', repos: ['Codertocat/Hello-World'], suspended: false });

    const added = githubExample('installation_repositories', withAction('added'));
    const res = await postGithub('installation_repositories', added);
    expect(res.status).toBe(202);
    const id = (added.installation as { id: number }).id;
    const expected = (added.repositories_added as Array<{ full_name: string }>).map((r) => r.full_name);
    expect((await store.getInstallation(id))?.repos).toEqual(expect.arrayContaining(expected));
    expect((await store.getDelivery(res.delivery))?.status).toBe('done');

    const deleted = githubExample('installation', withAction('deleted'));
    (deleted.installation as { id: number }).id = 957387;
    expect((await postGithub('installation', deleted)).status).toBe(202);
    expect(await store.getInstallation(957387)).toBeNull();
    expect(wakeups).toBe(0);
    expect(await store.countDeliveries('pending')).toBe(0);
  });
});

describe('GitHub deliveries we do not act on get 202 and are not stored', () => {
  const cases: Array<[string, string, () => Record<string, unknown>, RegExp]> = [
    ['a branch deletion', 'push', () => githubExample('push', (p) => p.deleted === true), /was deleted/],
    ['pull_request.closed', 'pull_request', () => githubExample('pull_request', withAction('closed')), /"closed" starts no jobs/],
    ['pull_request.labeled', 'pull_request', () => githubExample('pull_request', withAction('labeled')), /starts no jobs/],
    ['a check_run of another app', 'check_run', () => githubExample('check_run', withAction('requested_action')), /another app/],
    ['our own check_run.created', 'check_run', () => ({ ...githubExample('check_run', withAction('created')), check_run: { ...(githubExample('check_run', withAction('created')).check_run as object), app: { id: APP_ID } } }), /"created" on our own run/],
    ['a check_suite.rerequested of another app', 'check_suite', () => githubExample('check_suite', withAction('rerequested')), /another app/],
    ['check_suite.requested', 'check_suite', () => githubExample('check_suite', withAction('requested')), /starts no jobs/],
    ['an unknown event', 'issues', () => ({ action: 'opened' }), /not one forgevm acts on/],
    ['ping', 'ping', () => githubExample('ping'), /not one forgevm acts on/],
  ];
  it.each(cases)('%s', async (_name, event, payload, reason) => {
    const { status, json } = await postGithub(event, payload());
    expect(status).toBe(202);
    expect(json.ignored).toMatch(reason);
    expect(await store.countDeliveries()).toBe(0);
    expect(wakeups).toBe(0);
  });
});

describe('requests that are refused', () => {
  const push = JSON.stringify(pushExample());
  const url = () => `${server.url}/webhooks/github`;
  const post = (headers: Record<string, string>, body: string) => fetch(url(), { method: 'POST', headers, body }).then(async (r) => ({ status: r.status, json: (await r.json()) as { error: string } }));

  it('401 without a signature, with a wrong one, or with garbage', async () => {
    const { 'x-hub-signature-256': _, ...unsigned } = githubHeaders(SECRET, 'push', nextId(), push);
    expect(await post(unsigned, push)).toMatchObject({ status: 401, json: { error: expect.stringMatching(/missing or invalid signature.*webhook secret/) } });
    expect((await post(githubHeaders('wrong secret', 'push', nextId(), push), push)).status).toBe(401);
    for (const sig of ['sha256=abc', 'sha256=' + 'z'.repeat(64), 'sha1=' + 'a'.repeat(40), githubSignature(SECRET, push).slice(7), '']) {
      expect((await post({ ...unsigned, 'x-hub-signature-256': sig }, push)).status).toBe(401);
    }
    // A signature made for another body does not carry over.
    expect((await post({ ...unsigned, 'x-hub-signature-256': githubSignature(SECRET, push + ' ') }, push)).status).toBe(401);
    expect(await store.countDeliveries()).toBe(0);
  });

  it('400 when the signed body is not JSON, or the payload lacks what we use', async () => {
    const notJson = '{"ref": "refs/heads/main",';
    expect(await post(githubHeaders(SECRET, 'push', nextId(), notJson), notJson)).toMatchObject({ status: 400, json: { error: expect.stringMatching(/^body is not valid JSON/) } });
    const broken = JSON.stringify({ ...pushExample(), repository: { name: 'x' } });
    expect(await post(githubHeaders(SECRET, 'push', nextId(), broken), broken)).toMatchObject({
      status: 400,
      json: { error: expect.stringMatching(/^invalid push payload: repository\.full_name: is missing/) },
    });
    const { 'x-github-delivery': _, ...noId } = githubHeaders(SECRET, 'push', 'x', push);
    expect(await post(noId, push)).toMatchObject({ status: 400, json: { error: 'missing or invalid X-GitHub-Delivery header' } });
    expect(await store.countDeliveries()).toBe(0);
  });

  it('415 for form-encoded deliveries, telling to switch to JSON, and for other types', async () => {
    const form = `payload=${encodeURIComponent(push)}`;
    const headers = { ...githubHeaders(SECRET, 'push', nextId(), form), 'content-type': 'application/x-www-form-urlencoded' };
    expect(await post(headers, form)).toMatchObject({ status: 415, json: { error: expect.stringContaining('set the webhook content type to application/json') } });
    expect((await post({ ...githubHeaders(SECRET, 'push', nextId(), push), 'content-type': 'text/plain' }, push)).status).toBe(415);
    // Charset parameters are fine.
    expect((await post({ ...githubHeaders(SECRET, 'push', nextId(), push), 'content-type': 'application/json; charset=utf-8' }, push)).status).toBe(202);
  });

  it('413 for a body over 25 MB announced by Content-Length, before reading it', async () => {
    const headers = githubHeaders(SECRET, 'push', nextId(), push);
    const res = await rawPost(url(), headers, [Buffer.alloc(64 * 1024, 0x20)], 25 * MB + 1);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error).toMatch(/payload larger than 26214400 bytes/);
  });

  it('413 for a chunked body (no Content-Length) that grows past 25 MB', async () => {
    const headers = githubHeaders(SECRET, 'push', nextId(), push);
    const chunk = Buffer.alloc(MB, 0x20);
    const res = await rawPost(url(), headers, (function* () {
      for (let i = 0; i < 40; i++) yield chunk;
    })());
    expect(res.status).toBe(413);
    // The server keeps serving.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('accepts a signed body just under the cap', async () => {
    const big = pushExample();
    (big as { padding?: string }).padding = 'x'.repeat(24 * MB);
    const body = JSON.stringify(big);
    const res = await rawPost(url(), githubHeaders(SECRET, 'push', 'big-one', body), [body]);
    expect(res.status).toBe(202);
    expect((await store.getDelivery('big-one'))?.payload.length).toBe(body.length);
  });

  it('checks size, then content type, then signature, then JSON', async () => {
    // Oversize and wrong type and unsigned: size wins.
    expect((await rawPost(url(), { 'content-type': 'text/plain' }, ['x'], 26 * MB)).status).toBe(413);
    // Wrong type and unsigned: type wins.
    expect((await post({ 'content-type': 'text/plain', 'x-github-event': 'push', 'x-github-delivery': 'a' }, 'nope')).status).toBe(415);
    // Unsigned and not JSON: signature wins.
    expect((await post({ 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'a' }, 'nope')).status).toBe(401);
  });
});

describe('Forgejo and Gitea deliveries', () => {
  const sha = 'f'.repeat(40);

  it('stores a push with a repo+ref+sha dedupe key, and drops a replay that has a new id', async () => {
    const first = await postForgejo('push', forgejoPush(sha));
    expect(first.status).toBe(202);
    const stored = await store.getDelivery(first.delivery);
    expect(stored).toMatchObject({ forge: 'forgejo', dedupeKey: `forgejo:alice/hello:push:refs/heads/main:${sha}` });
    expect(stored?.normalized).toMatchObject({ kind: 'push', forge: 'forgejo', sha, created: false, changedFiles: ['src/new.c', 'Makefile'], actor: 'alice', repo: { owner: 'alice' } });
    const replay = await postForgejo('push', forgejoPush(sha));
    expect(replay).toMatchObject({ status: 200, json: { duplicate: true } });
    // The same commit pushed to another branch is a different event.
    expect((await postForgejo('push', forgejoPush(sha, 'refs/heads/other'))).status).toBe(202);
    expect(await store.countDeliveries()).toBe(2);
    expect(wakeups).toBe(2);
  });

  it('accepts Gitea headers and maps "synchronized" to synchronize', async () => {
    const res = await postForgejo('pull_request', forgejoPullRequest('synchronized', sha), nextId(), 'gitea');
    expect(res.status).toBe(202);
    expect((await store.getDelivery(res.delivery))?.normalized).toMatchObject({ kind: 'pull_request', action: 'synchronize', isFork: true, headRepo: { fullName: 'bob/hello' }, number: 3 });
    expect((await postForgejo('pull_request', forgejoPullRequest('closed', sha))).status).toBe(202);
    expect(await store.countDeliveries()).toBe(1);
  });

  it('refuses missing, odd-length, non-hex and wrong signatures with 401', async () => {
    const body = JSON.stringify(forgejoPush(sha));
    const base = { 'content-type': 'application/json', 'x-forgejo-event': 'push', 'x-forgejo-delivery': nextId() };
    const good = forgejoSignature(FORGEJO_SECRET, body);
    for (const signature of [undefined, good.slice(1), good + 'a', 'g'.repeat(64), 'sha256=' + good, forgejoSignature('other', body), good.slice(0, 62) + 'zz']) {
      const headers = signature === undefined ? base : { ...base, 'x-forgejo-signature': signature };
      const res = await fetch(`${server.url}/webhooks/forgejo`, { method: 'POST', headers, body });
      expect(res.status, String(signature)).toBe(401);
    }
    // Uppercase hex is still the same digest.
    const res = await fetch(`${server.url}/webhooks/forgejo`, { method: 'POST', headers: { ...base, 'x-forgejo-signature': good.toUpperCase() }, body });
    expect(res.status).toBe(202);
  });
});

describe('hostile input', () => {
  it('answers 1,000 mixed bad requests with 4xx (202 for unknown events), stores nothing, and stays healthy', async () => {
    const push = JSON.stringify(pushExample());
    const fpush = JSON.stringify(forgejoPush('d'.repeat(40)));
    const gh = `${server.url}/webhooks/github`;
    const fj = `${server.url}/webhooks/forgejo`;
    type Attempt = () => Promise<{ kind: string; status: number }>;
    const send = (kind: string, url: string, headers: Record<string, string>, body: string): Promise<{ kind: string; status: number }> =>
      fetch(url, { method: 'POST', headers, body }).then(async (r) => (await r.arrayBuffer(), { kind, status: r.status }));
    const kinds: Attempt[] = [
      () => {
        const { 'x-hub-signature-256': _, ...h } = githubHeaders(SECRET, 'push', nextId(), push);
        return send('unsigned', gh, h, push);
      },
      () => send('wrong secret', gh, githubHeaders('not the secret', 'push', nextId(), push), push),
      () => send('odd-length hex', fj, { ...forgejoHeaders(FORGEJO_SECRET, 'push', nextId(), fpush), 'x-forgejo-signature': 'abc' }, fpush),
      () => send('bad json', gh, githubHeaders(SECRET, 'push', nextId(), '{"a":'), '{"a":'),
      () => rawPost(gh, githubHeaders(SECRET, 'push', nextId(), push), [push], 30 * MB).then((r) => ({ kind: 'oversize', status: r.status })),
      () => send('wrong content type', gh, { ...githubHeaders(SECRET, 'push', nextId(), push), 'content-type': 'text/xml' }, push),
      () => send('unknown event', gh, githubHeaders(SECRET, 'star', nextId(), push), push),
      () => send('invalid payload', gh, githubHeaders(SECRET, 'push', nextId(), '{"ref":1}'), '{"ref":1}'),
      () => send('garbage bytes', fj, { 'content-type': 'application/json', 'x-gitea-signature': 'ff'.repeat(32) }, '\u0000\uffff'.repeat(100)),
    ];
    const results: Array<{ kind: string; status: number }> = [];
    const queue = Array.from({ length: 1000 }, (_, i) => kinds[i % kinds.length]!);
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let job = queue.shift(); job; job = queue.shift()) results.push(await job());
      }),
    );
    expect(results).toHaveLength(1000);
    const bad = results.filter((r) => (r.kind === 'unknown event' ? r.status !== 202 : r.status < 400 || r.status >= 500));
    expect(bad).toEqual([]);
    expect(new Set(results.filter((r) => r.kind === 'oversize').map((r) => r.status))).toEqual(new Set([413]));
    expect(await store.countDeliveries()).toBe(0);
    expect(wakeups).toBe(0);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, store: true });
  });
});

describe('/healthz', () => {
  it('reports the store, and 503 when it does not answer', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ ok: true, store: true });
    await store.close();
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false, store: false, reason: 'store: closed (forgevm is stopping)' });
  });
});
