/**
 * The forge worker with the real parts plugged in: GitHub and Forgejo clients from the
 * configuration, the workflow planner and graph runner, and the VM engine.
 */
import { randomBytes } from 'node:crypto';
import { ActionFetcher } from '../actions/fetch.ts';
import type { Config } from '../config/config.ts';
import { ForgejoClient } from '../forge/forgejo-client.ts';
import { GithubClients, type ForgeLogger } from '../forge/github-client.ts';
import type { Engine } from '../job/run-job.ts';
import { runPlannedJob } from '../job/run-planned-job.ts';
import { logForgeApiError, logJobState, type ForgeApiErrorLogLine, type Logger } from '../log/logger.ts';
import type { Store } from '../store/store.ts';
import { secretsForRun } from '../secrets/run-secrets.ts';
import { openSecretStore } from '../secrets/store.ts';
import type { RunnerServices } from '../services/runner-services.ts';
import { openConfiguredServices } from '../services/from-config.ts';
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

/** What jobs share across the process: the action cache and the cache/artifact services. */
export interface JobResources {
  fetcher: ActionFetcher;
  services: RunnerServices;
}

export function engineExecutor(engine: Engine, config: Config, resources: JobResources): ExecuteJob {
  return async (request) => {
    const services = resources.services.openJob(request.identity);
    try {
      const result = await runPlannedJob(engine, {
        // Store ids are unique per state folder; the suffix keeps a re-run's folder distinct.
        id: `j${request.jobId}-${randomBytes(2).toString('hex')}`,
        job: request.job,
        needs: request.needs,
        github: request.github,
        secrets: request.secrets,
        actions: { fetcher: resources.fetcher, forge: request.forge },
        services,
        workspace: request.workspace,
        repoName: request.repoName,
        log: request.log,
        signal: request.signal,
        defaultTimeoutMinutes: config.defaultTimeoutMinutes,
        onVmStarted: request.onVmStarted,
      });
      const artifacts = await services.artifacts().catch(() => []);
      return artifacts.length > 0 ? { ...result, artifacts: artifacts.map((a) => ({ name: a.name, size: a.size })) } : result;
    } finally {
      await services.close();
    }
  };
}

/** Opens what jobs share; `close` ends it. Services and fetched actions are pruned at start and every 6 hours. */
export async function openJobResources(config: Config, log: Logger): Promise<JobResources & { close(): Promise<void> }> {
  const dirs = stateDir(config.stateDir);
  const fetcher = new ActionFetcher({ cacheRoot: dirs.actions, actionsUrl: config.actions.url });
  const services = await openConfiguredServices(config, log);
  const pruneActions = async () => {
    if (config.actions.unusedDays === 0) return;
    const { trees, repositories } = await fetcher.prune(new Date(Date.now() - config.actions.unusedDays * 86_400_000));
    if (trees + repositories > 0) log.info(`deleted ${trees} fetched action trees (and ${repositories} repository caches) no job used for ${config.actions.unusedDays} days`);
  };
  const prune = () =>
    Promise.all([
      services.prune().catch((error: unknown) => log.warn(`pruning the cache and artifacts failed: ${(error as Error).message}`)),
      pruneActions().catch((error: unknown) => log.warn(`pruning fetched actions in ${dirs.actions} failed: ${(error as Error).message}`)),
    ]);
  void prune();
  const timer = setInterval(prune, 6 * 3_600_000);
  timer.unref();
  return {
    fetcher,
    services,
    close: async () => {
      clearInterval(timer);
      await services.close();
    },
  };
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
  const resources = await openJobResources(config, logger);
  const secrets = openSecretStore(config);
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
    executeJob: engineExecutor(engine, config, resources),
    secretsFor: (event) => secretsForRun(secrets, event),
    onStopped: async () => {
      await resources.close();
      secrets.close();
    },
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
