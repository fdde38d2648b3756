/**
 * A fake GitHub for tests (Hono on loopback): installation tokens for an RS256 app JWT,
 * repository contents, compare, PR files, collaborator permission, git over smart HTTP, and
 * check runs (create / update / get / list for a ref), and the app's webhook: `deliver()` sends
 * a signed event to `webhookTarget` and records the attempt as GitHub does, listed by
 * `GET /app/hook/deliveries` and redelivered by `POST …/attempts`. Every JSON body our client sends is
 * validated against GitHub's OpenAPI description; a mismatch answers 422 and is recorded in
 * `validationErrors`, which tests assert stays empty.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono, type Context } from 'hono';
import { basicAuthPassword, gitHttpBackend, GitRepos } from './git-http.ts';
import { githubHeaders } from './webhooks.ts';
import { githubOpenApi } from './github-openapi.ts';
import { listen, type Listening } from './listen.ts';

export interface FakeCheckRun {
  id: number;
  repo: string;
  name: string;
  head_sha: string;
  external_id: string | null;
  details_url: string | null;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  started_at: string | null;
  completed_at: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  annotations: Record<string, unknown>[];
  actions: Record<string, unknown>[];
  /** Every body sent for this run, in order (create first). */
  history: Record<string, unknown>[];
}

/** One attempt at delivering a webhook, as GitHub lists it (the `hook-delivery-item` schema). */
export interface FakeHookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  duration: number;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
  throttled_at: string | null;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** `jwt`, `token:<installation>`, `none` or `bad`. */
  auth: string;
  body?: unknown;
  at: number;
}

interface InjectedFailure {
  method: string;
  path: RegExp;
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  times: number;
  /** Matching requests still let through before the failures start. */
  after: number;
}

export interface FakeGithubOptions {
  appId?: number;
  /** Lifetime of issued installation tokens (default 1 hour). */
  tokenTtlMs?: number;
}

export const TEST_APP_KEYS = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

function b64urlJson(part: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export class FakeGithub {
  readonly appId: number;
  readonly repos: GitRepos;
  readonly app = new Hono();
  readonly checkRuns: FakeCheckRun[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly validationErrors: string[] = [];
  /** Installation ids in the order tokens were issued. */
  readonly tokensIssued: number[] = [];
  /** (installation, repo) pairs the app is installed on; empty = every repo for every installation. */
  readonly pulls = new Map<string, { base: string; head: string }>();
  readonly permissions = new Map<string, string>();
  tokenTtlMs: number;
  /** Where `deliver()` sends the app's webhooks. */
  webhookTarget?: { url: string; secret: string };
  /** Every delivery attempt, oldest first. */
  readonly hookDeliveries: FakeHookDelivery[] = [];
  #hookPayloads = new Map<string, { event: string; body: string }>();
  #nextHookDeliveryId = 90_000;
  #tokens = new Map<string, { installationId: number; expiresAt: number }>();
  #failures: InjectedFailure[] = [];
  #nextCheckRunId = 1000;
  #server?: Listening;
  #port?: number;
  /** An outage in progress: every API and git request answers 502. */
  #badGateway = false;
  /** A stall in progress: every request waits for comeBack() before it is answered. */
  #stall?: { promise: Promise<void>; release: () => void };

  constructor(options: FakeGithubOptions = {}) {
    this.appId = options.appId ?? 4242;
    this.tokenTtlMs = options.tokenTtlMs ?? 3_600_000;
    this.repos = new GitRepos(mkdtempSync(join(tmpdir(), 'fake-github-repos-')));
    this.#routes();
  }

  get url(): string {
    if (this.#port === undefined) throw new Error('FakeGithub is not started: call start() first');
    return `http://127.0.0.1:${this.#port}`;
  }

  get privateKey(): string {
    return TEST_APP_KEYS.privateKey;
  }

  async start(): Promise<this> {
    this.#server = await listen(this.app, this.#port ?? 0);
    this.#port = Number(new URL(this.#server.url).port);
    return this;
  }

  /**
   * An outage: `refuse` stops listening (connections are refused, as when GitHub is unreachable),
   * `502` answers every request with 502 Bad Gateway, `stall` accepts requests and answers none
   * until it ends (listening again first, after a `refuse`). `comeBack()` ends it, at the same address.
   */
  async goDown(mode: 'refuse' | '502' | 'stall'): Promise<void> {
    if (mode === '502') {
      this.#badGateway = true;
      return;
    }
    if (mode === 'stall') {
      let release = () => {};
      const promise = new Promise<void>((resolve) => (release = resolve));
      this.#stall = { promise, release };
      // Stalling from a refusing outage: listen again, already stalled.
      if (!this.#server) await this.start();
      return;
    }
    await this.#server?.close();
    this.#server = undefined;
  }

  async comeBack(): Promise<void> {
    this.#badGateway = false;
    this.#stall?.release();
    this.#stall = undefined;
    if (!this.#server) await this.start();
  }

  async stop(): Promise<void> {
    await this.#server?.close();
  }

  /** HTTPS-style clone URL the events would carry. */
  cloneUrl(fullName: string): string {
    return `${this.url}/${fullName}.git`;
  }

  setPull(fullName: string, number: number, base: string, head: string): void {
    this.pulls.set(`${fullName}#${number}`, { base, head });
  }

  setPermission(fullName: string, user: string, permission: 'admin' | 'write' | 'read' | 'none'): void {
    this.permissions.set(`${fullName}:${user}`, permission);
  }

  /**
   * Sends the event to `webhookTarget` as GitHub does (signed, 10 s timeout) and records the
   * attempt; `recordAs` records another outcome than the real one (GitHub timing out after the
   * server stored it). `delivered_at` can be set for old deliveries.
   */
  async deliver(
    event: string,
    payload: Record<string, unknown>,
    guid: string,
    options: { redelivery?: boolean; recordAs?: { status: string; status_code: number }; deliveredAt?: string } = {},
  ): Promise<FakeHookDelivery> {
    const body = JSON.stringify(payload);
    this.#hookPayloads.set(guid, { event, body });
    const started = performance.now();
    let outcome: { status: string; status_code: number };
    if (!this.webhookTarget) throw new Error('FakeGithub: set webhookTarget before deliver()');
    try {
      const response = await fetch(this.webhookTarget.url, { method: 'POST', headers: githubHeaders(this.webhookTarget.secret, event, guid, body), body, signal: AbortSignal.timeout(10_000) });
      await response.arrayBuffer();
      outcome = response.ok ? { status: 'OK', status_code: response.status } : { status: `Invalid HTTP Response: ${response.status}`, status_code: response.status };
    } catch (error) {
      outcome = (error as Error).name === 'TimeoutError' ? { status: 'timed out', status_code: 0 } : { status: 'failed to connect to host', status_code: 0 };
    }
    const installation = payload.installation as { id?: number } | undefined;
    const repository = payload.repository as { id?: number } | undefined;
    const attempt: FakeHookDelivery = {
      id: this.#nextHookDeliveryId++,
      guid,
      delivered_at: (options.deliveredAt ? new Date(options.deliveredAt) : new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      redelivery: options.redelivery ?? false,
      duration: Math.round(performance.now() - started) / 1000,
      ...(options.recordAs ?? outcome),
      event,
      action: typeof payload.action === 'string' ? payload.action : null,
      installation_id: installation?.id ?? null,
      repository_id: repository?.id ?? null,
      throttled_at: null,
    };
    this.hookDeliveries.push(attempt);
    return attempt;
  }

  /** The attempts of one event, oldest first. */
  attemptsOf(guid: string): FakeHookDelivery[] {
    return this.hookDeliveries.filter((d) => d.guid === guid);
  }

  /** The next `times` requests matching method + path get this error response (after letting `after` of them through). */
  failNext(method: string, path: RegExp, status: number, headers: Record<string, string> = {}, body: Record<string, unknown> = { message: 'injected failure' }, times = 1, after = 0): void {
    this.#failures.push({ method, path, status, headers, body, times, after });
  }

  /** Revoke every token (the next API call with an old token gets 401). */
  expireAllTokens(): void {
    for (const entry of this.#tokens.values()) entry.expiresAt = 0;
  }

  runsFor(fullName: string): FakeCheckRun[] {
    return this.checkRuns.filter((r) => r.repo === fullName);
  }

  /** The check run `id` once it is completed (for waitFor), else undefined. */
  completedRun(id: number): FakeCheckRun | undefined {
    const run = this.checkRuns.find((r) => r.id === id);
    return run?.status === 'completed' ? run : undefined;
  }

  #verifyJwt(header: string | undefined): boolean {
    const m = header?.match(/^Bearer\s+([\w-]+)\.([\w-]+)\.([\w-]+)$/i);
    if (!m) return false;
    const [, h, p, s] = m as unknown as [string, string, string, string];
    const head = b64urlJson(h);
    const payload = b64urlJson(p);
    if (head?.alg !== 'RS256' || !payload) return false;
    const ok = verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey(TEST_APP_KEYS.publicKey), Buffer.from(s, 'base64url'));
    const now = Math.floor(Date.now() / 1000);
    return ok && String(payload.iss) === String(this.appId) && typeof payload.exp === 'number' && payload.exp > now && (payload.exp as number) - now <= 600 + 60;
  }

  /** Installation id for a valid token in `Authorization: token X` / `Bearer X`, else undefined. */
  #tokenInstallation(header: string | undefined): number | undefined {
    const m = header?.match(/^(?:token|Bearer)\s+(\S+)$/i);
    const entry = m ? this.#tokens.get(m[1]!) : undefined;
    return entry && entry.expiresAt > Date.now() ? entry.installationId : undefined;
  }

  installationForToken(token: string): number | undefined {
    const entry = this.#tokens.get(token);
    return entry && entry.expiresAt > Date.now() ? entry.installationId : undefined;
  }

  #routes(): void {
    const app = this.app;

    app.use('*', async (c, next) => {
      if (this.#stall) {
        this.requests.push({ method: c.req.method, path: c.req.path, auth: 'stalled', at: Date.now() });
        await this.#stall.promise;
      }
      if (!this.#badGateway) return next();
      this.requests.push({ method: c.req.method, path: c.req.path, auth: 'outage', at: Date.now() });
      return c.json({ message: 'Server Error' }, 502);
    });

    // Git smart HTTP: /<owner>/<name>.git/...; the token is the Basic-auth password.
    app.use('*', async (c, next) => {
      const m = c.req.path.match(/^\/([^/]+\/[^/]+\.git)(\/.*)$/);
      if (!m) return next();
      const token = basicAuthPassword(c.req.header('authorization'));
      const installation = token ? this.installationForToken(token) : undefined;
      this.requests.push({ method: c.req.method, path: c.req.path, auth: installation ? `token:${installation}` : token ? 'bad' : 'none', at: Date.now() });
      if (!installation) {
        return c.body('authentication required\n', 401, { 'WWW-Authenticate': 'Basic realm="GitHub"' });
      }
      return gitHttpBackend(c.req.raw, this.repos.root, `/${m[1]}${m[2]}`);
    });

    // Record, authenticate, inject failures and validate bodies for every API call.
    app.use('*', async (c, next) => {
      const method = c.req.method;
      const path = c.req.path;
      const authHeader = c.req.header('authorization');
      let body: unknown;
      if (['POST', 'PATCH', 'PUT'].includes(method)) {
        const text = await c.req.text();
        if (text !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            this.validationErrors.push(`${method} ${path}: body is not JSON`);
            return c.json({ message: 'Problems parsing JSON' }, 400);
          }
        }
        c.set('body' as never, body as never);
      }
      const appRoute = path.startsWith('/app/') || path === '/app';
      let auth = 'none';
      if (appRoute) auth = this.#verifyJwt(authHeader) ? 'jwt' : 'bad';
      else if (authHeader) {
        const installation = this.#tokenInstallation(authHeader);
        auth = installation ? `token:${installation}` : 'bad';
      }
      this.requests.push({ method, path, auth, body, at: Date.now() });
      if (auth === 'bad' || auth === 'none') return c.json({ message: 'Bad credentials' }, 401);

      const failure = this.#failures.find((f) => f.method === method && f.path.test(path));
      if (failure && failure.after > 0) failure.after -= 1;
      else if (failure) {
        failure.times -= 1;
        if (failure.times <= 0) this.#failures.splice(this.#failures.indexOf(failure), 1);
        return c.json(failure.body, failure.status as 400, failure.headers);
      }

      const outcome = githubOpenApi().validate(method, path, body);
      if (outcome.errors.length > 0) {
        this.validationErrors.push(...outcome.errors);
        return c.json({ message: 'Invalid request', errors: outcome.errors }, 422);
      }
      return next();
    });

    app.post('/app/installations/:id/access_tokens', (c) => {
      const installationId = Number(c.req.param('id'));
      // New-format tokens are longer than 40 characters: make sure nothing assumes the old length.
      const token = `ghs_${randomBytes(48).toString('base64url')}`;
      const expiresAt = Date.now() + this.tokenTtlMs;
      this.#tokens.set(token, { installationId, expiresAt });
      this.tokensIssued.push(installationId);
      return c.json({ token, expires_at: new Date(expiresAt).toISOString(), permissions: { checks: 'write', contents: 'read', pull_requests: 'read' }, repository_selection: 'all' }, 201);
    });

    // The app's webhook deliveries, newest first, paged by cursor (the id to continue below).
    app.get('/app/hook/deliveries', (c) => {
      const perPage = Math.min(Number(c.req.query('per_page') ?? 30), 100);
      const cursor = c.req.query('cursor');
      const all = [...this.hookDeliveries].sort((a, b) => b.id - a.id).filter((d) => cursor === undefined || d.id < Number(cursor));
      const page = all.slice(0, perPage);
      const last = page.at(-1);
      if (last && all.length > perPage) c.header('link', `<${this.url}/app/hook/deliveries?per_page=${perPage}&cursor=${last.id}>; rel="next"`);
      return c.json(page);
    });

    app.post('/app/hook/deliveries/:id/attempts', (c) => {
      const attempt = this.hookDeliveries.find((d) => d.id === Number(c.req.param('id')));
      const sent = attempt ? this.#hookPayloads.get(attempt.guid) : undefined;
      if (!attempt || !sent) return c.json({ message: 'Not Found' }, 404);
      // GitHub answers at once and delivers afterwards.
      setTimeout(() => void this.deliver(sent.event, JSON.parse(sent.body) as Record<string, unknown>, attempt.guid, { redelivery: true }).catch(() => undefined), 50);
      return c.json({}, 202);
    });

    app.get('/repos/:owner/:repo/contents/*', (c) => {
      const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
      const path = decodeURIComponent(c.req.path.split('/contents/')[1] ?? '').replace(/\/+$/, '');
      const ref = c.req.query('ref') ?? 'main';
      return this.#contents(c, fullName, ref, path);
    });

    app.get('/repos/:owner/:repo/compare/:basehead', (c) => {
      const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
      const [base, head] = c.req.param('basehead').split('...');
      if (!base || !head || !this.repos.resolve(fullName, base) || !this.repos.resolve(fullName, head)) return c.json({ message: 'Not Found' }, 404);
      let files: { filename: string; status: string }[];
      try {
        files = this.repos.changedFiles(fullName, base, head).map((filename) => ({ filename, status: 'modified' }));
      } catch {
        return c.json({ message: `No common ancestor between ${base} and ${head}.` }, 404);
      }
      return c.json({ status: 'ahead', files, commits: [] });
    });

    app.get('/repos/:owner/:repo/pulls/:number/files', (c) => {
      const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
      const pull = this.pulls.get(`${fullName}#${c.req.param('number')}`);
      if (!pull) return c.json({ message: 'Not Found' }, 404);
      let all: { filename: string; status: string }[];
      try {
        all = this.repos.changedFiles(fullName, pull.base, pull.head).map((filename) => ({ filename, status: 'modified' }));
      } catch {
        return c.json({ message: 'No common ancestor' }, 404);
      }
      const perPage = Number(c.req.query('per_page') ?? 30);
      const page = Number(c.req.query('page') ?? 1);
      return c.json(all.slice((page - 1) * perPage, page * perPage));
    });

    app.get('/repos/:owner/:repo/collaborators/:user/permission', (c) => {
      const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
      const user = c.req.param('user');
      const permission = this.permissions.get(`${fullName}:${user}`) ?? 'read';
      return c.json({ permission, role_name: permission, user: { login: user } });
    });

    app.post('/repos/:owner/:repo/check-runs', (c) => {
      const body = c.get('body' as never) as Record<string, unknown>;
      const run: FakeCheckRun = {
        id: this.#nextCheckRunId++,
        repo: `${c.req.param('owner')}/${c.req.param('repo')}`,
        name: String(body.name),
        head_sha: String(body.head_sha),
        external_id: (body.external_id as string) ?? null,
        details_url: (body.details_url as string) ?? null,
        status: 'queued',
        conclusion: null,
        started_at: null,
        completed_at: null,
        output: { title: null, summary: null, text: null },
        annotations: [],
        actions: [],
        history: [],
      };
      this.#apply(run, body);
      this.checkRuns.push(run);
      return c.json(this.#view(run), 201);
    });

    app.patch('/repos/:owner/:repo/check-runs/:id', (c) => {
      const run = this.checkRuns.find((r) => r.id === Number(c.req.param('id')) && r.repo === `${c.req.param('owner')}/${c.req.param('repo')}`);
      if (!run) return c.json({ message: 'Not Found' }, 404);
      this.#apply(run, c.get('body' as never) as Record<string, unknown>);
      return c.json(this.#view(run));
    });

    app.get('/repos/:owner/:repo/check-runs/:id', (c) => {
      const run = this.checkRuns.find((r) => r.id === Number(c.req.param('id')));
      return run ? c.json(this.#view(run)) : c.json({ message: 'Not Found' }, 404);
    });

    app.get('/repos/:owner/:repo/commits/:ref/check-runs', (c) => {
      const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
      const sha = this.repos.resolve(fullName, c.req.param('ref')) ?? c.req.param('ref');
      const name = c.req.query('check_name');
      let runs = this.checkRuns.filter((r) => r.repo === fullName && r.head_sha === sha && (!name || r.name === name));
      const perPage = Number(c.req.query('per_page') ?? 30);
      const page = Number(c.req.query('page') ?? 1);
      const total = runs.length;
      runs = runs.slice((page - 1) * perPage, page * perPage);
      return c.json({ total_count: total, check_runs: runs.map((r) => this.#view(r)) });
    });

    app.all('*', (c) => c.json({ message: `Not Found (fake GitHub has no ${c.req.method} ${c.req.path})` }, 404));
  }

  #contents(c: Context, fullName: string, ref: string, path: string): Response {
    const sha = this.repos.resolve(fullName, ref);
    if (!sha) return c.json({ message: `No commit found for the ref ${ref}` }, 404);
    const listing = this.repos.list(fullName, sha, path);
    if (listing) {
      return c.json(listing.map((e) => ({ type: e.type, name: e.name, path: e.path, sha: e.sha, size: 0, url: '', html_url: '', git_url: '', download_url: null, _links: {} })));
    }
    const content = this.repos.show(fullName, sha, path);
    if (!content) return c.json({ message: 'Not Found' }, 404);
    const name = path.split('/').pop() ?? path;
    // GitHub wraps base64 content at 60 characters per line.
    const encoded = content.toString('base64').replace(/(.{60})/g, '$1\n');
    return c.json({ type: 'file', encoding: 'base64', size: content.length, name, path, content: encoded, sha: 'blob', url: '', html_url: '', git_url: '', download_url: null, _links: {} });
  }

  #apply(run: FakeCheckRun, body: Record<string, unknown>): void {
    run.history.push(body);
    if (typeof body.name === 'string') run.name = body.name;
    if (typeof body.external_id === 'string') run.external_id = body.external_id;
    if (typeof body.details_url === 'string') run.details_url = body.details_url;
    if (typeof body.started_at === 'string') run.started_at = body.started_at;
    if (typeof body.status === 'string') run.status = body.status as FakeCheckRun['status'];
    if (typeof body.conclusion === 'string') {
      run.conclusion = body.conclusion;
      run.status = 'completed';
      run.completed_at = (body.completed_at as string) ?? new Date().toISOString();
    }
    const output = body.output as Record<string, unknown> | undefined;
    if (output) {
      if (typeof output.title === 'string') run.output.title = output.title;
      if (typeof output.summary === 'string') run.output.summary = output.summary;
      if (typeof output.text === 'string') run.output.text = output.text;
      if (Array.isArray(output.annotations)) run.annotations.push(...(output.annotations as Record<string, unknown>[]));
    }
    if (Array.isArray(body.actions)) run.actions = body.actions as Record<string, unknown>[];
  }

  #view(run: FakeCheckRun): Record<string, unknown> {
    return {
      id: run.id,
      name: run.name,
      head_sha: run.head_sha,
      external_id: run.external_id,
      details_url: run.details_url,
      status: run.status,
      conclusion: run.conclusion,
      started_at: run.started_at,
      completed_at: run.completed_at,
      output: { ...run.output, annotations_count: run.annotations.length, annotations_url: '' },
      app: { id: this.appId, slug: 'forgevm' },
      pull_requests: [],
      html_url: `https://github.test/${run.repo}/runs/${run.id}`,
    };
  }
}

export async function startFakeGithub(options: FakeGithubOptions = {}): Promise<FakeGithub> {
  return new FakeGithub(options).start();
}
