/**
 * One forgevm job through the real engine (runJob) and step executor (runSteps), from a
 * workflow written as YAML, with the engine's phase timings and the moment the first byte of
 * step output reached the job log.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { JobLog } from '../../src/log/job-log.ts';
import type { JobResult } from '../../src/job/result.ts';
import { runJob, type Engine } from '../../src/job/run-job.ts';
import type { JobInstance } from '../../src/workflow/model.ts';
import { jobFromYaml, stepsOf } from '../../test/support/job-fixture.ts';

export interface TimedJob {
  result: JobResult;
  /** ms from the call to runJob ("job accepted") to each engine phase. */
  phases: Record<string, number>;
  /** ms from "job accepted" to the first step output byte in the log; undefined if none came. */
  firstOutputMs?: number;
  /** ms from "job accepted" to runJob returning (teardown included). */
  totalMs: number;
  logBytes: number;
}

export interface JobSpec {
  engine: Engine;
  repo: { dir: string; sha: string };
  logsDir: string;
  /** The step's `run:` text. */
  run: string;
  logCapBytes?: number;
  /** Called when the first step output arrives (e.g. to start a clock for a stream). */
  onFirstOutput?: () => void;
}

/** A one-step `tiny` job running `run`, built as the engine tests build theirs. */
export function jobInstance(run: string): JobInstance {
  return jobFromYaml(`jobs:\n  bench:\n    runs-on: tiny\n    steps:\n      - run: ${JSON.stringify(run)}\n`);
}

export async function runTimedJob(spec: JobSpec): Promise<TimedJob> {
  const id = `bench-${randomBytes(4).toString('hex')}`;
  const instance = jobInstance(spec.run);
  const log = new JobLog(join(spec.logsDir, `${id}.log`), spec.logCapBytes ?? 100 * 1024 ** 2);
  const phases: Record<string, number> = {};
  let firstOutputMs: number | undefined;
  const accepted = performance.now();
  const detach = log.onData((_chunk, channel) => {
    if (channel === 'stdout' && firstOutputMs === undefined) {
      firstOutputMs = performance.now() - accepted;
      spec.onFirstOutput?.();
    }
  });
  try {
    const result = await runJob(spec.engine, {
      id,
      label: instance.runsOn,
      workspace: { repoDir: spec.repo.dir, sha: spec.repo.sha, branch: 'main' },
      repoName: 'repo',
      log,
      onPhase: (name) => (phases[name] = performance.now() - accepted),
      runSteps: stepsOf(instance, spec.repo.sha),
    });
    return { result, phases, firstOutputMs, totalMs: performance.now() - accepted, logBytes: log.size };
  } finally {
    detach();
    log.close();
  }
}
