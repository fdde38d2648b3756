/**
 * The forge path for reusable workflows and for jobs that cannot run: the worker reads a called
 * workflow through the forge API (it lives in .github/workflows, outside the folder forgevm
 * reads), gives each called job its own check run named `caller / called`, and reports a job
 * whose matrix is over GitHub's limit as a failed check with the reason (a skipped check would
 * count as passing). The fake GitHub validates every request; the real planner and graph run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PushEvent } from '../src/forge/event-types.ts';
import { GithubClients } from '../src/forge/github-client.ts';
import type { JobResult } from '../src/job/result.ts';
import { githubAccess } from '../src/scheduler/forge-access.ts';
import { RunnerLimits } from '../src/scheduler/limits.ts';
import { Worker, type ExecuteJob, type ExecuteJobRequest } from '../src/scheduler/worker.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import type { Store } from '../src/store/store.ts';
import { runJobGraph } from '../src/workflow/graph.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { testWorkerOptions } from './support/worker-fakes.ts';

const CI = `name: CI
on: push
jobs:
  build:
    name: Build
    strategy:
      matrix: {flavour: [small, large]}
    uses: ./.github/workflows/build.yml
    with:
      flavour: \${{ matrix.flavour }}
  report:
    needs: build
    runs-on: tiny
    steps: [{run: echo done}]
  huge:
    runs-on: tiny
    strategy:
      matrix:
        n: \${{ fromJSON('${JSON.stringify(Array.from({ length: 300 }, (_, i) => i))}') }}
    steps: [{run: x}]
`;

const BUILD = `on:
  workflow_call:
    inputs:
      flavour: {type: string, required: true}
    outputs:
      artifact: {value: "\${{ jobs.compile.outputs.file }}"}
jobs:
  compile:
    runs-on: tiny
    outputs: {file: "\${{ steps.c.outputs.file }}"}
    steps: [{id: c, run: make}]
`;

let github: FakeGithub;
let store: Store;
let stateDir: string;

beforeEach(async () => {
  github = await startFakeGithub();
  stateDir = mkdtempSync(join(tmpdir(), 'forgevm-reusable-'));
  store = new SqliteStore({ dir: stateDir });
});
afterEach(async () => {
  await github.stop();
  await store.close();
});

/** Runs every job at once: `compile` sets its output from the job's inputs; records the requests. */
function engine(): { execute: ExecuteJob; calls: ExecuteJobRequest[] } {
  const calls: ExecuteJobRequest[] = [];
  const execute: ExecuteJob = async (request): Promise<JobResult> => {
    calls.push(request);
    request.onVmStarted();
    const { instance } = request.job;
    const outputs: Record<string, string> = instance.job.id === 'compile' ? { file: `app-${String(instance.inputs?.flavour)}.tar` } : {};
    return { conclusion: 'success', steps: [], outputs, logPath: request.log.path, startedAt: new Date().toISOString(), durationMs: 1 };
  };
  return { execute, calls };
}

describe('worker with reusable workflows', () => {
  it('reads the called workflow through the API, gives each called job a check run, and fails an over-limit matrix', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI, '.github/workflows/build.yml': BUILD });
    const fake = engine();
    const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false }, log: { info() {}, warn() {}, error() {} } });
    const w = new Worker(
      testWorkerOptions({ store, stateDir, forges: { github: githubAccess(clients) }, executeJob: fake.execute }, { limits: new RunnerLimits(4), plan: planWorkflows, runGraph: runJobGraph }),
    );
    const event: PushEvent = {
      kind: 'push',
      forge: 'github',
      repo: { fullName: 'acme/app', owner: 'acme', name: 'app', cloneUrl: github.cloneUrl('acme/app') },
      ref: 'refs/heads/main',
      before: '0'.repeat(40),
      sha,
      created: false,
      forced: false,
      changedFiles: ['x'],
      actor: 'alice',
      installationId: 5,
    };
    await store.insertDelivery({ id: 'd-1', forge: 'github', event: 'push', action: null, normalized: event, payload: '{}' });
    while (await w.processNext());
    await w.idle();

    expect(github.validationErrors).toEqual([]);
    const runs = github.runsFor('acme/app');
    expect(runs.map((r) => [r.name, r.conclusion])).toEqual([
      ['CI / Build (small) / compile', 'success'],
      ['CI / Build (large) / compile', 'success'],
      ['CI / report', 'success'],
      ['CI / huge', 'failure'],
    ]);
    expect(runs[3]!.output.title).toBe("strategy.matrix: the matrix has 300 combinations; GitHub's limit is 256");
    // The called jobs ran with their own inputs; the job after the call saw its outputs.
    const byKey = new Map(fake.calls.map((c) => [c.job.instance.key, c]));
    expect(byKey.get('build (large) / compile')!.job.instance.inputs).toEqual({ flavour: 'large' });
    expect(['app-small.tar', 'app-large.tar']).toContain(byKey.get('report')!.needs.build!.outputs.artifact);
    expect(byKey.get('report')!.needs.build!.result).toBe('success');
    expect(byKey.has('huge')).toBe(false);
    const stored = await store.listJobsByStatus('completed');
    expect(stored.find((j) => j.instanceKey === 'huge')).toMatchObject({ conclusion: 'failure', error: "strategy.matrix: the matrix has 300 combinations; GitHub's limit is 256" });
  });
});
