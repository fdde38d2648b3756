/**
 * Fakes for the worker's injected dependencies: a planner that runs every job of a pushed /
 * PR workflow (jobs with `if:` are skipped with a reason), a sequential graph runner, and an
 * engine that writes a log and returns a scripted result per job id.
 */
import { join } from 'node:path';
import type { ExecuteJob, ExecuteJobRequest, GraphRunner, PlanFn, WorkerOptions } from '../../src/scheduler/worker.ts';
import { RunnerLimits } from '../../src/scheduler/limits.ts';
import type { Store } from '../../src/store/store.ts';
import { loadWorkflows } from '../../src/workflow/load.ts';
import type { JobResult, StepResult } from '../../src/job/result.ts';
import type { PlannedWorkflow } from '../../src/workflow/model.ts';

export const fakePlan: PlanFn = (event, workflows) =>
  workflows.map(
    (workflow): PlannedWorkflow => ({
      workflow,
      ...(event.name === 'push' && !workflow.on.push ? { skipped: 'not triggered by push' } : {}),
      ...(event.name === 'pull_request' && !workflow.on.pullRequest ? { skipped: 'not triggered by pull_request' } : {}),
      jobs: workflow.jobs.map((job) => ({
        instance: {
          workflow,
          job,
          key: job.id,
          displayName: job.name ?? job.id,
          matrix: {},
          strategy: { failFast: true, jobIndex: 0, jobTotal: 1 },
          runsOn: job.runsOn,
        },
        decision: job.if ? { runs: false, reason: `if: ${job.if} was false` } : { runs: true },
      })),
    }),
  );

export const sequentialGraph: GraphRunner = async (plan, runJob, opts) => {
  const results = new Map<string, JobResult>();
  for (const pj of plan) {
    if (!pj.decision.runs) {
      results.set(pj.instance.key, { conclusion: 'skipped', steps: [], outputs: {}, logPath: '', startedAt: new Date().toISOString(), durationMs: 0 });
      continue;
    }
    results.set(pj.instance.key, await runJob(pj, {}, opts.signal ?? new AbortController().signal));
  }
  return results;
};

export interface ScriptedStep {
  name: string;
  output: string;
  exitCode: number;
}

/** Engine fake: runs the scripted steps for a job id by writing their output to the job log. */
export class FakeEngine {
  readonly calls: ExecuteJobRequest[] = [];
  /** Delay before the steps start (lets live-tail updates happen). */
  stepDelayMs = 0;
  /** When set, executeJob waits for it (to freeze a job mid-run). */
  hold?: Promise<void>;

  constructor(private readonly scripts: Record<string, ScriptedStep[]>) {}

  execute: ExecuteJob = async (request) => {
    this.calls.push(request);
    const started = Date.now();
    request.onVmStarted();
    if (this.hold) await this.hold;
    const steps: StepResult[] = [];
    for (const step of this.scripts[request.job.instance.job.id] ?? [{ name: 'noop', output: 'ok\n', exitCode: 0 }]) {
      const start = request.log.size;
      request.log.write(step.output);
      if (this.stepDelayMs) await new Promise((r) => setTimeout(r, this.stepDelayMs));
      const ok = step.exitCode === 0;
      steps.push({ name: step.name, outcome: ok ? 'success' : 'failure', conclusion: ok ? 'success' : 'failure', exitCode: step.exitCode, startedAt: new Date().toISOString(), durationMs: 1000, log: { start, end: request.log.size } });
      if (!ok) break;
    }
    const failed = steps.some((s) => s.conclusion === 'failure');
    return { conclusion: failed ? 'failure' : 'success', steps, outputs: {}, logPath: request.log.path, startedAt: new Date(started).toISOString(), durationMs: Date.now() - started };
  };
}

/**
 * Worker options for a test: the store, the forges and the engine it needs, everything else a
 * quiet default (fake planner and graph runner, 2 VMs, logs and caches under `stateDir`).
 */
export function testWorkerOptions(
  base: { store: Store; stateDir: string; forges: WorkerOptions['forges']; executeJob: ExecuteJob },
  over: Partial<WorkerOptions> = {},
): WorkerOptions {
  const { stateDir, ...given } = base;
  return {
    loadWorkflows,
    plan: fakePlan,
    runGraph: sequentialGraph,
    reapVms: async () => {},
    limits: new RunnerLimits(2),
    workflowDirs: ['.forgevm/workflows'],
    logsDir: stateDir,
    cacheRoot: join(stateDir, 'repos'),
    logCapBytes: 10_000_000,
    log: { info() {}, warn() {}, error() {} },
    pollIntervalMs: 20,
    ...given,
    ...over,
  };
}
