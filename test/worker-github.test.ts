import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ForgeEvent, PullRequestEvent, PushEvent, CheckRunEvent, CheckSuiteEvent } from '../src/forge/event-types.ts';
import { GithubClients, type ForgeLogger } from '../src/forge/github-client.ts';
import { githubAccess } from '../src/scheduler/forge-access.ts';
import { RunnerLimits } from '../src/scheduler/limits.ts';
import { Worker, type WorkerOptions } from '../src/scheduler/worker.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import type { Store } from '../src/store/store.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { FakeEngine, testWorkerOptions } from './support/worker-fakes.ts';

const CI = `name: CI
on: [push, pull_request]
jobs:
  build:
    runs-on: tiny
    steps:
      - run: make
  test:
    name: Unit tests
    runs-on: tiny
    steps:
      - run: make test
  deploy:
    if: github.ref == 'refs/heads/release'
    runs-on: tiny
    steps:
      - run: ./deploy
`;

const compilerErrors = Array.from({ length: 120 }, (_, i) => `/root/work/app/src/mod${i}.c:${i + 1}:3: error: 'x${i}' undeclared`).join('\n');

let github: FakeGithub;
let store: Store;
let stateDir: string;
let lines: string[];

function makeLog(): ForgeLogger {
  const push = (l: string) => lines.push(l);
  return { info: push, warn: push, error: push };
}

function worker(engine: FakeEngine, over: Partial<WorkerOptions> = {}): Worker {
  const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false }, log: makeLog() });
  return new Worker(
    testWorkerOptions(
      { store, stateDir, forges: { github: githubAccess(clients) }, executeJob: engine.execute },
      { log: makeLog(), progressIntervalMs: 40, ...over },
    ),
  );
}

function engine(): FakeEngine {
  return new FakeEngine({
    build: [{ name: 'make', output: 'cc -o app main.c\n', exitCode: 0 }],
    test: [
      { name: 'Setup', output: 'ok\n', exitCode: 0 },
      { name: 'make test', output: `${compilerErrors}\nmake: *** [test] Error 2\n`, exitCode: 2 },
    ],
  });
}

const repo = () => ({ fullName: 'acme/app', owner: 'acme', name: 'app', cloneUrl: github.cloneUrl('acme/app') });

function pushEvent(sha: string): PushEvent {
  return { kind: 'push', forge: 'github', repo: repo(), ref: 'refs/heads/main', before: '0'.repeat(40), sha, created: false, forced: false, changedFiles: ['src/main.c'], actor: 'alice', installationId: 5 };
}

async function deliver(id: string, event: ForgeEvent): Promise<void> {
  await store.insertDelivery({ id, forge: 'github', event: event.kind, action: 'action' in event ? event.action : null, normalized: event, payload: JSON.stringify({ delivery: id }) });
}

async function runAll(w: Worker): Promise<void> {
  while (await w.processNext());
  await w.idle();
}

beforeEach(async () => {
  github = await startFakeGithub();
  stateDir = mkdtempSync(join(tmpdir(), 'forgevm-worker-'));
  store = new SqliteStore({ dir: stateDir });
  lines = [];
});
afterEach(async () => {
  await github.stop();
  await store.close();
});

describe('worker with GitHub', () => {
  it('reports a passing and a failing job as two check runs, plus the skipped one', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI, 'src/main.c': 'int main(){}\n' });
    const fake = engine();
    fake.stepDelayMs = 120;
    const w = worker(fake);
    await deliver('d-1', pushEvent(sha));
    await runAll(w);

    expect(github.validationErrors).toEqual([]);
    const runs = github.runsFor('acme/app');
    expect(runs.map((r) => [r.name, r.status, r.conclusion])).toEqual([
      ['CI / build', 'completed', 'success'],
      ['CI / Unit tests', 'completed', 'failure'],
      ['CI / deploy', 'completed', 'skipped'],
    ]);
    const [build, test, deploy] = runs;
    expect(build!.output.title).toMatch(/^Passed in /);
    expect(test!.output.title).toMatch(/^Failed at step "make test" \(exit 2\) after /);
    expect(test!.output.text).toContain('make: *** [test] Error 2');
    expect(deploy!.output.title).toBe("Skipped: if: github.ref == 'refs/heads/release' was false");
    // The VM start was reported, and the live tail went out while the job ran.
    expect(test!.history.some((b) => b.status === 'in_progress' && typeof b.started_at === 'string')).toBe(true);
    expect(test!.history.some((b) => b.status === undefined && (b.output as { title?: string } | undefined)?.title?.startsWith('Running for'))).toBe(true);
    // Annotations: relative paths, batched 50 + 50 + 20.
    expect(test!.annotations).toHaveLength(120);
    expect(test!.annotations[0]).toMatchObject({ path: 'src/mod0.c', start_line: 1, annotation_level: 'failure' });
    const batches = test!.history.map((b) => (b.output as { annotations?: unknown[] } | undefined)?.annotations?.length).filter(Boolean);
    expect(batches).toEqual([50, 50, 20]);
    // The engine got the commit from the host cache, and the store has every state.
    expect(fake.calls.map((c) => c.job.instance.key)).toEqual(['build', 'test']);
    expect(fake.calls[0]!.workspace.sha).toBe(sha);
    expect(fake.calls[0]!.github.repository).toBe('acme/app');
    const stored = await store.listJobsByStatus('completed');
    expect(stored.map((j) => [j.instanceKey, j.conclusion, j.checkRunId !== null])).toEqual([
      ['build', 'success', true],
      ['test', 'failure', true],
      ['deploy', 'skipped', true],
    ]);
    expect((await store.getDelivery('d-1'))!.status).toBe('done');
  });

  it('runs as a service: start, notify after a delivery is stored, stop', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    const fake = engine();
    const w = worker(fake, { pollIntervalMs: 60_000 });
    await w.start();
    await deliver('svc-1', pushEvent(sha));
    w.notify();
    for (let i = 0; i < 500 && github.runsFor('acme/app').filter((r) => r.status === 'completed').length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    await w.stop();
    expect(github.runsFor('acme/app').map((r) => r.conclusion)).toEqual(['success', 'failure', 'skipped']);
    expect((await store.getDelivery('svc-1'))!.status).toBe('done');
  });

  it('reports an invalid workflow file as a failed check with its problems, and still runs the valid ones', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI, '.forgevm/workflows/broken.yml': 'on: push\njobs:\n  x:\n    runs-on: tiny\n    stepz: []\n' });
    const fake = engine();
    await deliver('bad-1', pushEvent(sha));
    await runAll(worker(fake));
    const broken = github.runsFor('acme/app').find((r) => r.name.startsWith('.forgevm/workflows/broken.yml'));
    expect(broken).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(broken!.output.title).toMatch(/is not a valid workflow/);
    expect(broken!.annotations.length).toBeGreaterThan(0);
    expect(fake.calls.map((c) => c.job.instance.key)).toEqual(['build', 'test']);
    expect(github.validationErrors).toEqual([]);
  });

  it('still completes a job whose check could not be created when it was queued', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    github.failNext('POST', /check-runs$/, 422, {}, { message: 'injected' });
    const fake = engine();
    await deliver('flaky-1', pushEvent(sha));
    await runAll(worker(fake));
    expect(github.runsFor('acme/app').map((r) => [r.name, r.conclusion]).sort()).toEqual([
      ['CI / Unit tests', 'failure'],
      ['CI / build', 'success'],
      ['CI / deploy', 'skipped'],
    ]);
    expect(lines.some((l) => /^cannot create the check for acme\/app CI \/ build: /.test(l))).toBe(true);
  });

  it('holds fork PRs from outsiders until someone with write access approves that commit', async () => {
    github.repos.commit('acme/app', 'main', { 'README.md': 'base\n' });
    const head = github.repos.commit('acme/app', 'pr-7', { '.forgevm/workflows/ci.yml': CI.replace(/\n {2}deploy:[\s\S]*$/, '\n') }, 'fork change', 'main');
    github.setPull('acme/app', 7, 'main', head);
    const fake = engine();
    const w = worker(fake);
    const pr: PullRequestEvent = {
      kind: 'pull_request', forge: 'github', action: 'opened', repo: repo(), number: 7, title: 'rm -rf', headSha: head, headRef: 'feature',
      headRepo: { fullName: 'mallory/app', cloneUrl: 'https://github.test/mallory/app.git' }, baseRef: 'main', baseSha: 'b'.repeat(40),
      isFork: true, authorAssociation: 'NONE', author: 'mallory', actor: 'mallory', installationId: 5,
    };
    await deliver('pr-1', pr);
    await runAll(w);
    expect(fake.calls).toHaveLength(0);
    const gated = github.runsFor('acme/app');
    expect(gated.map((r) => r.conclusion)).toEqual(['action_required', 'action_required']);
    expect(gated[0]!.actions).toEqual([{ label: 'Approve and run', identifier: 'approve', description: 'Run this commit in a VM' }]);
    expect(gated[0]!.output.text).toMatch(/maintainer with write access must approve/);

    const click = (id: string, actor: string, headSha = head): CheckRunEvent => ({
      kind: 'check_run', forge: 'github', action: 'requested_action', repo: repo(), checkRunId: gated[0]!.id, externalId: gated[0]!.external_id, headSha, requestedActionId: 'approve', actor, installationId: 5,
    });
    github.setPermission('acme/app', 'mallory', 'read');
    await deliver('click-1', click('click-1', 'mallory'));
    await deliver('click-2', click('click-2', 'maintainer', 'f'.repeat(40)));
    await runAll(w);
    expect(fake.calls).toHaveLength(0);
    expect((await store.getDelivery('click-1'))!.error).toMatch(/mallory has no write access/);
    expect((await store.getDelivery('click-2'))!.error).toMatch(/approval was for ffffffffffff/);

    github.setPermission('acme/app', 'maintainer', 'write');
    await deliver('click-3', click('click-3', 'maintainer'));
    await runAll(w);
    expect(fake.calls.map((c) => c.job.instance.key)).toEqual(['build', 'test']);
    expect(github.runsFor('acme/app').slice(2).map((r) => [r.name, r.conclusion])).toEqual([
      ['CI / build', 'success'],
      ['CI / Unit tests', 'failure'],
    ]);
    expect(github.validationErrors).toEqual([]);
    expect(github.requests.some((r) => r.path === '/repos/acme/app/pulls/7/files')).toBe(true);
    expect(lines.filter((l) => /cannot list changed files|failed/.test(l))).toEqual([]);
  });

  it('re-runs one job on check_run.rerequested and the whole suite on check_suite.rerequested', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    const fake = engine();
    const w = worker(fake);
    await deliver('d-1', pushEvent(sha));
    await runAll(w);
    const failing = github.runsFor('acme/app').find((r) => r.name === 'CI / Unit tests')!;

    await deliver('rerun-1', { kind: 'check_run', forge: 'github', action: 'rerequested', repo: repo(), checkRunId: failing.id, externalId: failing.external_id, headSha: sha, actor: 'alice', installationId: 5 });
    await runAll(w);
    expect(fake.calls.map((c) => c.job.instance.key)).toEqual(['build', 'test', 'test']);
    const afterJobRerun = github.runsFor('acme/app');
    expect(afterJobRerun).toHaveLength(4);
    expect(afterJobRerun[3]).toMatchObject({ name: 'CI / Unit tests', conclusion: 'failure' });
    expect(fake.calls[2]!.github.run_attempt).toBe('2');

    const suite: CheckSuiteEvent = { kind: 'check_suite', forge: 'github', action: 'rerequested', repo: repo(), checkSuiteId: 1, headSha: sha, headBranch: 'main', actor: 'alice', installationId: 5 };
    await deliver('suite-1', suite);
    await runAll(w);
    expect(fake.calls.map((c) => c.job.instance.key)).toEqual(['build', 'test', 'test', 'build', 'test']);
    expect(github.runsFor('acme/app')).toHaveLength(7);
    expect(fake.calls[4]!.github.run_attempt).toBe('3');
    expect(github.validationErrors).toEqual([]);
  });

  it('sets a delivery aside when GitHub fails for a passing reason, and fails it at once for a lasting one', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    const w = worker(engine(), { retryPolicy: { baseMs: 50, maxMs: 100, giveUpMs: 60_000 } });
    // The client retries once in the process; both attempts get the 502.
    github.failNext('GET', /\/contents\//, 502, {}, { message: 'Bad Gateway' }, 2);
    await deliver('flaky-api', pushEvent(sha));
    await w.processNext();
    expect(await store.getDelivery('flaky-api')).toMatchObject({ status: 'pending', failures: 1, lastError: 'Bad Gateway', error: null });
    expect(lines.filter((l) => l.startsWith('delivery flaky-api'))).toEqual([expect.stringMatching(/^delivery flaky-api \(push acme\/app\) failed for a passing reason: Bad Gateway; attempt 2 in 0(\.\d)? s$/)]);
    expect(github.runsFor('acme/app')).toEqual([]);
    await new Promise((r) => setTimeout(r, 150));
    await runAll(w);
    expect(await store.getDelivery('flaky-api')).toMatchObject({ status: 'done', failures: 1 });
    expect(github.runsFor('acme/app')).toHaveLength(3);

    github.failNext('GET', /\/contents\//, 403, {}, { message: 'Resource not accessible by integration' });
    await deliver('forbidden', pushEvent(sha));
    await runAll(w);
    expect(await store.getDelivery('forbidden')).toMatchObject({ status: 'failed', failures: 0, error: 'Resource not accessible by integration' });
    expect(github.runsFor('acme/app')).toHaveLength(3);
  });

  it('resumes a delivery that failed halfway through creating its checks without making any twice', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    const fake = engine();
    const w = worker(fake, { retryPolicy: { baseMs: 10, maxMs: 20, giveUpMs: 60_000 } });
    // The first check is made; the second one fails (twice: the client retries once).
    github.failNext('POST', /check-runs$/, 502, {}, { message: 'Bad Gateway' }, 2, 1);
    await deliver('halfway', pushEvent(sha));
    await w.processNext();
    expect(await store.getDelivery('halfway')).toMatchObject({ status: 'pending', failures: 1 });
    expect(github.runsFor('acme/app').map((r) => r.name)).toEqual(['CI / build']);
    expect(await store.listRunsByDelivery('halfway')).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    await runAll(w);
    expect(await store.getDelivery('halfway')).toMatchObject({ status: 'done' });
    expect(github.runsFor('acme/app').map((r) => [r.name, r.conclusion])).toEqual([
      ['CI / build', 'success'],
      ['CI / Unit tests', 'failure'],
      ['CI / deploy', 'skipped'],
    ]);
    expect(fake.calls.map((c) => c.job.instance.key)).toEqual(['build', 'test']);
    expect(await store.listRunsByDelivery('halfway')).toHaveLength(1);
    expect(github.validationErrors).toEqual([]);
  });

  it('refuses to re-run a job whose push lost its payload to retention, and says why', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    const fake = engine();
    const w = worker(fake);
    await deliver('old-push', pushEvent(sha));
    await runAll(w);
    expect(await store.pruneDeliveries(new Date(Date.now() + 60_000).toISOString())).toEqual({ deleted: 0, stripped: 1 });
    const failing = github.runsFor('acme/app').find((r) => r.name === 'CI / Unit tests')!;
    await deliver('late-rerun', { kind: 'check_run', forge: 'github', action: 'rerequested', repo: repo(), checkRunId: failing.id, externalId: failing.external_id, headSha: sha, actor: 'alice', installationId: 5 });
    await runAll(w);
    expect(fake.calls).toHaveLength(2);
    expect(github.runsFor('acme/app')).toHaveLength(3);
    expect(await store.getDelivery('late-rerun')).toMatchObject({ status: 'ignored', error: expect.stringMatching(/stored webhook payload was deleted by retention \(deliveryRetentionDays\); push a new commit/) });
  });

  it('after a restart, fails the job that was running, runs the queued one, and never duplicates check runs', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    // First process: one runner slot; `build` hangs in its VM, `test` waits for the slot. Then it "crashes".
    const frozen = engine();
    frozen.hold = new Promise(() => {});
    const first = worker(frozen, { limits: new RunnerLimits(1) });
    await deliver('d-1', pushEvent(sha));
    await first.processNext();
    for (let i = 0; i < 200 && frozen.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(frozen.calls).toHaveLength(1);
    expect(github.runsFor('acme/app')).toHaveLength(3);

    // Second process, same state folder.
    const fake = engine();
    let reaped = 0;
    const second = worker(fake, { store: new SqliteStore({ dir: stateDir }), reapVms: async () => void reaped++ });
    await second.recoverAfterRestart();
    // Recovery put the push back in the queue: processing it again resumes its queued job.
    await runAll(second);

    expect(reaped).toBe(1);
    expect(fake.calls.map((c) => c.job.instance.key)).toEqual(['test']);
    const runs = github.runsFor('acme/app');
    expect(runs.map((r) => [r.name, r.conclusion])).toEqual([
      ['CI / build', 'failure'],
      ['CI / Unit tests', 'failure'],
      ['CI / deploy', 'skipped'],
    ]);
    expect(runs[0]!.output.title).toMatch(/runner restarted/);
    expect(runs[1]!.output.title).toMatch(/^Failed at step "make test"/);
    expect(github.validationErrors).toEqual([]);
  });
});
