/**
 * GitHub API access as a GitHub App: one Octokit per installation, each with its own throttling
 * lane (`throttle.id`), 5xx retries, and installation tokens that are renewed before they expire
 * (a job can outlive the one-hour token).
 *
 * Waiting stays short here: one quick retry of a 5xx or network error; a rate limit that asks for
 * more than `maxInlineWaitSeconds` fails the call (the worker retries the whole delivery at the
 * time the forge named); and `signal` ends every call in flight and every retry wait at once
 * (shutdown).
 */
import { createAppAuth } from '@octokit/auth-app';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import type { Octokit as CoreOctokit } from '@octokit/core';
import { Octokit } from '@octokit/rest';
import type { ForgeApiErrorLogLine } from '../log/logger.ts';
import { classifyFailure, describeNetworkError } from './api-failure.ts';

export type GithubOctokit = InstanceType<typeof ThrottledOctokit>;

/** Octokit's own request log line (`GET /path - 500 with id UNKNOWN in 3ms`): ours replaces its failures. */
const REQUEST_LOG_LINE = /^[A-Z]+ \S+ - \S+ with id \S+ in \d+ms$/;

/**
 * Logs each failed attempt with its real cause. Registered before the retry and throttling
 * plugins, so it sees the attempts they repeat (Octokit's own log says only "500 with id
 * UNKNOWN" for a connection refused).
 */
function attemptLog(octokit: CoreOctokit): void {
  octokit.hook.error('request', (error, options) => {
    if (classifyFailure(error).kind !== 'aborted') {
      const url = typeof options.baseUrl === 'string' ? `${options.baseUrl}${options.url}` : options.url;
      octokit.log.warn(`GitHub API ${options.method} ${options.url} attempt failed: ${describeError(error, url)}`);
    }
    throw error;
  });
}

/**
 * The installation-token request that auth-app makes for a call goes through this Octokit's
 * hooks again, nested in that call, and inherits its retry count: retried inside each retry of
 * the call, with waits growing 1, 4, 9… s, one at a time in throttling's auth lane (a refused
 * connection then held every delivery for minutes). Registered after the retry plugin (outside
 * it), this makes the token request fail at once: the call it serves is what gets retried.
 */
function noNestedTokenRetry(octokit: CoreOctokit): void {
  octokit.hook.wrap('request', (request, options) => {
    if (/\/access_tokens$/.test(options.url)) options.request = { ...options.request, retries: 0, retryCount: 0 } as typeof options.request;
    return request(options);
  });
}

const ThrottledOctokit = Octokit.plugin(attemptLog, throttling, retry, noNestedTokenRetry);

/** Anything with pino's string-message methods. */
export interface ForgeLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

export const silentLogger: ForgeLogger = { info() {}, warn() {}, error() {} };

/** Structured sink for failed forge API calls (start-worker wires it to `logForgeApiError`). */
export type ForgeApiErrorSink = (line: ForgeApiErrorLogLine) => void;

export interface GithubClientOptions {
  appId: string | number;
  /** PEM (PKCS#1 or PKCS#8). */
  privateKey: string;
  /** REST base URL; `https://api.github.com` or a GHE `https://HOST/api/v3`. */
  apiUrl?: string;
  log?: ForgeLogger;
  /** When set, failed API calls are reported here (one structured line each) instead of `log.warn`. */
  onApiError?: ForgeApiErrorSink;
  /** How many times a rate-limited request is retried after waiting (default 3). */
  rateLimitRetries?: number;
  /** A rate limit asking for a longer wait fails the call instead of holding it (default 30). */
  maxInlineWaitSeconds?: number;
  /** Aborting it ends every call in flight and every retry or rate-limit wait. */
  signal?: AbortSignal;
  /** Tests: turn the throttling lanes off, or shrink the retry waits (ms per second of retry-after). */
  throttle?: { enabled?: boolean; retryAfterBaseValue?: number };
  retry?: { retries?: number; retryAfterBaseValue?: number };
  /** Renew a cached installation token when less than this is left (default 10 minutes). */
  tokenRenewMarginMs?: number;
}

/**
 * auth-app caches tokens for a fixed 59 minutes. This cache reads the token's own `expires_at`
 * (stored third in auth-app's `|`-separated value) and drops it while there is still margin, so
 * a token handed to `git fetch` or a long job never dies mid-use.
 */
export class ExpiryAwareTokenCache {
  #entries = new Map<string, string>();
  constructor(private readonly marginMs: number) {}

  get(key: string): string {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined as unknown as string;
    const expiresAt = Date.parse(value.split('|')[2] ?? '');
    if (!Number.isFinite(expiresAt) || expiresAt - Date.now() < this.marginMs) {
      this.#entries.delete(key);
      return undefined as unknown as string;
    }
    return value;
  }

  set(key: string, value: string): void {
    this.#entries.set(key, value);
  }
}

function errorParts(error: unknown, url?: string): { status?: number; message: string } {
  const e = error as { status?: number; message?: string; response?: { headers?: Record<string, string> } };
  const network = describeNetworkError(error, url);
  if (network) return { message: network };
  const requestId = e.response?.headers?.['x-github-request-id'];
  const message = `${(e.message ?? String(error)).split('\n')[0]}${requestId ? ` (request id ${requestId})` : ''}`;
  return typeof e.status === 'number' && e.response ? { status: e.status, message } : { message };
}

function describeError(error: unknown, url?: string): string {
  const { status, message } = errorParts(error, url);
  return status !== undefined ? `${status}: ${message}` : message;
}

/** An AbortError, as fetch throws it. */
function abortError(signal: AbortSignal): Error {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return Object.assign(new Error(`GitHub API call aborted: ${reason}`), { name: 'AbortError' });
}

export class GithubClients {
  readonly apiUrl: string;
  readonly appId: string;
  #byInstallation = new Map<number, GithubOctokit>();
  #cache: ExpiryAwareTokenCache;
  #log: ForgeLogger;
  #app?: GithubOctokit;

  constructor(private readonly options: GithubClientOptions) {
    this.apiUrl = (options.apiUrl ?? 'https://api.github.com').replace(/\/+$/, '');
    this.appId = String(options.appId);
    this.#log = options.log ?? silentLogger;
    this.#cache = new ExpiryAwareTokenCache(options.tokenRenewMarginMs ?? 10 * 60_000);
  }

  /** The Octokit for one installation (created once, then reused). */
  forInstallation(installationId: number): GithubOctokit {
    let octokit = this.#byInstallation.get(installationId);
    if (!octokit) {
      octokit = this.#build(`installation-${installationId}`, installationId);
      this.#byInstallation.set(installationId, octokit);
    }
    return octokit;
  }

  /** Authenticated as the app itself (JWT), for app-level endpoints. */
  asApp(): GithubOctokit {
    this.#app ??= this.#build('app', undefined);
    return this.#app;
  }

  /** A currently valid installation token (renewed ahead of expiry), e.g. for `git fetch`. */
  async installationToken(installationId: number): Promise<string> {
    const auth = (await this.forInstallation(installationId).auth({ type: 'installation' })) as { token: string };
    return auth.token;
  }

  #build(lane: string, installationId: number | undefined): GithubOctokit {
    const log = this.#log;
    const retries = this.options.rateLimitRetries ?? 3;
    const maxWait = this.options.maxInlineWaitSeconds ?? 30;
    const signal = this.options.signal;
    const auth: Record<string, unknown> = {
      appId: this.options.appId,
      privateKey: this.options.privateKey,
      cache: this.#cache,
      log: { warn: (m: string) => log.warn(m) },
    };
    if (installationId !== undefined) auth.installationId = installationId;
    const octokit = new ThrottledOctokit({
      baseUrl: this.apiUrl,
      userAgent: 'forgevm',
      authStrategy: createAppAuth,
      auth,
      log: {
        debug: () => {},
        info: () => {},
        warn: (m: string) => log.warn(m),
        error: (m: string) => (REQUEST_LOG_LINE.test(m) ? log.debug?.(m) : log.error(m)),
      },
      ...(signal ? { request: { signal } } : {}),
      // One quick retry for a blip; a forge that stays down fails the call, and the worker
      // retries the whole delivery later with backoff (a delivery slot is not held meanwhile).
      retry: { retries: 1, ...this.options.retry },
      throttle: {
        id: lane,
        ...this.options.throttle,
        onRateLimit: (retryAfter: number, opts: { method: string; url: string }, _o: unknown, retryCount: number) => {
          const wait = retryCount < retries && retryAfter <= maxWait && !signal?.aborted;
          log.warn(`GitHub rate limit hit on ${opts.method} ${opts.url} (${lane}); ${wait ? `retrying in ${retryAfter}s` : `not waiting ${retryAfter}s here: the call fails and is retried later`}`);
          return wait;
        },
        onSecondaryRateLimit: (retryAfter: number, opts: { method: string; url: string }, _o: unknown, retryCount: number) => {
          const wait = retryCount < retries && retryAfter <= maxWait && !signal?.aborted;
          log.warn(`GitHub secondary rate limit hit on ${opts.method} ${opts.url} (${lane}); ${wait ? `retrying in ${retryAfter}s` : `not waiting ${retryAfter}s here: the call fails and is retried later`}`);
          return wait;
        },
      },
    });
    const onApiError = this.options.onApiError;
    // Registered last, so it sees each request once, after the retry plugin gave up.
    octokit.hook.error('request', (error, options) => {
      if (classifyFailure(error).kind === 'aborted') throw error; // a shutdown, not a failure of the forge
      const url = typeof options.baseUrl === 'string' ? `${options.baseUrl}${options.url}` : options.url;
      if (onApiError) {
        const owner = options.owner;
        const name = options.repo;
        onApiError({
          forge: 'github',
          request: `${options.method} ${options.url}`,
          ...errorParts(error, url),
          ...(typeof owner === 'string' && typeof name === 'string' ? { repo: `${owner}/${name}` } : {}),
          willRetry: false,
        });
      } else {
        log.warn(`GitHub API ${options.method} ${options.url} failed (${lane}): ${describeError(error, url)}`);
      }
      throw error;
    });
    // Registered last, so outermost: a shutdown does not wait for a retry or a rate-limit wait
    // to end (the plugins' timers do not know the signal; fetch itself is aborted through it).
    if (signal) {
      octokit.hook.wrap('request', (request, options) => {
        if (signal.aborted) return Promise.reject(abortError(signal));
        return new Promise((resolve, reject) => {
          const onAbort = () => reject(abortError(signal));
          signal.addEventListener('abort', onAbort, { once: true });
          Promise.resolve(request(options))
            .then(resolve, reject)
            .finally(() => signal.removeEventListener('abort', onAbort));
        });
      });
    }
    return octokit;
  }
}
