/**
 * The forge worker with the real parts plugged in: GitHub and Forgejo clients from the
 * configuration, the workflow planner and graph runner, and the VM engine.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.ts';
import { ForgejoClient } from '../forge/forgejo-client.ts';
import { GithubClients, type ForgeLogger } from '../forge/github-client.ts';
import type { Engine } from '../job/run-job.ts';
import { runPlannedJob } from '../job/run-planned-job.ts';
import { logForgeApiError, logJobState, type ForgeApiErrorLogLine, type Logger } from '../log/logger.ts';
import type { Store } from '../store/store.ts';
import { stateDir } from '../vm/state-dir.ts';
import { sweepOrphans } from '../vm/sweep.ts';
import { runJobGraph } from '../workflow/graph.ts';
import { loadWorkflows } from '../workflow/load.ts';
import { planWorkflows } from '../workflow/planner.ts';
import { forgejoAccess, githubAccess } from './forge-access.ts';
import { RunnerLimits } from './limits.ts';
import { Worker, type ExecuteJob } from './worker.ts';

export interface StartWorkerOptions {
  config: Config;
  store: Store;
  logger: Logger;
  engine: Engine;
  progressIntervalMs?: number;
  pollIntervalMs?: number;
}

export function engineExecutor(engine: Engine, config: Config): ExecuteJob {
  return (request) =>
    runPlannedJob(engine, {
      // Store ids are unique per state folder; the suffix keeps a re-run's folder distinct.
      id: `j${request.jobId}-${randomBytes(2).toString('hex')}`,
      job: request.job,
      needs: request.needs,
      github: request.github,
      workspace: request.workspace,
      repoName: request.repoName,
      log: request.log,
      signal: request.signal,
      defaultTimeoutMinutes: config.defaultTimeoutMinutes,
      onVmStarted: request.onVmStarted,
    });
}

export async function startWorker(options: StartWorkerOptions): Promise<Worker> {
  const { config, store, logger, engine } = options;
  const log: ForgeLogger = {
    info: (m) => logger.info(m),
    warn: (m) => logger.warn(m),
    error: (m) => logger.error(m),
    debug: (m) => logger.debug(m),
  };
  const onApiError = (line: ForgeApiErrorLogLine) => logForgeApiError(logger, line);
  const dirs = stateDir(config.stateDir);
  // Aborted by worker.stop() after a short grace: no forge call, retry or rate-limit wait outlives a shutdown.
  const forgeCalls = new AbortController();
  const signal = forgeCalls.signal;
  const worker = new Worker({
    store,
    forges: {
      ...(config.github
        ? { github: githubAccess(new GithubClients({ appId: config.github.appId, privateKey: config.github.privateKey, apiUrl: config.github.apiUrl, log, onApiError, signal })) }
        : {}),
      ...(config.forgejo
        ? { forgejo: forgejoAccess(new ForgejoClient({ apiUrl: config.forgejo.apiUrl, token: config.forgejo.token, log, onApiError, signal }), config.forgejo.url) }
        : {}),
    },
    loadWorkflows,
    plan: planWorkflows,
    runGraph: runJobGraph,
    executeJob: engineExecutor(engine, config),
    reapVms: async () => {
      await sweepOrphans(engine.jobsRoot);
    },
    limits: new RunnerLimits(config.concurrency.maxJobs, config.concurrency.perLabel),
    workflowDirs: config.workflowDirs,
    logsDir: dirs.logs,
    cacheRoot: dirs.repos,
    logCapBytes: config.logCapBytes,
    log,
    events: { onJobState: (line) => logJobState(logger, line) },
    progressIntervalMs: options.progressIntervalMs,
    pollIntervalMs: options.pollIntervalMs,
    maxDeliveries: config.concurrency.deliveries,
    retryPolicy: {
      baseMs: config.deliveryRetry.baseSeconds * 1000,
      maxMs: config.deliveryRetry.maxSeconds * 1000,
      giveUpMs: config.deliveryRetry.giveUpHours * 3_600_000,
    },
    forgeCalls,
  });
  await worker.start();
  return worker;
}
