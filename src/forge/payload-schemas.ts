/**
 * zod schemas for the payload fields forgevm reads. Objects are not strict: payloads carry
 * hundreds of other fields, and forges add more over time. Only what we use is checked.
 */
import { z } from 'zod';

export const sha = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'must be a 40- or 64-hex commit SHA');

const login = z.object({ login: z.string().min(1) });

/** A repository as GitHub and Forgejo both send it (Forgejo's owner may have `username` only). */
export const repositorySchema = z.object({
  id: z.number().optional(),
  name: z.string().min(1),
  full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be "owner/name"'),
  owner: z.object({ login: z.string().optional(), username: z.string().optional(), name: z.string().nullish() }).optional(),
  clone_url: z.string().min(1),
  html_url: z.string().optional(),
  default_branch: z.string().optional(),
  private: z.boolean().optional(),
});

export const installationRefSchema = z.object({ id: z.number().int() }).nullish();

export const pushSchema = z.object({
  ref: z.string().min(1),
  before: z.string(),
  after: z.string(),
  created: z.boolean().optional(),
  deleted: z.boolean().optional(),
  forced: z.boolean().optional(),
  commits: z
    .array(
      z.object({
        added: z.array(z.string()).nullish(),
        removed: z.array(z.string()).nullish(),
        modified: z.array(z.string()).nullish(),
      }),
    )
    .nullish(),
  head_commit: z.object({ message: z.string().optional() }).nullish(),
  repository: repositorySchema,
  pusher: z.object({ name: z.string().optional(), login: z.string().optional(), username: z.string().optional() }).optional(),
  sender: z.object({ login: z.string().optional(), username: z.string().optional() }).optional(),
  installation: installationRefSchema,
});

const prBranch = z.object({
  ref: z.string().min(1),
  sha,
  /** Null when the head fork was deleted. */
  repo: z.object({ full_name: z.string().min(1), clone_url: z.string().min(1) }).nullish(),
});

export const pullRequestSchema = z.object({
  action: z.string(),
  number: z.number().int(),
  pull_request: z.object({
    title: z.string(),
    head: prBranch,
    base: prBranch,
    user: z.object({ login: z.string().optional(), username: z.string().optional() }),
    author_association: z.string().optional(),
  }),
  repository: repositorySchema,
  sender: z.object({ login: z.string().optional(), username: z.string().optional() }).optional(),
  installation: installationRefSchema,
});

export const checkRunSchema = z.object({
  action: z.string(),
  check_run: z.object({
    id: z.number().int(),
    external_id: z.string().nullish(),
    head_sha: sha,
    app: z.object({ id: z.number().int() }).nullish(),
  }),
  requested_action: z.object({ identifier: z.string() }).nullish(),
  repository: repositorySchema,
  sender: login.optional(),
  installation: installationRefSchema,
});

export const checkSuiteSchema = z.object({
  action: z.string(),
  check_suite: z.object({
    id: z.number().int(),
    head_sha: sha,
    head_branch: z.string().nullish(),
    app: z.object({ id: z.number().int() }).nullish(),
  }),
  repository: repositorySchema,
  sender: login.optional(),
  installation: installationRefSchema,
});

const repoNames = z.array(z.object({ full_name: z.string().min(1) })).nullish();

export const installationSchema = z.object({
  action: z.string(),
  installation: z.object({
    id: z.number().int(),
    account: z.object({ login: z.string().min(1) }),
    repository_selection: z.enum(['all', 'selected']).optional(),
  }),
  repositories: repoNames,
});

export const installationRepositoriesSchema = z.object({
  action: z.enum(['added', 'removed']),
  installation: z.object({
    id: z.number().int(),
    account: z.object({ login: z.string().min(1) }),
  }),
  repository_selection: z.enum(['all', 'selected']),
  repositories_added: repoNames,
  repositories_removed: repoNames,
});

/** `invalid push payload: repository.full_name: must be "owner/name"` — first problem only. */
export function describeZodError(what: string, error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return `invalid ${what} payload`;
  const path = issue.path.map(String).join('.') || '(top level)';
  const message = issue.code === 'invalid_type' && issue.message.includes('received undefined') ? 'is missing' : issue.message;
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problems)` : '';
  return `invalid ${what} payload: ${path}: ${message}${more}`;
}
