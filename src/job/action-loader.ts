/**
 * The step executor's ActionRuntime for a job in a guest:
 *
 * - `owner/repo[/path]@ref` and full-URL references: fetched on the host by the ActionFetcher
 *   (cached by commit), manifest read on the host, the repository tree copied into the guest
 *   once per job under `<temp>/_actions/<host>/<owner>/<repo>/<sha>`.
 * - `./path`: action.yml read from the workspace in the guest when the step runs (the
 *   repository's own files, as earlier steps left them).
 * - Node for JavaScript actions and the services' environment come from the job's layout.
 */
import { posix } from 'node:path';
import type { ActionFetcher, ForgeGitCredential } from '../actions/fetch.ts';
import { actionTarStream } from '../actions/fetch.ts';
import { parseActionManifest, readActionManifest, type ManifestResult } from '../actions/manifest.ts';
import { parseActionRef, type RemoteActionRef } from '../actions/reference.ts';
import type { Guest } from '../ssh/guest.ts';
import { settleAll } from '../util/settle-all.ts';
import type { ActionRuntime, LoadedAction } from './action-runtime.ts';

export interface ActionLoaderOptions {
  guest: Guest;
  /** Guest path of the workspace: local actions are relative to it. */
  workspace: string;
  /** Guest folder remote actions are copied into. */
  actionsDir: string;
  /** Fetches remote actions on the host; absent when the runner has no action cache. */
  fetcher?: ActionFetcher;
  /** The run's forge and its token, for actions hosted on that forge. */
  forge?: ForgeGitCredential;
  node: () => Promise<string>;
  serviceEnv?: () => Record<string, string>;
  /** A line for the job log. */
  log?: (line: string) => void;
}

/** Problems of an action.yml as one line: the first problem, and how many more there are. */
function manifestError(what: string, result: ManifestResult): Error {
  const [first, ...rest] = result.problems;
  const where = first ? `${first.file}:${first.line}:${first.column}: ${first.message}` : 'unreadable';
  return new Error(`${what}: invalid action metadata: ${where}${rest.length ? ` (and ${rest.length} more problem${rest.length === 1 ? '' : 's'})` : ''}`);
}

export function actionLoader(options: ActionLoaderOptions): ActionRuntime {
  const { guest } = options;
  /** Guest copies of fetched repositories, by host/owner/repo/sha: one upload per job. */
  const uploads = new Map<string, Promise<string>>();

  const upload = (key: string, fetched: Awaited<ReturnType<ActionFetcher['fetch']>>): Promise<string> => {
    let pending = uploads.get(key);
    if (!pending) {
      const dir = posix.join(options.actionsDir, key);
      pending = (async () => {
        const tar = actionTarStream(fetched);
        const copied = await settleAll([
          guest.extractTar(tar.stream, dir).catch((error: unknown) => {
            tar.stop();
            throw error;
          }),
          tar.done,
        ]);
        if (copied.error) throw copied.error;
        return dir;
      })();
      pending.catch(() => uploads.delete(key));
      uploads.set(key, pending);
    }
    return pending;
  };

  const loadRemote = async (ref: RemoteActionRef, signal: AbortSignal): Promise<LoadedAction> => {
    if (!options.fetcher) throw new Error(`cannot fetch ${ref.uses}: this runner has no action cache configured`);
    const fetched = await options.fetcher.fetch(ref, { ...(options.forge ? { forge: options.forge } : {}), signal });
    const manifest = await readActionManifest(fetched.actionDir, { displayDir: ref.uses, root: fetched.treeDir });
    if (!manifest.manifest) throw manifestError(ref.uses, manifest);
    const host = new URL(options.fetcher.source(ref, options.forge).serverUrl).host;
    const root = await upload(posix.join(host, ref.owner, ref.repo, fetched.sha), fetched);
    options.log?.(`forgevm: ${ref.uses} is ${ref.owner}/${ref.repo}@${fetched.sha.slice(0, 12)}${fetched.cached ? ' (cached)' : ''}`);
    return {
      dir: fetched.actionPath === '' ? root : posix.join(root, fetched.actionPath),
      definition: manifest.manifest,
      repository: `${ref.owner}/${ref.repo}`,
      ref: ref.ref,
    };
  };

  const loadLocal = async (path: string, uses: string): Promise<LoadedAction> => {
    const dir = path === '' ? options.workspace : posix.join(options.workspace, path);
    for (const name of ['action.yml', 'action.yaml']) {
      let text: string;
      try {
        text = (await guest.readFile(posix.join(dir, name))).toString('utf8');
      } catch (error) {
        // Only a missing file means "try the other name": a broken channel must not read as absent.
        if (/no such file|ENOENT|not a directory/i.test((error as Error).message)) continue;
        throw new Error(`${uses}: cannot read ${name} in the guest: ${(error as Error).message}`);
      }
      const result = parseActionManifest(posix.join(path || '.', name), text, uses);
      if (!result.manifest) throw manifestError(uses, result);
      return { dir, definition: result.manifest };
    }
    const hasDockerfile = (await guest.exec(['test', '-f', posix.join(dir, 'Dockerfile')])).code === 0;
    if (hasDockerfile) throw new Error(`${uses} is a Docker container action (a Dockerfile and no action.yml), which forgevm does not run`);
    throw new Error(`${uses}: no action.yml or action.yaml in ${dir}; check the path, and that actions/checkout ran before this step`);
  };

  return {
    async load(uses, signal) {
      const parsed = parseActionRef(uses);
      if (!parsed.ok) throw new Error(parsed.error);
      const { ref } = parsed;
      if (ref.kind === 'docker') throw new Error(`${uses}: Docker container actions are not supported (jobs run in VMs without Docker); run the tool in a run: step`);
      return ref.kind === 'local' ? loadLocal(ref.path, uses) : loadRemote(ref, signal);
    },
    node: () => options.node(),
    serviceEnv: () => options.serviceEnv?.() ?? {},
  };
}
