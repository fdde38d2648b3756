/**
 * GitHub never redelivers a webhook that failed on its own. forgevm reads the app's delivery
 * list and asks for the events that never reached it: here the real intake and SQLite store on
 * loopback, the real Octokit, and the fake GitHub's delivery log (checked against GitHub's
 * hook-delivery-item schema), delivering over real HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GithubClients } from '../src/forge/github-client.ts';
import { MissedDeliveries, missedDeliveries, type HookDeliveryAttempt } from '../src/forge/missed-deliveries.ts';
import { createApp } from '../src/forge/server.ts';
import { startHttpServer, type RunningServer } from '../src/forge/serve.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { githubOpenApi } from './support/github-openapi.ts';
import { freePort } from './support/serve-process.ts';
import { githubExample } from './support/webhooks.ts';

const SECRET = 'missed-deliveries-secret';

let github: FakeGithub;
let store: SqliteStore;
let intake: RunningServer | undefined;
let port: number;
const dir = mkdtempSync(join(tmpdir(), 'forgevm-missed-'));

beforeAll(async () => {
  github = await startFakeGithub();
  store = new SqliteStore({ dir });
  port = await freePort();
  github.webhookTarget = { url: `http://127.0.0.1:${port}/webhooks/github`, secret: SECRET };
});
afterAll(async () => {
  await intake?.close();
  await store.close();
  await github.stop();
  rmSync(dir, { recursive: true, force: true });
});

function push(n: number): Record<string, unknown> {
  const payload = githubExample('push', (e) => e.ref === 'refs/heads/master' && !!e.installation);
  payload.after = n.toString(16).padStart(40, '0');
  return payload;
}

function recorder() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) } };
}

describe('missed GitHub deliveries', () => {
  it('asks GitHub again for the events that never reached forgevm, and for nothing else', async () => {
    // forgevm is down: these fail to connect.
    await github.deliver('push', push(1), 'too-old', { deliveredAt: new Date(Date.now() - 4 * 86_400_000).toISOString() });
    await github.deliver('push', push(2), 'missed-while-down');
    await github.deliver('push', push(3), 'given-up');
    for (let i = 0; i < 3; i++) await github.deliver('push', push(3), 'given-up', { redelivery: true });

    intake = await startHttpServer(createApp({ store, github: { appId: github.appId, webhookSecret: SECRET } }), { port, host: '127.0.0.1' });
    // Stored by forgevm, but GitHub gave up waiting for the answer: it lists a timeout.
    await github.deliver('push', push(4), 'stored-but-timed-out', { recordAs: { status: 'timed out', status_code: 0 } });
    // Enough delivered events that the missed ones are on the third page of 100.
    for (let i = 0; i < 230; i++) expect((await github.deliver('push', push(1000 + i), `fine-${i}`)).status_code).toBe(202);

    for (const attempt of github.hookDeliveries) expect(githubOpenApi().validateSchema('hook-delivery-item', attempt), attempt.guid).toEqual([]);
    expect(await store.getDelivery('missed-while-down')).toBeNull();

    const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false } });
    const { lines, log } = recorder();
    const missed = new MissedDeliveries({ app: () => clients.asApp(), store, log, everyMinutes: 10, maxPerDelivery: 3 });
    const listedBefore = github.requests.filter((r) => r.path === '/app/hook/deliveries').length;
    const first = await missed.round();

    expect(first.redelivered).toEqual(['missed-while-down']);
    expect(first.exhausted).toEqual(['given-up']);
    // It read every page back to the 3-day edge, and no further than GitHub keeps them.
    expect(github.requests.filter((r) => r.path === '/app/hook/deliveries').length - listedBefore).toBe(3);
    expect(github.requests.filter((r) => r.path === '/app/hook/deliveries').every((r) => r.auth === 'jwt')).toBe(true);
    const redelivered = await waitForAttempts('missed-while-down', 2);
    expect(redelivered.map((a) => [a.redelivery, a.status_code])).toEqual([
      [false, 0],
      [true, 202],
    ]);
    expect((await store.getDelivery('missed-while-down'))?.event).toBe('push');
    expect(github.attemptsOf('too-old')).toHaveLength(1);
    expect(github.attemptsOf('stored-but-timed-out')).toHaveLength(1);
    expect(github.attemptsOf('given-up')).toHaveLength(4);
    expect(lines).toContainEqual(expect.stringMatching(/^info GitHub delivery missed-while-down \(push, .*\) never reached forgevm \(last answer: "failed to connect to host", 0\); asked GitHub to redeliver it$/));
    expect(lines).toContainEqual(expect.stringMatching(/^error GitHub delivery given-up \(push, .*\) was redelivered 3 times and never reached forgevm, .*not asking again: fix the cause, then redeliver it from the app's Advanced settings$/));

    // The next round finds nothing new to ask for, and does not repeat the give-up line.
    const second = await missed.round();
    expect(second.redelivered).toEqual([]);
    expect(second.refused).toEqual([]);
    expect(lines.filter((l) => l.startsWith('error'))).toHaveLength(1);
    expect(github.validationErrors).toEqual([]);
  });

  it('goes on to the next event when GitHub refuses to redeliver one', async () => {
    intake ??= await startHttpServer(createApp({ store, github: { appId: github.appId, webhookSecret: SECRET } }), { port, host: '127.0.0.1' });
    // Two more events miss forgevm; the newer one GitHub will refuse to redeliver.
    const up = github.webhookTarget!;
    github.webhookTarget = { url: 'http://127.0.0.1:1/webhooks/github', secret: SECRET };
    await github.deliver('push', push(6), 'missed-older', { deliveredAt: new Date(Date.now() - 3_600_000).toISOString() });
    await github.deliver('push', push(5), 'refused-by-github');
    github.webhookTarget = up;
    const refusedId = github.attemptsOf('refused-by-github')[0]!.id;
    github.failNext('POST', new RegExp(`^/app/hook/deliveries/${refusedId}/attempts$`), 422, {}, { message: 'Validation Failed' });
    const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false } });
    const { lines, log } = recorder();
    const missed = new MissedDeliveries({ app: () => clients.asApp(), store, log, everyMinutes: 10, maxPerDelivery: 3 });
    const round = await missed.round();
    expect(round.refused).toEqual(['refused-by-github']);
    expect(round.redelivered).toEqual(['missed-older']);
    expect((await waitForAttempts('missed-older', 2)).at(-1)!.status_code).toBe(202);
    expect(lines).toContainEqual(expect.stringMatching(/^warn GitHub delivery refused-by-github \(push, .*\) never reached forgevm, and GitHub refused to redeliver it \(422\): Validation Failed$/));
    // Not asked again by this process.
    expect((await missed.round()).refused).toEqual([]);
  });

  it('counts an event as delivered when any of its attempts was answered 2xx', () => {
    const attempt = (id: number, guid: string, status_code: number, redelivery = false, minute = id): HookDeliveryAttempt => ({
      id,
      guid,
      delivered_at: `2026-12-03T10:${String(minute).padStart(2, '0')}:00Z`,
      redelivery,
      status: status_code === 202 ? 'OK' : `Invalid HTTP Response: ${status_code}`,
      status_code,
      event: 'push',
      action: null,
    });
    const found = missedDeliveries([attempt(1, 'a', 503), attempt(2, 'a', 202, true), attempt(3, 'b', 503), attempt(5, 'b', 401, true), attempt(4, 'c', 0)]);
    expect(found.map((m) => [m.guid, m.latest.id, m.redeliveries])).toEqual([
      ['b', 5, 1],
      ['c', 4, 0],
    ]);
  });
});

async function waitForAttempts(guid: string, count: number) {
  for (let i = 0; i < 100; i++) {
    const attempts = github.attemptsOf(guid);
    if (attempts.length >= count) return attempts;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`GitHub made fewer than ${count} attempts for ${guid}: ${JSON.stringify(github.attemptsOf(guid))}`);
}
