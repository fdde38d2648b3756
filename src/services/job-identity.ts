/**
 * Who a request to the host services comes from. The worker states it when it opens a job's
 * services; the guest never does (what it sends in tokens or request bodies is checked against
 * this, never trusted instead of it). Everything scoped (cache entries, artifacts) derives from it.
 */
import { createHash } from 'node:crypto';

export interface JobIdentity {
  forge: 'github' | 'forgejo' | 'local';
  /** `owner/name`. */
  repo: string;
  /** The workflow run (GITHUB_RUN_ID); artifacts are shared by the jobs of one run. */
  runId: string;
  /** GITHUB_RUN_ATTEMPT, from 1. */
  runAttempt: number;
  /** Unique within the run attempt: the job id plus its matrix values. */
  jobId: string;
  /** The run's ref (GITHUB_REF): `refs/heads/x`, `refs/tags/v1`, `refs/pull/12/merge`. */
  ref: string;
  /** Pull requests: the base branch's ref, `refs/heads/main`. */
  baseRef?: string;
  /** The repository's default branch, as a name (`main`) or a ref (`refs/heads/main`). */
  defaultBranch: string;
  /** A pull request from a fork: its cache is read-only (see README, "Cache and artifacts"). */
  fork: boolean;
}

/** Repository key for storage: forge and name, case-folded (forges treat names case-insensitively). */
export function repoKey(identity: Pick<JobIdentity, 'forge' | 'repo'>): string {
  return `${identity.forge}:${identity.repo.toLowerCase()}`;
}

/** Run key for storage: artifacts belong to a run, across its attempts. */
export function runKey(identity: Pick<JobIdentity, 'forge' | 'repo' | 'runId'>): string {
  return `${repoKey(identity)}#${identity.runId}`;
}

function branchRef(branch: string): string {
  return branch.startsWith('refs/') ? branch : `refs/heads/${branch}`;
}

/**
 * The cache scopes a job may restore from, in GitHub's order: its own ref, then (pull requests)
 * the base branch, then the default branch.
 */
export function cacheReadScopes(identity: JobIdentity): string[] {
  const scopes = [identity.ref];
  if (identity.baseRef) scopes.push(branchRef(identity.baseRef));
  scopes.push(branchRef(identity.defaultBranch));
  return [...new Set(scopes)];
}

/** The one scope a job saves into, its own ref, or none when its cache is read-only. */
export function cacheWriteScope(identity: JobIdentity): string | undefined {
  return identity.fork ? undefined : identity.ref;
}

/** An opaque id in UUID form, as GitHub's backend ids look (the artifact client only passes them back). */
function backendId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** `workflow_run_backend_id`: the run, whatever the attempt (a re-run sees the earlier attempts' artifacts). */
export function runBackendId(identity: JobIdentity): string {
  return backendId('run', runKey(identity));
}

/** `workflow_job_run_backend_id`: one job of one attempt. */
export function jobBackendId(identity: JobIdentity): string {
  return backendId('job', runKey(identity), String(identity.runAttempt), identity.jobId);
}
