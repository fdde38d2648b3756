/**
 * The piece the host run of workflows/actions needs that another branch (runtime) is writing
 * while these fixtures are: the action loader the step executor takes as `actions`. It is
 * imported by a path in a variable so this file type-checks before it lands; until then the call
 * fails with a line naming what is missing, and so does every fixture. Once it is on main,
 * import it statically here.
 */
import { ActionFetcher } from '../../src/actions/fetch.ts';
import type { Guest } from '../../src/ssh/guest.ts';

/** An export of a module that may not exist yet on this branch; one clear line when it does not. */
async function pendingExport<T>(path: string, name: string): Promise<T> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(path)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path} is not on this branch yet (${(err as Error).message.split('\n')[0]}): the action runtime has not landed`);
  }
  if (mod[name] === undefined) throw new Error(`${path} has no export ${name}: the action runtime these fixtures were written for has not landed`);
  return mod[name] as T;
}

export interface ActionsRuntimeOptions {
  guest: Guest;
  workspace: string;
  /** Guest folder remote actions are copied into. */
  actionsDir: string;
  /** Host folder for the fetcher's cache. */
  cacheRoot: string;
  /** Where `owner/repo@ref` actions come from. */
  actionsUrl: string;
  /** Path of the Node.js that runs JavaScript actions. */
  node: string;
  /** A line for the job log. */
  log: (line: string) => void;
}

/** The `actions` member of runSteps' input: the real loader and fetcher. */
export async function actionsRuntime(options: ActionsRuntimeOptions): Promise<unknown> {
  const actionLoader = await pendingExport<(o: unknown) => unknown>('../../src/job/action-loader.ts', 'actionLoader');
  return actionLoader({
    guest: options.guest,
    workspace: options.workspace,
    actionsDir: options.actionsDir,
    fetcher: new ActionFetcher({ cacheRoot: options.cacheRoot, actionsUrl: options.actionsUrl }),
    node: async () => options.node,
    log: options.log,
  });
}
