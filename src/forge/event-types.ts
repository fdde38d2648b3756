/**
 * Webhook events after normalisation: the few fields forgevm acts on, the same shape for GitHub
 * and Forgejo/Gitea. The worker reads these from the store; the raw payload is kept beside them
 * (for `github.event` in expressions).
 */

export type Forge = 'github' | 'forgejo';

export interface RepoRef {
  /** `owner/name`. */
  fullName: string;
  owner: string;
  name: string;
  /** Forge's numeric repository id, when the payload has one. */
  id?: number;
  /** HTTPS clone URL. */
  cloneUrl: string;
  htmlUrl?: string;
  defaultBranch?: string;
  private?: boolean;
}

export interface PushEvent {
  kind: 'push';
  forge: Forge;
  repo: RepoRef;
  /** Full ref, e.g. `refs/heads/main` or `refs/tags/v1`. */
  ref: string;
  /** Commit SHA before the push (all zeros for a new ref). */
  before: string;
  /** Commit SHA the ref now points at. */
  sha: string;
  created: boolean;
  forced: boolean;
  /** Files added, modified or removed by the pushed commits (for `paths:` filters). */
  changedFiles: string[];
  headCommitMessage?: string;
  /** Login of whoever pushed. */
  actor: string;
  /** GitHub App installation id; absent for Forgejo. */
  installationId?: number;
}

export type PullRequestAction = 'opened' | 'synchronize' | 'reopened';

export interface PullRequestEvent {
  kind: 'pull_request';
  forge: Forge;
  action: PullRequestAction;
  /** The base repository (where checks are reported, also for fork PRs). */
  repo: RepoRef;
  number: number;
  title: string;
  headSha: string;
  /** Branch name in the head repository. */
  headRef: string;
  /** Full name and clone URL of the head repository (differs from `repo` for forks). */
  headRepo: { fullName: string; cloneUrl: string };
  baseRef: string;
  baseSha: string;
  /** True when head and base repositories differ. */
  isFork: boolean;
  /** GitHub's author_association (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE…); absent on Forgejo. */
  authorAssociation?: string;
  /** Login of the PR author. */
  author: string;
  actor: string;
  installationId?: number;
}

/** A click on a check run of ours: re-run, or one of our `actions` buttons. */
export interface CheckRunEvent {
  kind: 'check_run';
  forge: 'github';
  action: 'rerequested' | 'requested_action';
  repo: RepoRef;
  checkRunId: number;
  /** What we set as external_id when creating the run (our job's external id). */
  externalId: string | null;
  headSha: string;
  /** The `identifier` of the clicked button, for requested_action. */
  requestedActionId?: string;
  actor: string;
  installationId?: number;
}

/** "Re-run all checks" on a suite. */
export interface CheckSuiteEvent {
  kind: 'check_suite';
  forge: 'github';
  action: 'rerequested';
  repo: RepoRef;
  checkSuiteId: number;
  headSha: string;
  headBranch: string | null;
  actor: string;
  installationId?: number;
}

/** Installation changes are applied to the store during the request; kept here for the record. */
export interface InstallationEvent {
  kind: 'installation';
  forge: 'github';
  action: string;
  installationId: number;
  account: string;
  /** Full names; null when the installation covers all repositories of the account. */
  repos: string[] | null;
}

export interface InstallationRepositoriesEvent {
  kind: 'installation_repositories';
  forge: 'github';
  action: 'added' | 'removed';
  installationId: number;
  account: string;
  added: string[];
  removed: string[];
  /** `all` or `selected`. */
  selection: 'all' | 'selected';
}

export type ForgeEvent =
  | PushEvent
  | PullRequestEvent
  | CheckRunEvent
  | CheckSuiteEvent
  | InstallationEvent
  | InstallationRepositoriesEvent;
