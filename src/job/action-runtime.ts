/**
 * What the step executor needs to run `uses:` steps, as an interface: where an action comes from
 * (a folder in the guest, fetched and uploaded by the host for remote actions, read from the
 * workspace for local ones), Node.js in the guest for JavaScript actions, and the environment
 * that connects actions to forgevm's cache and artifact services. The executor (steps.ts) only
 * sees this; src/job/action-loader.ts implements it for real jobs.
 */
import type { ActionManifest } from '../actions/manifest.ts';

/** An action ready to run: its files are in the guest. */
export interface LoadedAction {
  /** Guest folder holding action.yml and the action's files. */
  dir: string;
  definition: ActionManifest;
  /** `owner/repo` and the ref as written, for remote actions (GITHUB_ACTION_REPOSITORY / _REF). */
  repository?: string;
  ref?: string;
}

export interface ActionRuntime {
  /**
   * Loads the action a step names. Remote actions are fetched on the host (cached by commit)
   * and copied into the guest once per job; local ones (`./path`) are read from the workspace
   * as it is when the step runs. Throws one actionable line when it cannot.
   */
  load(uses: string, signal: AbortSignal): Promise<LoadedAction>;
  /** Node.js in the guest (uploaded first if the image has none); its path. */
  node(signal: AbortSignal): Promise<string>;
  /** ACTIONS_* variables for JavaScript actions: the job's cache and artifact services. */
  serviceEnv(): Record<string, string>;
}

/** A runtime for guests where actions cannot run: every `uses:` fails with `why`. */
export function noActions(why: string): ActionRuntime {
  return {
    load: async (uses) => {
      throw new Error(`cannot run "uses: ${uses}": ${why}`);
    },
    node: async () => {
      throw new Error(`cannot run JavaScript actions: ${why}`);
    },
    serviceEnv: () => ({}),
  };
}
