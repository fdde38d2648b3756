/**
 * Which failures a delivery is retried for, and when: real errors from the real clients (Octokit
 * against a closed port and the fake GitHub, fetch for Forgejo), then the backoff arithmetic.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyFailure, describeNetworkError } from '../src/forge/api-failure.ts';
import { ForgejoApiError, ForgejoClient } from '../src/forge/forgejo-client.ts';
import { GithubClients } from '../src/forge/github-client.ts';
import { nextRetry, type RetryPolicy } from '../src/scheduler/delivery-retry.ts';
import { startFakeGithub, TEST_APP_KEYS, type FakeGithub } from './support/fake-github.ts';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

let github: FakeGithub | undefined;
afterEach(async () => {
  await github?.stop();
  github = undefined;
});

const quiet = { info() {}, warn() {}, error() {} };

describe('failure classification', () => {
  it('calls a refused connection transient and names the address, for Octokit and for Forgejo', async () => {
    const port = await closedPort();
    const clients = new GithubClients({ appId: 1, privateKey: TEST_APP_KEYS.privateKey, apiUrl: `http://127.0.0.1:${port}`, throttle: { enabled: false }, retry: { enabled: false } as never, log: quiet });
    const error = await clients.forInstallation(1).rest.repos.get({ owner: 'a', repo: 'b' }).catch((e: unknown) => e);
    const failure = classifyFailure(error);
    expect(failure).toMatchObject({ kind: 'transient' });
    expect(failure.reason).toBe(`network error reaching the forge: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(describeNetworkError(error, `http://127.0.0.1:${port}/x`)).toBe(`network error reaching 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);

    const forgejo = new ForgejoClient({ apiUrl: `http://127.0.0.1:${port}/api/v1`, token: 't', retries: 0, log: quiet });
    const ferror = await forgejo.createStatus('a/b', 'c'.repeat(40), { state: 'pending', context: 'x', description: 'y' }).catch((e: unknown) => e);
    expect(ferror).toBeInstanceOf(ForgejoApiError);
    expect((ferror as Error).message).toBe(`Forgejo API POST /repos/a/b/statuses/${'c'.repeat(40)} failed: network error reaching 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(classifyFailure(ferror).kind).toBe('transient');
  });

  it('retries 5xx, 429 and rate limits (with their wait), and not 404, 422 or a bad workflow', async () => {
    github = await startFakeGithub();
    const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false }, retry: { enabled: false } as never, log: quiet });
    const octokit = clients.forInstallation(3);
    const call = () => octokit.rest.checks.get({ owner: 'acme', repo: 'app', check_run_id: 1 }).catch((e: unknown) => e);
    const now = Date.now();

    github.failNext('GET', /check-runs\/1$/, 502, {}, { message: 'Bad Gateway' });
    expect(classifyFailure(await call())).toEqual({ kind: 'transient', reason: 'Bad Gateway' });
    github.failNext('GET', /check-runs\/1$/, 429, { 'retry-after': '120' }, { message: 'Too many requests' });
    expect(classifyFailure(await call(), now)).toMatchObject({ kind: 'transient', retryAfterMs: 120_000 });
    const reset = Math.floor(now / 1000) + 600;
    github.failNext('GET', /check-runs\/1$/, 403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) }, { message: 'API rate limit exceeded' });
    expect(classifyFailure(await call(), now)).toMatchObject({ kind: 'transient', retryAfterMs: reset * 1000 - now + 1000 });
    github.failNext('GET', /check-runs\/1$/, 403, {}, { message: 'You have exceeded a secondary rate limit' });
    expect(classifyFailure(await call())).toMatchObject({ kind: 'transient', retryAfterMs: 60_000 });
    github.failNext('GET', /check-runs\/1$/, 429, {}, { message: 'Too many requests' });
    expect(classifyFailure(await call())).toMatchObject({ kind: 'transient', retryAfterMs: 60_000 });

    expect(classifyFailure(await call())).toEqual({ kind: 'permanent', reason: expect.stringMatching(/Not Found/) });
    github.failNext('GET', /check-runs\/1$/, 422, {}, { message: 'Validation Failed' });
    expect(classifyFailure(await call()).kind).toBe('permanent');
    github.failNext('GET', /check-runs\/1$/, 403, {}, { message: 'Resource not accessible by integration' });
    expect(classifyFailure(await call()).kind).toBe('permanent');
    expect(classifyFailure(new Error('.forgevm/workflows/ci.yml:3:1: unknown key "jbos"')).kind).toBe('permanent');
    expect(classifyFailure(new ForgejoApiError(503, 'GET /x', 'unavailable', { headers: { 'retry-after': '7' } }), now)).toMatchObject({ kind: 'transient', retryAfterMs: 7000 });
    expect(classifyFailure(new ForgejoApiError(404, 'GET /x', 'not found', { headers: {} })).kind).toBe('permanent');
  });

  it('calls an aborted call aborted, not a failure, whatever wraps it', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await fetch('http://127.0.0.1:9/', { signal: controller.signal }).catch((e: unknown) => e);
    expect(classifyFailure(error).kind).toBe('aborted');
    expect(classifyFailure(new Error('planning failed', { cause: error })).kind).toBe('aborted');
  });

  it('stops a GitHub call that is waiting between retries as soon as its signal aborts', async () => {
    const port = await closedPort();
    const stop = new AbortController();
    // Retries 3 times, 1 s, 4 s and 9 s apart: ~14 s without the signal.
    const clients = new GithubClients({ appId: 1, privateKey: TEST_APP_KEYS.privateKey, apiUrl: `http://127.0.0.1:${port}`, throttle: { enabled: false }, retry: { retries: 3 }, log: quiet, signal: stop.signal });
    const started = performance.now();
    const pending = clients.forInstallation(1).rest.repos.get({ owner: 'a', repo: 'b' }).catch((e: unknown) => e);
    setTimeout(() => stop.abort(new Error('forgevm is stopping')), 1_500);
    const error = await pending;
    expect(performance.now() - started).toBeLessThan(2_500);
    expect(classifyFailure(error)).toMatchObject({ kind: 'aborted', reason: 'GitHub API call aborted: forgevm is stopping' });
  });
});

describe('retry backoff', () => {
  const policy: RetryPolicy = { baseMs: 10_000, maxMs: 300_000, giveUpMs: 24 * 3_600_000 };
  const at = Date.parse('2026-12-01T00:00:00Z');

  it('doubles from the base, capped, with jitter between half and all of it', () => {
    const delays = [1, 2, 3, 4, 5, 6, 12].map((failures) => nextRetry(policy, { failures, failingSinceMs: at }, at, () => 1));
    expect(delays.map((d) => (d.retry ? d.delayMs : -1))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
    expect(nextRetry(policy, { failures: 3, failingSinceMs: at }, at, () => 0)).toEqual({ retry: true, delayMs: 20_000 });
  });

  it('waits at least what the forge asked for', () => {
    expect(nextRetry(policy, { failures: 1, failingSinceMs: at, retryAfterMs: 3_600_000 }, at, () => 1)).toEqual({ retry: true, delayMs: 3_600_000 });
  });

  it('gives up once it has been failing for the give-up period, and says for how long', () => {
    expect(nextRetry(policy, { failures: 290, failingSinceMs: at }, at + 24 * 3_600_000)).toEqual({ retry: false, reason: 'gave up after 290 attempts over 24 h' });
    expect(nextRetry(policy, { failures: 289, failingSinceMs: at }, at + 23 * 3_600_000).retry).toBe(true);
  });
});
