/** Real example payloads, signing and raw HTTP for the webhook receiver tests and the benchmark. */
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface ExampleEvent {
  name: string;
  examples: Array<Record<string, unknown>>;
}
const examples = require('@octokit/webhooks-examples/api.github.com/index.json') as ExampleEvent[];

/** A deep copy of GitHub's example payload for an event (and action), optionally picked by a predicate. */
export function githubExample(event: string, pick: (p: Record<string, unknown>) => boolean = () => true): Record<string, unknown> {
  const found = examples.find((e) => e.name === event)?.examples.find(pick);
  if (!found) throw new Error(`no @octokit/webhooks-examples payload for ${event}`);
  return structuredClone(found);
}

export const withAction = (action: string) => (p: Record<string, unknown>) => p.action === action;

export function githubSignature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function forgejoSignature(secret: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Headers of a signed GitHub delivery. */
export function githubHeaders(secret: string, event: string, delivery: string, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': githubSignature(secret, body),
    'user-agent': 'GitHub-Hookshot/test',
  };
}

/** Headers of a signed Forgejo delivery (or Gitea's, with `flavour: 'gitea'`). */
export function forgejoHeaders(secret: string, event: string, delivery: string, body: string, flavour: 'forgejo' | 'gitea' = 'forgejo'): Record<string, string> {
  const prefix = flavour === 'forgejo' ? 'x-forgejo' : 'x-gitea';
  return {
    'content-type': 'application/json',
    [`${prefix}-event`]: event,
    [`${prefix}-delivery`]: delivery,
    [`${prefix}-signature`]: forgejoSignature(secret, body),
  };
}

const repo = {
  id: 7,
  owner: { id: 1, login: 'alice', username: 'alice', full_name: '', email: 'alice@example.org' },
  name: 'hello',
  full_name: 'alice/hello',
  private: false,
  fork: false,
  html_url: 'https://forge.example.org/alice/hello',
  ssh_url: 'git@forge.example.org:alice/hello.git',
  clone_url: 'https://forge.example.org/alice/hello.git',
  default_branch: 'main',
};
const user = { id: 1, login: 'alice', username: 'alice', full_name: 'Alice', email: 'alice@example.org' };

/** A push as Forgejo/Gitea sends it (their payload shape: `username`, `compare_url`, no `created`). */
export function forgejoPush(sha: string, ref = 'refs/heads/main'): Record<string, unknown> {
  return {
    ref,
    before: 'a'.repeat(40),
    after: sha,
    compare_url: `https://forge.example.org/alice/hello/compare/${'a'.repeat(40)}...${sha}`,
    commits: [
      {
        id: sha,
        message: 'Fix the build\n',
        url: `https://forge.example.org/alice/hello/commit/${sha}`,
        author: { name: 'Alice', email: 'alice@example.org', username: 'alice' },
        committer: { name: 'Alice', email: 'alice@example.org', username: 'alice' },
        timestamp: '2026-01-02T03:04:05Z',
        added: ['src/new.c'],
        removed: [],
        modified: ['Makefile'],
      },
    ],
    total_commits: 1,
    head_commit: { id: sha, message: 'Fix the build\n' },
    repository: repo,
    pusher: user,
    sender: user,
  };
}

/** A pull_request as Forgejo/Gitea sends it; `synchronized` for new commits. */
export function forgejoPullRequest(action: string, headSha: string): Record<string, unknown> {
  return {
    action,
    number: 3,
    pull_request: {
      id: 30,
      number: 3,
      user,
      title: 'Add a feature',
      state: 'open',
      head: { label: 'feature', ref: 'feature', sha: headSha, repo_id: 8, repo: { ...repo, id: 8, full_name: 'bob/hello', clone_url: 'https://forge.example.org/bob/hello.git' } },
      base: { label: 'main', ref: 'main', sha: 'e'.repeat(40), repo_id: 7, repo },
    },
    repository: repo,
    sender: user,
  };
}

export interface RawResponse {
  status: number;
  body: string;
}

/**
 * POST with full control over framing: `declaredLength` sets Content-Length (possibly a lie),
 * omitting it makes Node send `Transfer-Encoding: chunked`. Resolves on the response, even if
 * the server answers before the body was fully sent.
 */
export function rawPost(
  url: string,
  headers: Record<string, string>,
  chunks: Iterable<Buffer | string>,
  declaredLength?: number,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: 'POST',
      headers: { ...headers, ...(declaredLength !== undefined && { 'content-length': String(declaredLength) }) },
      agent: false,
    });
    let settled = false;
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        settled = true;
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') });
        req.destroy();
      });
      res.on('error', (e) => (settled ? undefined : reject(e)));
    });
    // Writes after the server answered and hung up fail with EPIPE/ECONNRESET: expected.
    // The response may still be on its way when our write fails: give it time to arrive.
    req.on('error', (e) => setTimeout(() => (settled || answered ? undefined : reject(e)), 2000));
    void (async () => {
      for (const chunk of chunks) {
        if (req.destroyed || settled) return;
        if (!req.write(chunk)) {
          await new Promise<void>((r) => {
            const done = () => {
              req.off('drain', done);
              req.off('close', done);
              r();
            };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      if (declaredLength === undefined || !settled) req.end();
    })();
  });
}
