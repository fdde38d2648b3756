/**
 * The pieces the host run of workflows/actions needs that other branches are writing while these
 * fixtures are: the action loader the step executor takes as `actions` (runtime branch), and the
 * reusable-workflow resolver and the secrets of called jobs (workflow-lang branch). They are
 * imported by a path in a variable so this file type-checks before they land; until then each
 * call fails with a line naming what is missing, and so does every fixture. Once both are on
 * main, import them statically here.
 */
import { ActionFetcher } from '../../src/actions/fetch.ts';
import type { Guest } from '../../src/ssh/guest.ts';
import type { Workflow, WorkflowProblem } from '../../src/workflow/model.ts';

async function load(path: string, what: string): Promise<Record<string, unknown>> {
  try {
    return (await import(path)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${what} is not on this branch yet (${path}: ${(err as Error).message.split('\n')[0]})`);
  }
}

function member<T>(mod: Record<string, unknown>, name: string, path: string): T {
  if (mod[name] === undefined) throw new Error(`${path} has no export ${name}: the code these fixtures were written for has not landed`);
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
  const loaderPath = '../../src/job/action-loader.ts';
  const actionLoader = member<(o: unknown) => unknown>(await load(loaderPath, 'the action loader'), 'actionLoader', loaderPath);
  return actionLoader({
    guest: options.guest,
    workspace: options.workspace,
    actionsDir: options.actionsDir,
    fetcher: new ActionFetcher({ cacheRoot: options.cacheRoot, actionsUrl: options.actionsUrl }),
    node: async () => options.node,
    log: options.log,
  });
}

/** Parses a workflow and the workflows its jobs call (`jobs.<id>.uses: ./path.yml`) from this checkout. */
export async function parseWithCalls(path: string, text: string, repoRoot: string): Promise<{ workflow?: Workflow; problems: WorkflowProblem[] }> {
  const loadPath = '../../src/workflow/load.ts';
  const parsePath = '../../src/workflow/parse.ts';
  const loadModule = await load(loadPath, 'the workflow loader');
  const parseWorkflow = member<(p: string, t: string) => { workflow?: Workflow; problems: WorkflowProblem[] }>(await load(parsePath, 'the parser'), 'parseWorkflow', parsePath);
  const parseAndResolve = member<(files: unknown[], source: unknown) => Promise<{ workflows: Workflow[]; problems: WorkflowProblem[] }>>(
    loadModule,
    'parseAndResolve',
    loadPath,
  );
  const directorySource = member<(dir: string) => unknown>(loadModule, 'directorySource', loadPath);
  const loaded = await parseAndResolve([{ path, ...parseWorkflow(path, text) }], directorySource(repoRoot));
  return { ...(loaded.workflows[0] ? { workflow: loaded.workflows[0] } : {}), problems: loaded.problems };
}

/** The secrets context of a job: the run's (none here), or what the calls on its way pass down. */
export async function jobSecrets(instance: unknown, github: unknown): Promise<Record<string, string>> {
  const path = '../../src/workflow/call-secrets.ts';
  const secretsForJob = member<(i: unknown, run: Record<string, string>, r: { github: unknown }) => Record<string, string>>(
    await load(path, 'reusable-workflow secrets'),
    'secretsForJob',
    path,
  );
  return secretsForJob(instance, {}, { github });
}
