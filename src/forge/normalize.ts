/**
 * Turns a verified, parsed webhook body into a ForgeEvent, or says why we do not act on it.
 * Pure functions: no I/O, so they are easy to test with real example payloads.
 */
import type { z } from 'zod';
import type { ForgeEvent, PullRequestAction, RepoRef } from './event-types.ts';
import {
  checkRunSchema,
  checkSuiteSchema,
  describeZodError,
  installationRepositoriesSchema,
  installationSchema,
  pullRequestSchema,
  pushSchema,
  repositorySchema,
} from './payload-schemas.ts';

export type Normalized =
  | { kind: 'event'; event: ForgeEvent; action: string | null; dedupeKey: string | null }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; message: string };

const ZERO_SHA = /^0+$/;

function repoRef(r: z.infer<typeof repositorySchema>): RepoRef {
  const [owner = '', name = r.name] = r.full_name.split('/');
  return {
    fullName: r.full_name,
    owner: r.owner?.login ?? r.owner?.username ?? owner,
    name,
    ...(r.id !== undefined && { id: r.id }),
    cloneUrl: r.clone_url,
    ...(r.html_url !== undefined && { htmlUrl: r.html_url }),
    ...(r.default_branch !== undefined && { defaultBranch: r.default_branch }),
    ...(r.private !== undefined && { private: r.private }),
  };
}

const who = (u: { login?: string; username?: string; name?: string } | undefined): string => u?.login ?? u?.username ?? u?.name ?? '';

function parse<S extends z.ZodType>(schema: S, what: string, payload: unknown): { ok: true; data: z.infer<S> } | { ok: false; result: Normalized } {
  const parsed = schema.safeParse(payload);
  if (parsed.success) return { ok: true, data: parsed.data };
  return { ok: false, result: { kind: 'invalid', message: describeZodError(what, parsed.error) } };
}

function normalizePush(forge: 'github' | 'forgejo', payload: unknown): Normalized {
  const p = parse(pushSchema, 'push', payload);
  if (!p.ok) return p.result;
  const d = p.data;
  if (d.deleted || ZERO_SHA.test(d.after)) return { kind: 'ignored', reason: `${d.ref} was deleted` };
  const changed = new Set<string>();
  for (const c of d.commits ?? []) for (const f of [...(c.added ?? []), ...(c.removed ?? []), ...(c.modified ?? [])]) changed.add(f);
  const event: ForgeEvent = {
    kind: 'push',
    forge,
    repo: repoRef(d.repository),
    ref: d.ref,
    before: d.before,
    sha: d.after,
    created: d.created ?? ZERO_SHA.test(d.before),
    forced: d.forced ?? false,
    changedFiles: [...changed],
    ...(d.head_commit?.message !== undefined && { headCommitMessage: d.head_commit.message }),
    actor: who(d.sender) || who(d.pusher),
    ...(d.installation && { installationId: d.installation.id }),
  };
  const dedupeKey = forge === 'forgejo' ? `forgejo:${d.repository.full_name.toLowerCase()}:push:${d.ref}:${d.after}` : null;
  return { kind: 'event', event, action: null, dedupeKey };
}

const prActions: Record<string, PullRequestAction> = {
  opened: 'opened',
  reopened: 'reopened',
  synchronize: 'synchronize',
  // Forgejo/Gitea spell "new commits pushed" this way.
  synchronized: 'synchronize',
};

function normalizePullRequest(forge: 'github' | 'forgejo', payload: unknown): Normalized {
  const p = parse(pullRequestSchema, 'pull_request', payload);
  if (!p.ok) return p.result;
  const d = p.data;
  const action = prActions[d.action];
  if (!action || (forge === 'github' && d.action === 'synchronized')) return { kind: 'ignored', reason: `pull_request action "${d.action}" starts no jobs` };
  const pr = d.pull_request;
  if (!pr.head.repo) return { kind: 'ignored', reason: `pull request #${d.number}: its head repository was deleted` };
  const base = d.repository.full_name;
  const event: ForgeEvent = {
    kind: 'pull_request',
    forge,
    action,
    repo: repoRef(d.repository),
    number: d.number,
    title: pr.title,
    headSha: pr.head.sha,
    headRef: pr.head.ref,
    headRepo: { fullName: pr.head.repo.full_name, cloneUrl: pr.head.repo.clone_url },
    baseRef: pr.base.ref,
    baseSha: pr.base.sha,
    isFork: pr.head.repo.full_name.toLowerCase() !== base.toLowerCase(),
    ...(pr.author_association !== undefined && { authorAssociation: pr.author_association }),
    author: who(pr.user),
    actor: who(d.sender) || who(pr.user),
    ...(d.installation && { installationId: d.installation.id }),
  };
  const dedupeKey = forge === 'forgejo' ? `forgejo:${base.toLowerCase()}:pull_request:${d.number}:${action}:${pr.head.sha}` : null;
  return { kind: 'event', event, action, dedupeKey };
}

/** GitHub deliveries. `appId` identifies our own check runs. */
export function normalizeGithub(eventName: string, payload: unknown, appId: number): Normalized {
  switch (eventName) {
    case 'push':
      return normalizePush('github', payload);
    case 'pull_request':
      return normalizePullRequest('github', payload);
    case 'check_run': {
      const p = parse(checkRunSchema, 'check_run', payload);
      if (!p.ok) return p.result;
      const d = p.data;
      if (d.check_run.app?.id !== appId) return { kind: 'ignored', reason: `check run ${d.check_run.id} belongs to another app` };
      if (d.action !== 'rerequested' && d.action !== 'requested_action') {
        // created/completed echo our own writes; acting on them would loop.
        return { kind: 'ignored', reason: `check_run action "${d.action}" on our own run` };
      }
      if (d.action === 'requested_action' && !d.requested_action) {
        return { kind: 'invalid', message: 'invalid check_run payload: requested_action: is missing' };
      }
      return {
        kind: 'event',
        action: d.action,
        dedupeKey: null,
        event: {
          kind: 'check_run',
          forge: 'github',
          action: d.action,
          repo: repoRef(d.repository),
          checkRunId: d.check_run.id,
          externalId: d.check_run.external_id || null,
          headSha: d.check_run.head_sha,
          ...(d.requested_action && { requestedActionId: d.requested_action.identifier }),
          actor: d.sender?.login ?? '',
          ...(d.installation && { installationId: d.installation.id }),
        },
      };
    }
    case 'check_suite': {
      const p = parse(checkSuiteSchema, 'check_suite', payload);
      if (!p.ok) return p.result;
      const d = p.data;
      if (d.action !== 'rerequested') return { kind: 'ignored', reason: `check_suite action "${d.action}" starts no jobs` };
      if (d.check_suite.app && d.check_suite.app.id !== appId) return { kind: 'ignored', reason: `check suite ${d.check_suite.id} belongs to another app` };
      return {
        kind: 'event',
        action: d.action,
        dedupeKey: null,
        event: {
          kind: 'check_suite',
          forge: 'github',
          action: 'rerequested',
          repo: repoRef(d.repository),
          checkSuiteId: d.check_suite.id,
          headSha: d.check_suite.head_sha,
          headBranch: d.check_suite.head_branch ?? null,
          actor: d.sender?.login ?? '',
          ...(d.installation && { installationId: d.installation.id }),
        },
      };
    }
    case 'installation': {
      const p = parse(installationSchema, 'installation', payload);
      if (!p.ok) return p.result;
      const d = p.data;
      const all = d.installation.repository_selection === 'all';
      return {
        kind: 'event',
        action: d.action,
        dedupeKey: null,
        event: {
          kind: 'installation',
          forge: 'github',
          action: d.action,
          installationId: d.installation.id,
          account: d.installation.account.login,
          repos: all ? null : (d.repositories ?? []).map((r) => r.full_name),
        },
      };
    }
    case 'installation_repositories': {
      const p = parse(installationRepositoriesSchema, 'installation_repositories', payload);
      if (!p.ok) return p.result;
      const d = p.data;
      return {
        kind: 'event',
        action: d.action,
        dedupeKey: null,
        event: {
          kind: 'installation_repositories',
          forge: 'github',
          action: d.action,
          installationId: d.installation.id,
          account: d.installation.account.login,
          added: (d.repositories_added ?? []).map((r) => r.full_name),
          removed: (d.repositories_removed ?? []).map((r) => r.full_name),
          selection: d.repository_selection,
        },
      };
    }
    default:
      return { kind: 'ignored', reason: `event "${eventName}" is not one forgevm acts on` };
  }
}

/** Forgejo and Gitea deliveries. */
export function normalizeForgejo(eventName: string, payload: unknown): Normalized {
  switch (eventName) {
    case 'push':
      return normalizePush('forgejo', payload);
    case 'pull_request':
      return normalizePullRequest('forgejo', payload);
    default:
      return { kind: 'ignored', reason: `event "${eventName}" is not one forgevm acts on` };
  }
}
