/** What every command starts from: the configuration, and (for commands that boot VMs) the engine. */
import { ConfigError, loadConfig, type Config } from '../config/config.ts';
import type { Engine } from '../job/run-job.ts';
import { createEngine } from '../vm/engine.ts';

export interface GlobalOptions {
  config?: string;
}

export function cliConfig(options: GlobalOptions): Config {
  return loadConfig({ file: options.config, env: process.env });
}

export async function cliEngine(config: Config, quiet = false): Promise<Engine> {
  return createEngine({
    stateDir: config.stateDir,
    catalog: config.images,
    log: quiet ? undefined : (line) => process.stderr.write(`forgevm: ${line}\n`),
  });
}

/** A user-facing failure: print its message (one line per problem) and exit non-zero. */
export function reportFatal(error: unknown): never {
  if (error instanceof ConfigError) {
    for (const line of error.lines) process.stderr.write(`${line}\n`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`forgevm: ${message}\n`);
    if (process.env.FORGEVM_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  }
  process.exit(1);
}
