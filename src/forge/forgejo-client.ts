/**
 * The few Forgejo/Gitea API calls forgevm needs (API v1, `Authorization: token …`): commit
 * statuses, repository contents, PR files. Retries 5xx and network errors once; every
 * failure is logged as one line.
 */
import { describeNetworkError } from './api-failure.ts';
import type { ForgeApiErrorSink, ForgeLogger } from './github-client.ts';
import { silentLogger } from './github-client.ts';

export type CommitState = 'pending' | 'success' | 'error' | 'failure' | 'warning';

export interface ForgejoClientOptions {
  /** `<instance>/api/v1`. */
  apiUrl: string;
  token: string;
  log?: ForgeLogger;
  /** When set, failed API calls are reported here (one structured line each) instead of `log.warn`. */
  onApiError?: ForgeApiErrorSink;
  retries?: number;
  /** Base wait between retries (ms); doubles each time. */
  retryDelayMs?: number;
  /** Aborting it ends every call in flight and every retry wait (shutdown). */
  signal?: AbortSignal;
}

export class ForgejoApiError extends Error {
  /** Response headers (retry-after…), when there was a response. */
  readonly response?: { status: number; headers: Record<string, string> };

  /** `status` 0: no response at all (a network error, the cause). */
  constructor(readonly status: number, readonly request: string, message: string, extra: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(status === 0 ? `Forgejo API ${request} failed: ${message}` : `Forgejo API ${request} failed with ${status}: ${message}`, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    if (extra.headers) this.response = { status, headers: extra.headers };
  }
}

export interface ForgejoContentEntry {
  type: 'file' | 'dir' | 'symlink' | 'submodule';
  name: string;
  path: string;
  content?: string | null;
  encoding?: string | null;
}

export class ForgejoClient {
  readonly apiUrl: string;
  #log: ForgeLogger;

  constructor(private readonly options: ForgejoClientOptions) {
    this.apiUrl = options.apiUrl.replace(/\/+$/, '');
    this.#log = options.log ?? silentLogger;
  }

  get token(): string {
    return this.options.token;
  }

  async request<T>(method: string, path: string, body?: unknown, allow404 = false): Promise<T | undefined> {
    // One quick retry for a blip; the worker retries the whole delivery later with backoff.
    const retries = this.options.retries ?? 1;
    const label = `${method} ${path.split('?')[0]}`;
    const url = `${this.apiUrl}${path}`;
    const signal = this.options.signal;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: {
            authorization: `token ${this.options.token}`,
            accept: 'application/json',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          ...(signal ? { signal } : {}),
        });
      } catch (error) {
        if ((error as Error).name === 'AbortError') throw error; // a shutdown, not a failure of the forge
        const message = describeNetworkError(error, url) ?? (error as Error).message;
        if (attempt < retries) {
          await this.#wait(attempt);
          continue;
        }
        this.#failed(label, path, undefined, message);
        throw new ForgejoApiError(0, label, message, { cause: error });
      }
      if (response.ok) return (response.status === 204 ? undefined : await response.json()) as T;
      if (response.status === 404 && allow404) return undefined;
      const text = (await response.text()).slice(0, 300).replace(/\s+/g, ' ');
      if ((response.status >= 500 || response.status === 429) && attempt < retries) {
        await this.#wait(attempt);
        continue;
      }
      this.#failed(label, path, response.status, text);
      throw new ForgejoApiError(response.status, label, text, { headers: Object.fromEntries(response.headers) });
    }
  }

  /** One line per failed call (after the retries). */
  #failed(label: string, path: string, status: number | undefined, message: string): void {
    const onApiError = this.options.onApiError;
    if (!onApiError) {
      this.#log.warn(`Forgejo API ${label} failed${status !== undefined ? ` with ${status}` : ''}: ${message}`);
      return;
    }
    const repo = path.match(/^\/repos\/([^/?]+)\/([^/?]+)/);
    onApiError({
      forge: 'forgejo',
      request: label,
      ...(status !== undefined ? { status } : {}),
      ...(repo ? { repo: `${decodeURIComponent(repo[1]!)}/${decodeURIComponent(repo[2]!)}` } : {}),
      message,
      willRetry: false,
    });
  }

  /** Waits before the next attempt; a shutdown ends the wait with an AbortError. */
  #wait(attempt: number): Promise<void> {
    const base = this.options.retryDelayMs ?? 1_000;
    const signal = this.options.signal;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(Object.assign(new Error('Forgejo API call aborted'), { name: 'AbortError' }));
      const onAbort = () => {
        clearTimeout(timer);
        reject(Object.assign(new Error('Forgejo API call aborted'), { name: 'AbortError' }));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, base * 2 ** attempt);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async createStatus(repo: string, sha: string, status: { state: CommitState; context: string; description: string; target_url?: string }): Promise<void> {
    await this.request('POST', `/repos/${repoPath(repo)}/statuses/${encodeURIComponent(sha)}`, status);
  }

  /** A file's content or a folder's entries at `ref`; undefined when the path does not exist. */
  async contents(repo: string, path: string, ref: string): Promise<ForgejoContentEntry | ForgejoContentEntry[] | undefined> {
    const encodedPath = path.split('/').map(encodeURIComponent).join('/');
    return this.request('GET', `/repos/${repoPath(repo)}/contents/${encodedPath}?ref=${encodeURIComponent(ref)}`, undefined, true);
  }

  async pullFiles(repo: string, number: number): Promise<string[]> {
    const files: string[] = [];
    for (let page = 1; page < 100; page++) {
      const batch = (await this.request<{ filename: string }[]>('GET', `/repos/${repoPath(repo)}/pulls/${number}/files?limit=50&page=${page}`)) ?? [];
      files.push(...batch.map((f) => f.filename));
      if (batch.length < 50) break;
    }
    return files;
  }
}

function repoPath(repo: string): string {
  const [owner, name] = repo.split('/');
  if (!owner || !name) throw new Error(`"${repo}" is not an owner/name repository`);
  return `${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
}
