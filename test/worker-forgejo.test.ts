import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PullRequestEvent, PushEvent } from '../src/forge/event-types.ts';
import { ForgejoClient } from '../src/forge/forgejo-client.ts';
import { forgejoAccess } from '../src/scheduler/forge-access.ts';
import { Worker, type PlanFn, type GraphRunner } from '../src/scheduler/worker.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { runJobGraph } from '../src/workflow/graph.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { startFakeForgejo, type FakeForgejo } from './support/fake-forgejo.ts';
import { FakeEngine, testWorkerOptions } from './support/worker-fakes.ts';

const CI = `name: CI
on: [push, pull_request]
jobs:
  build:
    runs-on: tiny
    steps:
      - run: make
  test:
    needs: build
    runs-on: tiny
    steps:
      - run: make test
  deploy:
    if: github.ref == 'refs/heads/release'
    runs-on: tiny
    steps:
      - run: ./deploy
`;

// The real planner and graph runner: the worker's injected types must accept them as they are.
const plan: PlanFn = planWorkflows;
const runGraph: GraphRunner = runJobGraph;

let forgejo: FakeForgejo;
let store: SqliteStore;
let dir: string;

beforeEach(async () => {
  forgejo = await startFakeForgejo();
  dir = mkdtempSync(join(tmpdir(), 'forgevm-worker-forgejo-'));
  store = new SqliteStore({ dir });
});
afterEach(async () => {
  await forgejo.stop();
  await store.close();
});

function makeWorker(engine: FakeEngine): Worker {
  const client = new ForgejoClient({ apiUrl: forgejo.apiUrl, token: forgejo.token, retryDelayMs: 10 });
  return new Worker(
    testWorkerOptions(
      { store, stateDir: dir, forges: { forgejo: forgejoAccess(client, forgejo.url) }, executeJob: engine.execute },
      { plan, runGraph, logCapBytes: 1_000_000, progressIntervalMs: 1_000, pollIntervalMs: undefined },
    ),
  );
}

const repo = () => ({ fullName: 'team/site', owner: 'team', name: 'site', cloneUrl: forgejo.cloneUrl('team/site') });

async function runAll(w: Worker): Promise<void> {
  while (await w.processNext());
  await w.idle();
}

describe('worker with Forgejo', () => {
  it('reports jobs as commit statuses: pending, then success / failure with a one-line description', async () => {
    const sha = forgejo.repos.commit('team/site', 'main', { '.forgevm/workflows/ci.yml': CI });
    const engine = new FakeEngine({
      build: [{ name: 'make', output: 'built\n', exitCode: 0 }],
      test: [{ name: 'make test', output: 'FAIL\n', exitCode: 1 }],
    });
    const push: PushEvent = { kind: 'push', forge: 'forgejo', repo: repo(), ref: 'refs/heads/main', before: '0'.repeat(40), sha, created: true, forced: false, changedFiles: [], actor: 'bob' };
    await store.insertDelivery({ id: 'fj-1', forge: 'forgejo', event: 'push', normalized: push, payload: '{}', dedupeKey: `forgejo:team/site:push:refs/heads/main:${sha}` });
    await runAll(makeWorker(engine));

    expect(forgejo.validationErrors).toEqual([]);
    expect(engine.calls.map((c) => c.job.instance.key)).toEqual(['build', 'test']);
    // git fetch used the token (as the Basic-auth password), never anonymous.
    const gitCalls = forgejo.requests.filter((r) => r.path.includes('.git/'));
    expect(gitCalls.length).toBeGreaterThan(0);
    expect(gitCalls.every((r) => r.authorized)).toBe(true);

    const latest = forgejo.latest('team/site', sha);
    expect([...latest.keys()].sort()).toEqual(['forgevm / CI / build', 'forgevm / CI / deploy', 'forgevm / CI / test']);
    expect(latest.get('forgevm / CI / build')).toMatchObject({ state: 'success', description: expect.stringMatching(/^Passed in /) });
    expect(latest.get('forgevm / CI / test')).toMatchObject({ state: 'failure', description: expect.stringMatching(/^Failed at step "make test" \(exit 1\)/) });
    expect(latest.get('forgevm / CI / deploy')!.state).toBe('success');
    const history = forgejo.statuses.filter((s) => s.context === 'forgevm / CI / build').map((s) => [s.state, s.description]);
    expect(history).toEqual([
      ['pending', 'Queued'],
      ['pending', 'Running'],
      ['success', expect.stringMatching(/^Passed in /)],
    ]);
    for (const s of forgejo.statuses) expect(s.description.length).toBeLessThanOrEqual(140);
  });

  it('never runs a pull request from a fork, and says so on the commit', async () => {
    forgejo.repos.commit('team/site', 'main', { 'README.md': 'x\n' });
    const head = forgejo.repos.commit('team/site', 'fork-pr', { '.forgevm/workflows/ci.yml': CI }, 'fork', 'main');
    forgejo.pulls.set('team/site#3', { base: 'main', head });
    const engine = new FakeEngine({});
    const pr: PullRequestEvent = {
      kind: 'pull_request', forge: 'forgejo', action: 'opened', repo: repo(), number: 3, title: 't', headSha: head, headRef: 'feature',
      headRepo: { fullName: 'eve/site', cloneUrl: 'https://forgejo.test/eve/site.git' }, baseRef: 'main', baseSha: 'a'.repeat(40), isFork: true, author: 'eve', actor: 'eve',
    };
    await store.insertDelivery({ id: 'fj-pr', forge: 'forgejo', event: 'pull_request', normalized: pr, payload: '{}' });
    await runAll(makeWorker(engine));
    expect(engine.calls).toHaveLength(0);
    const latest = forgejo.latest('team/site', head);
    expect(latest.get('forgevm / CI / build')).toMatchObject({ state: 'error', description: 'Not run: pull requests from forks need a maintainer' });
    expect(forgejo.validationErrors).toEqual([]);
  });
});
