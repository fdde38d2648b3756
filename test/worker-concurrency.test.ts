/**
 * `concurrency:` groups, as GitHub runs them: one holder runs and one waits per group; a newer
 * run replaces the waiting one, and with cancel-in-progress also cancels the running one. First
 * the groups on their own, then through the worker against the fake GitHub.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PushEvent } from '../src/forge/event-types.ts';
import { GithubClients } from '../src/forge/github-client.ts';
import type { JobResult } from '../src/job/result.ts';
import { ConcurrencyGroups, concurrencyReason } from '../src/scheduler/concurrency-groups.ts';
import { githubAccess } from '../src/scheduler/forge-access.ts';
import { RunnerLimits } from '../src/scheduler/limits.ts';
import { Worker, type ExecuteJob, type ExecuteJobRequest } from '../src/scheduler/worker.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { eitherSignal } from '../src/util/either-signal.ts';
import { runJobGraph } from '../src/workflow/graph.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import type { Store } from '../src/store/store.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { testWorkerOptions } from './support/worker-fakes.ts';

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('concurrency groups', () => {
  it('let one holder run and the next wait for it', async () => {
    const groups = new ConcurrencyGroups();
    const first = await groups.enter('k', 'ci', false);
    let secondIn = false;
    const second = groups.enter('k', 'ci', false).then((slot) => ((secondIn = true), slot));
    await new Promise((r) => setTimeout(r, 20));
    expect(secondIn).toBe(false);
    first.release();
    const slot = await second;
    expect(slot.signal.aborted).toBe(false);
    expect(first.signal.aborted).toBe(false);
    slot.release();
    expect(groups.size).toBe(0);
  });

  it('replace the waiting holder with a newer one, which then runs in its place', async () => {
    const groups = new ConcurrencyGroups();
    const running = await groups.enter('k', 'ci', false);
    const replaced = groups.enter('k', 'ci', false);
    const newest = groups.enter('k', 'ci', false);
    const gone = await replaced;
    expect(gone.signal.aborted).toBe(true);
    expect(concurrencyReason(gone.signal)).toBe('superseded in concurrency group "ci" before it started');
    expect(running.signal.aborted).toBe(false);
    running.release();
    const slot = await newest;
    expect(slot.signal.aborted).toBe(false);
    slot.release();
    expect(groups.size).toBe(0);
  });

  it('cancel the running holder with cancel-in-progress, and let the newcomer in once it released', async () => {
    const groups = new ConcurrencyGroups();
    const running = await groups.enter('k', 'deploy', false);
    let newcomerIn = false;
    const newcomer = groups.enter('k', 'deploy', true).then((slot) => ((newcomerIn = true), slot));
    expect(running.signal.aborted).toBe(true);
    expect(concurrencyReason(running.signal)).toBe('superseded in concurrency group "deploy" (cancel-in-progress)');
    await new Promise((r) => setTimeout(r, 20));
    expect(newcomerIn).toBe(false); // the cancelled one is still winding down
    running.release();
    expect((await newcomer).signal.aborted).toBe(false);
  });

  it('keep groups apart by key, and let a waiter leave when its own signal aborts', async () => {
    const groups = new ConcurrencyGroups();
    const a = await groups.enter('repo-a\0ci', 'ci', false);
    const b = await groups.enter('repo-b\0ci', 'ci', false);
    expect(b.signal.aborted).toBe(false);
    const stop = new AbortController();
    const waiting = groups.enter('repo-a\0ci', 'ci', false, stop.signal);
    stop.abort(new Error('worker stopping'));
    const left = await waiting;
    expect(left.signal.aborted).toBe(true);
    expect(concurrencyReason(left.signal)).toBeUndefined();
    a.release();
    b.release();
    expect(groups.size).toBe(0);
  });
});

describe('eitherSignal', () => {
  it('aborts with the reason of whichever source aborts first, and lets go of both on dispose', () => {
    const stop = new AbortController();
    const group = new AbortController();
    const linked = eitherSignal(stop.signal, group.signal);
    group.abort(new Error('superseded'));
    expect(linked.signal.aborted).toBe(true);
    expect((linked.signal.reason as Error).message).toBe('superseded');

    const later = eitherSignal(stop.signal, new AbortController().signal);
    later.dispose();
    stop.abort(new Error('stopping'));
    expect(later.signal.aborted).toBe(false);
    expect(eitherSignal(stop.signal, group.signal).signal.reason.message).toBe('stopping');
  });
});

// ------------------------------------------------------------------------------------ worker

/** An engine whose jobs run until released (per commit) or cancelled. */
class HeldEngine {
  readonly calls: ExecuteJobRequest[] = [];
  readonly #release = new Map<string, () => void>();

  release(sha: string): void {
    this.#release.get(sha)?.();
  }

  started(sha: string): boolean {
    return this.calls.some((c) => c.workspace.sha === sha);
  }

  execute: ExecuteJob = async (request) => {
    this.calls.push(request);
    request.onVmStarted();
    const released = new Promise<void>((resolve) => this.#release.set(request.workspace.sha, resolve));
    const cancelled = new Promise<void>((resolve) => request.signal.addEventListener('abort', () => resolve(), { once: true }));
    await Promise.race([released, cancelled]);
    const result: JobResult = { conclusion: request.signal.aborted ? 'cancelled' : 'success', steps: [], outputs: {}, logPath: request.log.path, startedAt: new Date().toISOString(), durationMs: 5 };
    return result;
  };
}

let github: FakeGithub;
let store: Store;
let stateDir: string;

beforeEach(async () => {
  github = await startFakeGithub();
  stateDir = mkdtempSync(join(tmpdir(), 'forgevm-concurrency-'));
  store = new SqliteStore({ dir: stateDir });
});
afterEach(async () => {
  await github.stop();
  await store.close();
});

function worker(engine: HeldEngine): Worker {
  const log = { info() {}, warn() {}, error() {} };
  const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false }, log });
  // The real planner and graph runner: `needs`, `if: always()` and cancellation as in production.
  return new Worker(
    testWorkerOptions({ store, stateDir, forges: { github: githubAccess(clients) }, executeJob: engine.execute }, { limits: new RunnerLimits(4), plan: planWorkflows, runGraph: runJobGraph }),
  );
}

function workflow(concurrency: string): string {
  return `name: CI
on: push
${concurrency}
jobs:
  build:
    runs-on: tiny
    steps:
      - run: make
`;
}

async function push(id: string, sha: string): Promise<void> {
  const event: PushEvent = {
    kind: 'push',
    forge: 'github',
    repo: { fullName: 'acme/app', owner: 'acme', name: 'app', cloneUrl: github.cloneUrl('acme/app') },
    ref: 'refs/heads/main',
    before: '0'.repeat(40),
    sha,
    created: false,
    forced: false,
    changedFiles: ['src/main.c'],
    actor: 'alice',
    installationId: 5,
  };
  await store.insertDelivery({ id, forge: 'github', event: 'push', action: null, normalized: event, payload: JSON.stringify({ delivery: id }) });
}

const checkOf = (sha: string) => github.runsFor('acme/app').find((r) => r.head_sha === sha);

describe('worker with concurrency groups', () => {
  it('cancels the run in progress when a newer push to the same group arrives with cancel-in-progress', async () => {
    const concurrency = 'concurrency:\n  group: ci-${{ github.ref }}\n  cancel-in-progress: true';
    const first = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': workflow(concurrency), 'a.txt': '1' });
    const engine = new HeldEngine();
    const w = worker(engine);
    await push('p-1', first);
    await w.processNext();
    await until(() => engine.started(first), 'the first run to start');

    const second = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': workflow(concurrency), 'a.txt': '2' });
    await push('p-2', second);
    await w.processNext();
    await until(() => engine.started(second), 'the second run to start');
    engine.release(second);
    await w.idle();

    expect(github.validationErrors).toEqual([]);
    expect(checkOf(first)).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    expect(checkOf(first)!.output.title).toBe('Cancelled: superseded in concurrency group "ci-refs/heads/main" (cancel-in-progress)');
    expect(checkOf(second)).toMatchObject({ status: 'completed', conclusion: 'success' });
  });

  it('queues a newer push behind the running one, and lets the newest replace one still waiting', async () => {
    // The `if: always()` job shows that a run replaced while it waited starts nothing at all.
    const yaml = `${workflow('concurrency: ci-${{ github.ref }}')}  report:
    needs: build
    if: always()
    runs-on: tiny
    steps:
      - run: ./report
`;
    const commit = (n: number) => github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': yaml, 'a.txt': String(n) });
    const engine = new HeldEngine();
    const w = worker(engine);
    const callsFor = (sha: string) => engine.calls.filter((c) => c.workspace.sha === sha).length;
    const first = commit(1);
    await push('q-1', first);
    await w.processNext();
    await until(() => engine.started(first), 'the first run to start');

    const second = commit(2);
    await push('q-2', second);
    await w.processNext();
    const third = commit(3);
    await push('q-3', third);
    await w.processNext();
    // The second was waiting; the third took its place and it ended without a VM.
    const checksOf = (sha: string) => github.runsFor('acme/app').filter((r) => r.head_sha === sha);
    await until(() => checksOf(second).length === 2 && checksOf(second).every((r) => r.status === 'completed'), 'the replaced run to be concluded');
    for (const check of checksOf(second)) {
      expect(check.conclusion).toBe('cancelled');
      expect(check.output.title).toBe('Cancelled: superseded in concurrency group "ci-refs/heads/main" before it started');
    }
    expect(checksOf(third).map((r) => r.status)).toEqual(['queued', 'queued']);
    expect(engine.started(third)).toBe(false);

    engine.release(first); // build
    await until(() => callsFor(first) === 2, 'the first report job');
    engine.release(first); // report
    await until(() => engine.started(third), 'the newest run to start after the first finished');
    engine.release(third);
    await until(() => callsFor(third) === 2, 'the newest report job');
    engine.release(third);
    await w.idle();
    expect(checksOf(first).map((r) => r.conclusion)).toEqual(['success', 'success']);
    expect(checksOf(third).map((r) => r.conclusion)).toEqual(['success', 'success']);
    expect(callsFor(second)).toBe(0);
  });

  it('applies a job-level group to that job only', async () => {
    const yaml = `name: CI
on: push
jobs:
  build:
    runs-on: tiny
    steps:
      - run: make
  deploy:
    needs: build
    runs-on: tiny
    concurrency:
      group: deploy-production
      cancel-in-progress: \${{ github.ref == 'refs/heads/main' }}
    steps:
      - run: ./deploy
`;
    const first = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': yaml, 'a.txt': '1' });
    const engine = new HeldEngine();
    const w = worker(engine);
    await push('j-1', first);
    await w.processNext();
    await until(() => engine.started(first), 'the first build');
    engine.release(first); // build passes, deploy starts
    await until(() => engine.calls.filter((c) => c.workspace.sha === first).length === 2, 'the first deploy');

    const second = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': yaml, 'a.txt': '2' });
    await push('j-2', second);
    await w.processNext();
    // The second build runs beside the first deploy: only the deploy job is grouped.
    await until(() => engine.started(second), 'the second build');
    engine.release(second);
    await until(() => engine.calls.filter((c) => c.workspace.sha === second).length === 2, 'the second deploy');
    engine.release(second);
    await w.idle();

    const runs = github.runsFor('acme/app').map((r) => [r.head_sha === first ? 'first' : 'second', r.name, r.conclusion]);
    expect(runs).toEqual(
      expect.arrayContaining([
        ['first', 'CI / build', 'success'],
        ['first', 'CI / deploy', 'cancelled'],
        ['second', 'CI / build', 'success'],
        ['second', 'CI / deploy', 'success'],
      ]),
    );
    const firstDeploy = github.runsFor('acme/app').find((r) => r.head_sha === first && r.name === 'CI / deploy')!;
    expect(firstDeploy.output.title).toBe('Cancelled: superseded in concurrency group "deploy-production" (cancel-in-progress)');
  });
});
