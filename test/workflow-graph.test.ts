import { describe, expect, it } from 'vitest';
import type { JobConclusion, JobResult } from '../src/job/result.ts';
import { failureIsAllowed, runConclusion, runJobGraph, type GraphOptions } from '../src/workflow/graph.ts';
import type { NeedsEntry, PlannedJob } from '../src/workflow/model.ts';
import { parseWorkflow } from '../src/workflow/parse.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { githubContext, instanceOf, jobDef, planned, plannedJobsOf, workflowFromYaml, workflowOf, type JobSpec } from './support/job-model.ts';

interface Behaviour {
  conclusion?: JobConclusion;
  outputs?: Record<string, string>;
  ms?: number;
}

/** A fake runJob: each job key behaves as told; it honours its abort signal like a real job. */
function fakeRunner(behaviour: Record<string, Behaviour> = {}) {
  const started: string[] = [];
  const needsSeen: Record<string, Record<string, NeedsEntry>> = {};
  let running = 0;
  let peak = 0;
  const runJob = (p: PlannedJob, needs: Record<string, NeedsEntry>, signal: AbortSignal): Promise<JobResult> => {
    const key = p.instance.key;
    started.push(key);
    needsSeen[key] = needs;
    running += 1;
    peak = Math.max(peak, running);
    const b = behaviour[key] ?? {};
    return new Promise((resolve) => {
      const done = (conclusion: JobConclusion) => {
        running -= 1;
        resolve({ conclusion, steps: [], outputs: b.outputs ?? {}, logPath: `/logs/${key}`, startedAt: new Date().toISOString(), durationMs: 1 });
      };
      const timer = setTimeout(() => done(b.conclusion ?? 'success'), b.ms ?? 5);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        done('cancelled');
      });
    });
  };
  return { runJob, started, needsSeen, peak: () => peak };
}

function plan(jobs: JobSpec[]): PlannedJob[] {
  const defs = jobs.map((j) => jobDef(j));
  const wf = workflowOf(defs);
  return defs.map((d) => planned(instanceOf(d, wf)));
}

const opts = (extra: Partial<GraphOptions> = {}): GraphOptions => ({ maxParallel: 4, contexts: { github: githubContext() }, ...extra });
const conclusions = (m: Map<string, JobResult>) => Object.fromEntries([...m].map(([k, r]) => [k, r.conclusion]));

describe('ordering and parallelism', () => {
  it('runs jobs after their needs, independent ones in parallel up to maxParallel', async () => {
    const f = fakeRunner({ a: { ms: 30 }, b: { ms: 30 }, c: { ms: 30 } });
    const results = await runJobGraph(plan([{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd', needs: ['a', 'b'] }]), f.runJob, opts({ maxParallel: 2 }));
    expect(f.peak()).toBe(2);
    expect(f.started.indexOf('d')).toBe(3);
    expect(conclusions(results)).toEqual({ a: 'success', b: 'success', c: 'success', d: 'success' });
  });

  it('passes needs outputs and results, and calls the start/end hooks', async () => {
    const f = fakeRunner({ build: { outputs: { version: '1.0' } } });
    const events: string[] = [];
    await runJobGraph(plan([{ id: 'build' }, { id: 'deploy', needs: ['build'] }]), f.runJob, opts({
      onJobStart: (p) => events.push(`start ${p.instance.key}`),
      onJobEnd: (p, r) => events.push(`end ${p.instance.key} ${r.conclusion}`),
    }));
    expect(f.needsSeen.deploy).toEqual({ build: { result: 'success', outputs: { version: '1.0' } } });
    expect(events).toEqual(['start build', 'end build success', 'start deploy', 'end deploy success']);
  });

  it('works when a dependency appears later in the plan than its dependent', async () => {
    const f = fakeRunner();
    const defs = [jobDef({ id: 'late', needs: ['early'] }), jobDef({ id: 'early' })];
    const wf = workflowOf(defs);
    const results = await runJobGraph([planned(instanceOf(defs[0]!, wf)), planned(instanceOf(defs[1]!, wf), 'if: false at plan time')], f.runJob, opts());
    expect(conclusions(results)).toEqual({ early: 'skipped', late: 'skipped' });
    expect(f.started).toEqual([]);
  });

  it('ends a needs cycle with a clear failure instead of hanging', async () => {
    const results = await runJobGraph(plan([{ id: 'x', needs: ['y'] }, { id: 'y', needs: ['x'] }]), fakeRunner().runJob, opts());
    expect(results.get('x')?.error).toMatch(/needs cycle/);
  });
});

describe('job if and status functions', () => {
  it('skips dependents of a failed job, runs failure() and always() jobs, and propagates skips', async () => {
    const f = fakeRunner({ build: { conclusion: 'failure' } });
    const results = await runJobGraph(
      plan([
        { id: 'build' },
        { id: 'test', needs: ['build'] },
        { id: 'after_test', needs: ['test'] },
        { id: 'notify', needs: ['test'], if: 'failure()' }, // failure() sees the failed grandparent
        { id: 'cleanup', needs: ['build'], if: 'always()' },
        // No status function means success() && (…), and success() looks up the whole needs chain,
        // so the failed build skips this one although cleanup succeeded (actions/runner#2205).
        { id: 'only_ok', needs: ['cleanup'], if: "needs.cleanup.result == 'success'" },
        { id: 'explicit', needs: ['cleanup'], if: "always() && needs.cleanup.result == 'success'" },
        { id: 'plain', needs: ['cleanup'] },
      ]),
      f.runJob,
      opts(),
    );
    expect(conclusions(results)).toEqual({
      build: 'failure',
      test: 'skipped',
      after_test: 'skipped',
      notify: 'success',
      cleanup: 'success',
      only_ok: 'skipped',
      explicit: 'success',
      plain: 'skipped',
    });
    expect(f.started.sort()).toEqual(['build', 'cleanup', 'explicit', 'notify']);
    expect(f.needsSeen.notify).toEqual({ test: { result: 'skipped', outputs: {} } });
  });

  it('evaluates job if with github and needs contexts', async () => {
    const f = fakeRunner({ a: { outputs: { go: 'yes' } } });
    const results = await runJobGraph(
      plan([
        { id: 'a' },
        { id: 'b', needs: ['a'], if: "needs.a.outputs.go == 'yes' && github.ref_name == 'main'" },
        { id: 'c', needs: ['a'], if: "github.event_name == 'pull_request'" },
      ]),
      f.runJob,
      opts(),
    );
    expect(conclusions(results)).toEqual({ a: 'success', b: 'success', c: 'skipped' });
  });

  it('keeps planner-skipped jobs skipped without calling runJob', async () => {
    const f = fakeRunner();
    const defs = [jobDef({ id: 'a' })];
    const results = await runJobGraph([planned(instanceOf(defs[0]!), 'branch filter did not match')], f.runJob, opts());
    expect(conclusions(results)).toEqual({ a: 'skipped' });
    expect(f.started).toEqual([]);
  });

  it('turns a crash of runJob into a failed result with the error', async () => {
    const results = await runJobGraph(plan([{ id: 'a' }]), () => Promise.reject(new Error('VM did not boot')), opts());
    expect(results.get('a')).toMatchObject({ conclusion: 'failure', error: 'job a crashed: VM did not boot' });
  });
});

describe('matrix', () => {
  const matrixWorkflow = (failFast: boolean, maxParallel?: string) =>
    workflowFromYaml(`
jobs:
  test:
    strategy:
      fail-fast: ${failFast}
      ${maxParallel ? `max-parallel: ${maxParallel}` : ''}
      matrix:
        n: [1, 2, 3, 4]
    runs-on: tiny
    outputs:
      last: x
  report:
    needs: test
    if: always()
    runs-on: tiny
`);

  it('fail-fast cancels running and pending siblings when one instance fails', async () => {
    const f = fakeRunner({ 'test (1)': { conclusion: 'failure', ms: 10 }, 'test (2)': { ms: 500 }, 'test (3)': { ms: 500 } });
    const results = await runJobGraph(plannedJobsOf(matrixWorkflow(true)), f.runJob, opts({ maxParallel: 3 }));
    expect(conclusions(results)).toEqual({ 'test (1)': 'failure', 'test (2)': 'cancelled', 'test (3)': 'cancelled', 'test (4)': 'cancelled', report: 'success' });
    expect(f.started).not.toContain('test (4)');
    expect(f.needsSeen.report).toEqual({ test: { result: 'failure', outputs: {} } });
  });

  it('without fail-fast the siblings finish; max-parallel limits the matrix', async () => {
    const f = fakeRunner({ 'test (2)': { conclusion: 'failure' } });
    const results = await runJobGraph(plannedJobsOf(matrixWorkflow(false, '2')), f.runJob, opts({ maxParallel: 8 }));
    expect(f.peak()).toBe(2);
    expect(conclusions(results)).toMatchObject({ 'test (1)': 'success', 'test (2)': 'failure', 'test (3)': 'success', 'test (4)': 'success' });
  });

  it('needs outputs of a matrix come from the last finished instance that set them', async () => {
    const f = fakeRunner({
      'test (1)': { outputs: { v: 'one', only1: 'a' }, ms: 5 },
      'test (2)': { outputs: { v: 'two', only1: '' }, ms: 60 },
      'test (3)': { outputs: { v: 'three' }, ms: 30 },
      'test (4)': { outputs: {}, ms: 90 },
    });
    await runJobGraph(plannedJobsOf(matrixWorkflow(false)), f.runJob, opts());
    expect(f.needsSeen.report).toEqual({ test: { result: 'success', outputs: { v: 'two', only1: 'a' } } });
  });

  it('an instance with continue-on-error fails without triggering fail-fast or failing dependents', async () => {
    const wf = workflowFromYaml(`
jobs:
  test:
    continue-on-error: \${{ matrix.experimental }}
    strategy:
      matrix:
        v: [stable]
        experimental: [false]
        include:
          - v: nightly
            experimental: true
  deploy:
    needs: test
`);
    const f = fakeRunner({ 'test (nightly, true)': { conclusion: 'failure', ms: 5 }, 'test (stable, false)': { ms: 50 } });
    const results = await runJobGraph(plannedJobsOf(wf), f.runJob, opts());
    expect(conclusions(results)).toEqual({ 'test (stable, false)': 'success', 'test (nightly, true)': 'failure', deploy: 'success' });
    expect(failureIsAllowed(results.get('test (nightly, true)')!)).toBe(true);
    expect(f.needsSeen.deploy).toEqual({ test: { result: 'success', outputs: {} } });
    expect(runConclusion(results.values())).toBe('success');
  });
});

describe('jobs that cannot run because of an error', () => {
  it('conclude failure with the reason, not skipped, and their dependents are skipped', async () => {
    const defs = [jobDef({ id: 'a' }), jobDef({ id: 'b', needs: ['a'] })];
    const wf = workflowOf(defs);
    const plan: PlannedJob[] = [
      { instance: instanceOf(defs[0]!, wf), decision: { runs: false, failure: true, reason: "strategy.matrix: the matrix has 300 combinations; GitHub's limit is 256" } },
      planned(instanceOf(defs[1]!, wf)),
    ];
    const f = fakeRunner();
    const results = await runJobGraph(plan, f.runJob, opts());
    expect(results.get('a')).toMatchObject({ conclusion: 'failure', error: "strategy.matrix: the matrix has 300 combinations; GitHub's limit is 256" });
    expect(conclusions(results)).toEqual({ a: 'failure', b: 'skipped' });
    expect(runConclusion(results.values())).toBe('failure');
    expect(f.started).toEqual([]);
  });
  it('a matrix read from needs that turns out too large fails the job', async () => {
    const { workflow } = parseWorkflow(
      'ci.yml',
      `on: push\njobs:\n  setup:\n    runs-on: tiny\n    outputs: {list: x}\n    steps: [{run: x}]\n  test:\n    needs: setup\n    runs-on: tiny\n    strategy:\n      matrix:\n        v: \${{ fromJSON(needs.setup.outputs.list) }}\n    steps: [{run: x}]\n`,
    );
    const github = githubContext();
    const [plannedWorkflow] = planWorkflows({ name: 'push', ref: github.ref, sha: github.sha, payload: {} }, [workflow!], undefined, github);
    const f = fakeRunner({ setup: { outputs: { list: JSON.stringify(Array.from({ length: 257 }, (_, i) => i)) } } });
    const results = await runJobGraph(plannedWorkflow!.jobs, f.runJob, opts());
    expect(f.started).toEqual(['setup']);
    expect([...results.values()].map((r) => [r.conclusion, r.error])).toEqual([
      ['success', undefined],
      ['failure', "strategy.matrix: the matrix has 257 combinations; GitHub's limit is 256"],
    ]);
  });
});

describe('matrix from needs', () => {
  it('expands a matrix that reads needs once the needed job has finished', async () => {
    const { workflow, problems } = parseWorkflow(
      'ci.yml',
      `on: push
jobs:
  setup:
    runs-on: tiny
    outputs:
      versions: \${{ steps.s.outputs.versions }}
    steps:
      - id: s
        run: echo hi
  test:
    needs: setup
    runs-on: tiny
    strategy:
      matrix:
        v: \${{ fromJSON(needs.setup.outputs.versions) }}
    steps:
      - run: echo \${{ matrix.v }}
`,
    );
    expect(problems).toEqual([]);
    const github = githubContext();
    const [plannedWorkflow] = planWorkflows({ name: 'push', ref: github.ref, sha: github.sha, payload: {} }, [workflow!], undefined, github);
    const f = fakeRunner({ setup: { outputs: { versions: '[18, 20, 22]' } } });
    const results = await runJobGraph(plannedWorkflow!.jobs, f.runJob, opts());
    expect(conclusions(results)).toEqual({ setup: 'success', 'test (18)': 'success', 'test (20)': 'success', 'test (22)': 'success' });
  });
});

describe('cancellation and run conclusion', () => {
  it('cancelling the run aborts running jobs, cancels pending ones, and still runs always() jobs', async () => {
    const controller = new AbortController();
    const f = fakeRunner({ long: { ms: 5000 } });
    setTimeout(() => controller.abort(), 30);
    const results = await runJobGraph(
      plan([{ id: 'long' }, { id: 'next', needs: ['long'] }, { id: 'cleanup', needs: ['long'], if: 'always()' }]),
      f.runJob,
      opts({ signal: controller.signal }),
    );
    expect(conclusions(results)).toEqual({ long: 'cancelled', next: 'cancelled', cleanup: 'success' });
    expect(runConclusion(results.values())).toBe('cancelled');
  });

  it('rolls up failure, allowed failures and all-skipped runs', async () => {
    const results = await runJobGraph(plan([{ id: 'a' }, { id: 'b', continueOnError: true }]), fakeRunner({ b: { conclusion: 'failure' } }).runJob, opts());
    expect(runConclusion(results.values())).toBe('success');
    const failing = await runJobGraph(plan([{ id: 'a' }]), fakeRunner({ a: { conclusion: 'timed_out' } }).runJob, opts());
    expect(runConclusion(failing.values())).toBe('failure');
  });
});
