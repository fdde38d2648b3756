/**
 * A planned workflow job, run in a VM: the engine's lifecycle (run-job.ts) with the workflow
 * step executor (steps.ts) as its "run" step. The CLI and the forge worker both come here.
 */
import { posix } from 'node:path';
import type { ActionFetcher, ForgeGitCredential } from '../actions/fetch.ts';
import type { JobLog } from '../log/job-log.ts';
import type { GithubContext, NeedsEntry, PlannedJob } from '../workflow/model.ts';
import type { JobResult } from './result.ts';
import { runJob, type Engine, type GuestServices } from './run-job.ts';
import { runSteps } from './steps.ts';
import { checkoutFetchDepth } from './checkout-step.ts';
import { actionLoader } from './action-loader.ts';
import type { WorkspaceSource } from './workspace.ts';

export interface PlannedJobRequest {
  /** Short unique id: job folder, guest hostname, log names. */
  id: string;
  job: PlannedJob;
  needs: Record<string, NeedsEntry>;
  github: GithubContext;
  inputs?: Record<string, unknown>;
  vars?: Record<string, string>;
  /** The run's secrets (empty for runs that must not see them: fork pull requests). */
  secrets?: Record<string, string>;
  /** Where remote actions come from: the host's action cache, and the run's forge credential. */
  actions?: { fetcher: ActionFetcher; forge?: ForgeGitCredential };
  /** The job's cache and artifact services (src/services), reached through an SSH forward. */
  services?: GuestServices;
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
    historyDepth: checkoutFetchDepth(instance.job),
    repoName: request.repoName,
    log: request.log,
    signal: request.signal,
    onVmStarted: request.onVmStarted,
    onConsole: request.onConsole,
    ...(request.services ? { services: request.services } : {}),
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
          secrets: request.secrets ?? {},
          actions: actionLoader({
            guest,
            workspace: layout.workspace,
            actionsDir: posix.join(layout.tempDir, '_actions'),
            ...(request.actions ? { fetcher: request.actions.fetcher, ...(request.actions.forge ? { forge: request.actions.forge } : {}) } : {}),
            node: layout.node,
            serviceEnv: () => layout.servicesEnv,
            log: (line) => log.meta(line),
          }),
          workspace: layout.workspace,
          tempDir: layout.tempDir,
          defaultTimeoutMinutes: request.defaultTimeoutMinutes,
        },
        signal,
      ),
  });
}
