/**
 * A planned workflow job, run in a VM: the engine's lifecycle (run-job.ts) with the workflow
 * step executor (steps.ts) as its "run" step. The CLI and the forge worker both come here.
 */
import type { JobLog } from '../log/job-log.ts';
import type { GithubContext, NeedsEntry, PlannedJob } from '../workflow/model.ts';
import type { JobResult } from './result.ts';
import { runJob, type Engine } from './run-job.ts';
import { runSteps } from './steps.ts';
import type { WorkspaceSource } from './workspace.ts';

export interface PlannedJobRequest {
  /** Short unique id: job folder, guest hostname, log names. */
  id: string;
  job: PlannedJob;
  needs: Record<string, NeedsEntry>;
  github: GithubContext;
  inputs?: Record<string, unknown>;
  vars?: Record<string, string>;
  workspace: WorkspaceSource;
  repoName: string;
  log: JobLog;
  signal: AbortSignal;
  defaultTimeoutMinutes: number;
  onVmStarted?: () => void;
  /** The boot console, live, until SSH is up (see JobRequest.onConsole). */
  onConsole?: (chunk: Buffer) => void;
}

export function runPlannedJob(engine: Engine, request: PlannedJobRequest): Promise<JobResult> {
  const { instance } = request.job;
  return runJob(engine, {
    id: request.id,
    label: instance.runsOn,
    workspace: request.workspace,
    repoName: request.repoName,
    log: request.log,
    signal: request.signal,
    onVmStarted: request.onVmStarted,
    onConsole: request.onConsole,
    runSteps: (guest, log, layout, signal) =>
      runSteps(
        guest,
        log,
        {
          instance,
          github: { ...request.github, job: instance.job.id },
          needs: request.needs,
          // A called workflow's jobs see its inputs, not the run's.
          inputs: instance.inputs ?? request.inputs ?? {},
          vars: request.vars ?? {},
          workspace: layout.workspace,
          tempDir: layout.tempDir,
          defaultTimeoutMinutes: request.defaultTimeoutMinutes,
        },
        signal,
      ),
  });
}
