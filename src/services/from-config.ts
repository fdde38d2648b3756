/** The cache and artifact services as the configuration sets them up (serve and `forgevm run`). */
import type { Config } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { stateDir } from '../vm/state-dir.ts';
import { RunnerServices } from './runner-services.ts';

export function openConfiguredServices(config: Config, log?: Logger): Promise<RunnerServices> {
  return RunnerServices.open({
    dir: stateDir(config.stateDir).services,
    cacheMaxBytes: config.cache.maxBytes,
    cacheUnusedDays: config.cache.unusedDays,
    artifactRetentionDays: config.artifacts.retentionDays,
    artifactMaxBytes: config.artifacts.maxBytes,
    ...(log ? { log } : {}),
  });
}
