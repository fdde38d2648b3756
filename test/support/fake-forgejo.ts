/**
 * A fake Forgejo/Gitea (API v1, as documented at /api/swagger): commit statuses, repository
 * contents, PR files, and git over smart HTTP. Requests need `Authorization: token <token>`
 * (git: the token as the Basic-auth password). Status bodies are checked against the documented
 * CreateStatusOption; violations answer 422 and land in `validationErrors`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { basicAuthPassword, gitHttpBackend, GitRepos } from './git-http.ts';
import { listen, type Listening } from './listen.ts';

export interface FakeStatus {
  repo: string;
  sha: string;
  state: string;
  context: string;
  description: string;
  target_url?: string;
  id: number;
}

const STATES = new Set(['pending', 'success', 'error', 'failure', 'warning']);

export class FakeForgejo {
  readonly app = new Hono();
  readonly repos = new GitRepos(mkdtempSync(join(tmpdir(), 'fake-forgejo-repos-')));
  readonly statuses: FakeStatus[] = [];
  readonly validationErrors: string[] = [];
  readonly requests: { method: string; path: string; authorized: boolean }[] = [];
  readonly pulls = new Map<string, { base: string; head: string }>();
  #server?: Listening;

  constructor(readonly token = 'forgejo-test-token-0123456789abcdef') {
    this.#routes();
  }

  get url(): string {
    if (!this.#server) throw new Error('FakeForgejo is not started: call start() first');
    return this.#server.url;
  }

  get apiUrl(): string {
    return `${this.url}/api/v1`;
  }

  cloneUrl(fullName: string): string {
    return `${this.url}/${fullName}.git`;
  }

  async start(): Promise<this> {
    this.#server = await listen(this.app);
    return this;
  }

  stop(): Promise<void> {
    return this.#server?.close() ?? Promise.resolve();
  }

  /** Latest status per context for a commit, as Forgejo's combined status shows. */
  latest(repo: string, sha: string): Map<string, FakeStatus> {
    const out = new Map<string, FakeStatus>();
    for (const s of this.statuses) if (s.repo === repo && s.sha === sha) out.set(s.context, s);
    return out;
  }

  #routes(): void {
    const app = this.app;
    app.use('*', async (c, next) => {
      const m = c.req.path.match(/^\/([^/]+\/[^/]+\.git)(\/.*)$/);
      if (m) {
        const ok = basicAuthPassword(c.req.header('authorization')) === this.token;
        this.requests.push({ method: c.req.method, path: c.req.path, authorized: ok });
        if (!ok) return c.body('Unauthorized\n', 401, { 'WWW-Authenticate': 'Basic realm="Forgejo"' });
        return gitHttpBackend(c.req.raw, this.repos.root, `/${m[1]}${m[2]}`);
      }
      const ok = c.req.header('authorization') === `token ${this.token}`;
      this.requests.push({ method: c.req.method, path: c.req.path, authorized: ok });
      if (!ok) return c.json({ message: 'token is required' }, 401);
      return next();
    });

    app.post('/api/v1/repos/:owner/:repo/statuses/:sha', async (c) => {
      const body = (await c.req.json().catch(() => undefined)) as Record<string, unknown> | undefined;
      const errors: string[] = [];
      if (!body || typeof body !== 'object') errors.push('body must be a JSON object');
      else {
        if (!STATES.has(body.state as string)) errors.push(`state "${String(body.state)}" is not one of pending, success, error, failure, warning`);
        for (const key of ['context', 'description', 'target_url']) if (key in body && typeof body[key] !== 'string') errors.push(`${key} must be a string`);
        for (const key of Object.keys(body)) if (!['state', 'context', 'description', 'target_url'].includes(key)) errors.push(`unknown field ${key}`);
      }
      if (errors.length > 0) {
        this.validationErrors.push(...errors);
        return c.json({ message: errors.join('; ') }, 422);
      }
      const status: FakeStatus = {
        id: this.statuses.length + 1,
        repo: `${c.req.param('owner')}/${c.req.param('repo')}`,
        sha: c.req.param('sha'),
        state: body!.state as string,
        context: (body!.context as string) ?? 'default',
        description: (body!.description as string) ?? '',
        ...(body!.target_url ? { target_url: body!.target_url as string } : {}),
      };
      this.statuses.push(status);
      return c.json({ id: status.id, state: status.state, context: status.context, description: status.description, target_url: status.target_url ?? '' }, 201);
    });

    app.get('/api/v1/repos/:owner/:repo/contents/*', (c) => {
      const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
      const path = decodeURIComponent(c.req.path.split('/contents/')[1] ?? '').replace(/\/+$/, '');
      const sha = this.repos.resolve(fullName, c.req.query('ref') ?? 'main');
      if (!sha) return c.json({ message: 'object does not exist' }, 404);
      const listing = this.repos.list(fullName, sha, path);
      if (listing) return c.json(listing.map((e) => ({ type: e.type, name: e.name, path: e.path, sha: e.sha, content: null, encoding: null })));
      const content = this.repos.show(fullName, sha, path);
      if (!content) return c.json({ message: 'object does not exist' }, 404);
      return c.json({ type: 'file', name: path.split('/').pop(), path, encoding: 'base64', content: content.toString('base64') });
    });

    app.get('/api/v1/repos/:owner/:repo/pulls/:index/files', (c) => {
      const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
      const pull = this.pulls.get(`${fullName}#${c.req.param('index')}`);
      if (!pull) return c.json({ message: 'pull request does not exist' }, 404);
      const limit = Number(c.req.query('limit') ?? 30);
      const page = Number(c.req.query('page') ?? 1);
      const files = this.repos.changedFiles(fullName, pull.base, pull.head).map((filename) => ({ filename, status: 'changed' }));
      return c.json(files.slice((page - 1) * limit, page * limit));
    });

    app.all('*', (c) => c.json({ message: `fake Forgejo has no ${c.req.method} ${c.req.path}` }, 404));
  }
}

export async function startFakeForgejo(): Promise<FakeForgejo> {
  return new FakeForgejo().start();
}
