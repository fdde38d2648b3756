/**
 * A public git host for action repositories (like github.com seen without credentials, or a
 * Forgejo instance): smart HTTP by `git http-backend`, no authentication. Records each request
 * with the protocol v2 command it carried (`ls-refs`, `fetch`), and can hold pack downloads back
 * so a test can interrupt a fetch half way.
 */
import { gunzipSync } from 'node:zlib';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { gitHttpBackend, GitRepos } from './git-http.ts';
import { listen, type Listening } from './listen.ts';

export interface ActionsHostRequest {
  method: string;
  path: string;
  /** `ls-refs`, `fetch`, or '' for the ref advertisement (GET info/refs). */
  command: string;
  authorization: string | undefined;
}

export class ActionsHost {
  readonly repos = new GitRepos(mkdtempSync(join(tmpdir(), 'actions-host-repos-')));
  readonly requests: ActionsHostRequest[] = [];
  /** While set, `fetch` requests wait for it to resolve before being answered. */
  holdFetches?: Promise<void>;
  /** Called when a held fetch request arrives. */
  onHeldFetch?: () => void;
  #server?: Listening;

  get url(): string {
    if (!this.#server) throw new Error('ActionsHost is not started');
    return this.#server.url;
  }

  async start(): Promise<this> {
    const app = new Hono();
    app.all('*', async (c) => {
      const m = c.req.path.match(/^\/([^/]+\/[^/]+\.git)(\/.*)$/);
      if (!m) return c.text('not found\n', 404);
      const body = c.req.method === 'POST' ? Buffer.from(await c.req.arrayBuffer()) : undefined;
      const plain = body && c.req.header('content-encoding') === 'gzip' ? gunzipSync(body) : body;
      const command = plain?.toString('latin1').match(/command=([a-z-]+)/)?.[1] ?? '';
      this.requests.push({ method: c.req.method, path: c.req.path, command, authorization: c.req.header('authorization') });
      if (command === 'fetch' && this.holdFetches) {
        this.onHeldFetch?.();
        await this.holdFetches;
      }
      const request = new Request(c.req.raw.url, { method: c.req.method, headers: c.req.raw.headers, ...(body ? { body } : {}) });
      return gitHttpBackend(request, this.repos.root, `/${m[1]}${m[2]}`);
    });
    this.#server = await listen(app);
    return this;
  }

  async stop(): Promise<void> {
    await this.#server?.close();
  }

  /** Requests since `from` that carried this protocol command. */
  commands(from: number, command: string): ActionsHostRequest[] {
    return this.requests.slice(from).filter((r) => r.command === command);
  }
}

export async function startActionsHost(): Promise<ActionsHost> {
  return new ActionsHost().start();
}
