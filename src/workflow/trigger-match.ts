/**
 * Does an event start a workflow? Returns undefined when it does, or the reason it does not,
 * phrased for people ("branch "release/1" not in branches [main]").
 */
import { firstMatchingPattern, matchesFilter } from './filters.ts';
import type { Triggers } from './model.ts';
import { DEFAULT_PULL_REQUEST_TYPES } from './parse-triggers.ts';

export interface TriggerEvent {
  name: string;
  action?: string;
  ref: string;
  baseRef?: string;
  deleted?: boolean;
  headCommitMessage?: string;
}

/** GitHub's markers; any of them in the head commit message skips push and pull_request runs. */
export const SKIP_MARKERS = ['[skip ci]', '[ci skip]', '[no ci]', '[skip actions]', '[actions skip]'];

const list = (patterns: string[]) => `[${patterns.join(', ')}]`;

/** `synchronized` is Forgejo's and Gitea's spelling of GitHub's `synchronize`. */
export function normalizeAction(action: string | undefined): string | undefined {
  return action === 'synchronized' ? 'synchronize' : action;
}

export function triggerMismatch(on: Triggers, event: TriggerEvent, changedFiles: string[] | undefined): string | undefined {
  switch (event.name) {
    case 'push':
      return pushMismatch(on, event, changedFiles);
    case 'pull_request':
      return pullRequestMismatch(on, event, changedFiles);
    case 'workflow_dispatch':
      return on.workflowDispatch ? undefined : 'on: does not include workflow_dispatch';
    default:
      return `forgevm does not start workflows on "${event.name}" events`;
  }
}

/** The skip marker found in the head commit message, for push and pull_request events. */
export function skipMarkerIn(event: TriggerEvent): string | undefined {
  if (event.name !== 'push' && event.name !== 'pull_request') return undefined;
  const message = (event.headCommitMessage ?? '').toLowerCase();
  return SKIP_MARKERS.find((marker) => message.includes(marker));
}

function pushMismatch(on: Triggers, event: TriggerEvent, changedFiles: string[] | undefined): string | undefined {
  const push = on.push;
  if (!push) return 'on: does not include push';
  if (event.deleted) return 'a branch or tag deletion does not trigger push workflows';
  const branch = /^refs\/heads\/(.+)$/.exec(event.ref)?.[1];
  const tag = /^refs\/tags\/(.+)$/.exec(event.ref)?.[1];
  const branchFilter = push.branches !== undefined || push.branchesIgnore !== undefined;
  const tagFilter = push.tags !== undefined || push.tagsIgnore !== undefined;
  if (tag !== undefined) {
    // Only branch filters: tags never match. Path filters are not evaluated for tag pushes.
    if (branchFilter && !tagFilter) return `tag "${tag}" pushed, but on.push only filters branches`;
    return refMismatch('tag', tag, push.tags, push.tagsIgnore, 'tags');
  }
  if (branch === undefined) return `ref "${event.ref}" is neither a branch nor a tag`;
  if (tagFilter && !branchFilter) return `branch "${branch}" pushed, but on.push only filters tags`;
  return refMismatch('branch', branch, push.branches, push.branchesIgnore, 'branches') ?? pathMismatch(push, changedFiles);
}

function pullRequestMismatch(on: Triggers, event: TriggerEvent, changedFiles: string[] | undefined): string | undefined {
  const pr = on.pullRequest;
  if (!pr) return 'on: does not include pull_request';
  const action = normalizeAction(event.action) ?? 'opened';
  const types = (pr.types.length > 0 ? pr.types : DEFAULT_PULL_REQUEST_TYPES).map((t) => normalizeAction(t)!);
  if (!types.includes(action)) return `pull_request action "${action}" not in types ${list(types)}`;
  // Branch filters of pull_request apply to the base branch (the one the PR merges into).
  const base = (event.baseRef ?? '').replace(/^refs\/heads\//, '');
  return refMismatch('base branch', base, pr.branches, pr.branchesIgnore, 'branches') ?? pathMismatch(pr, changedFiles);
}

function refMismatch(
  what: string,
  name: string,
  include: string[] | undefined,
  ignore: string[] | undefined,
  key: string,
): string | undefined {
  if (include !== undefined && !matchesFilter(include, name)) return `${what} "${name}" not in ${key} ${list(include)}`;
  if (ignore !== undefined && matchesFilter(ignore, name)) {
    return `${what} "${name}" matched ${key}-ignore "${firstMatchingPattern(ignore, name) ?? list(ignore)}"`;
  }
  return undefined;
}

/**
 * `paths`: at least one changed file must match. `paths-ignore`: skipped when every changed file
 * matches. Unknown changes (undefined) pass, as GitHub runs when it cannot compute a diff. An
 * empty change list matches no `paths` filter and is not skipped by `paths-ignore`.
 */
function pathMismatch(filters: { paths?: string[]; pathsIgnore?: string[] }, changedFiles: string[] | undefined): string | undefined {
  if (changedFiles === undefined) return undefined;
  if (filters.paths !== undefined && !changedFiles.some((f) => matchesFilter(filters.paths!, f))) {
    return changedFiles.length === 0
      ? `no files changed, so none matched paths ${list(filters.paths)}`
      : `no changed file matched paths ${list(filters.paths)}`;
  }
  const ignore = filters.pathsIgnore;
  if (ignore !== undefined && changedFiles.length > 0 && changedFiles.every((f) => matchesFilter(ignore, f))) {
    const used = [...new Set(changedFiles.map((f) => firstMatchingPattern(ignore, f)).filter((p) => p !== undefined))];
    return `paths-ignore ${used.map((p) => `"${p}"`).join(', ')} matched every changed file`;
  }
  return undefined;
}
