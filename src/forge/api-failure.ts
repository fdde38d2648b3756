/**
 * What kind of failure an error is, for deciding whether to try again: a forge that is down or
 * overloaded (network errors, 5xx, 429 and rate limits) is worth waiting for; a 404, a 422 or a
 * workflow that does not parse is not, and retrying it only delays the honest answer.
 *
 * Works on the errors forgevm's clients throw: Octokit's RequestError (`status`, `response`;
 * a network error is a status 500 without a response, its cause being fetch's TypeError),
 * ForgejoApiError (`status`, 0 for a network error), and Node's system errors (`code`).
 */

export type Failure =
  /** Stopped on purpose (shutdown): neither a failure nor a retry. */
  | { kind: 'aborted'; reason: string }
  /** Try again later; `retryAfterMs` when the forge said how long to wait. */
  | { kind: 'transient'; reason: string; retryAfterMs?: number }
  | { kind: 'permanent'; reason: string };

/** Socket and DNS errors that say the other side is unreachable for now. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** A rate limit that names no time to wait: GitHub asks for at least a minute. */
const RATE_LIMIT_WAIT_MS = 60_000;

interface ErrorShape {
  name?: string;
  message?: string;
  code?: string;
  status?: number;
  cause?: unknown;
  response?: { status?: number; headers?: Record<string, string | undefined> };
  request?: { url?: string };
}

function shape(error: unknown): ErrorShape {
  return typeof error === 'object' && error !== null ? (error as ErrorShape) : { message: String(error) };
}

/** The error and its causes, outermost first (bounded: cause chains can loop). */
function chain(error: unknown): ErrorShape[] {
  const out: ErrorShape[] = [];
  for (let e: unknown = error; e !== undefined && e !== null && out.length < 8; e = shape(e).cause) out.push(shape(e));
  return out;
}

function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]!.trim();
}

/** The system error code somewhere in the chain (ECONNREFUSED…), if any. */
export function networkCode(error: unknown): string | undefined {
  return chain(error).find((e) => typeof e.code === 'string' && (TRANSIENT_CODES.has(e.code) || e.code.startsWith('E')))?.code;
}

/**
 * One line for a network failure: what could not be reached and the system's reason, e.g.
 * `network error reaching 127.0.0.1:4567: connect ECONNREFUSED 127.0.0.1:4567`. Undefined when
 * the error is not a network failure (it had an HTTP response).
 */
export function describeNetworkError(error: unknown, url?: string): string | undefined {
  const links = chain(error);
  if (links[0]?.response !== undefined) return undefined;
  const code = networkCode(error);
  const fetchFailed = links.some((e) => e.name === 'TypeError' && /fetch failed/i.test(e.message ?? ''));
  if (!code && !fetchFailed) return undefined;
  // The innermost message names the address (`connect ECONNREFUSED 127.0.0.1:4567`).
  const detail = firstLine([...links].reverse().find((e) => firstLine(e.message) !== '')?.message) || code || 'fetch failed';
  let host = '';
  try {
    if (url) host = ` ${new URL(url).host}`;
  } catch {
    // a relative or odd URL: the detail still says what failed
  }
  return `network error reaching${host || ' the forge'}: ${detail}${code && !detail.includes(code) ? ` (${code})` : ''}`;
}

function isAbort(error: ErrorShape): boolean {
  return error.name === 'AbortError' || error.code === 'ABORT_ERR';
}

/** Milliseconds the response asks us to wait (`retry-after`, or a spent rate limit's reset), if any. */
function waitAsked(headers: Record<string, string | undefined> | undefined, now: number): number | undefined {
  if (!headers) return undefined;
  const retryAfter = headers['retry-after'];
  if (retryAfter !== undefined && retryAfter !== '') {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  if (headers['x-ratelimit-remaining'] === '0') {
    const reset = Number(headers['x-ratelimit-reset']);
    if (Number.isFinite(reset)) return Math.max(0, reset * 1000 - now) + 1000;
  }
  return undefined;
}

function isRateLimit(error: ErrorShape): boolean {
  const headers = error.response?.headers;
  return headers?.['x-ratelimit-remaining'] === '0' || headers?.['retry-after'] !== undefined || /rate limit/i.test(error.message ?? '');
}

export function classifyFailure(error: unknown, now: number = Date.now()): Failure {
  const links = chain(error);
  const top = links[0] ?? {};
  const reason = describeNetworkError(error) ?? (firstLine(top.message) || 'unknown error');
  if (links.some(isAbort)) return { kind: 'aborted', reason };
  for (const e of links) {
    const status = e.response?.status ?? e.status;
    if (typeof status === 'number' && status > 0) {
      // Octokit reports a network error as a 500 without a response: that is the network case below.
      if (status === 500 && e.response === undefined && describeNetworkError(e) !== undefined) break;
      const retryAfterMs = waitAsked(e.response?.headers, now);
      const wait = retryAfterMs !== undefined ? { retryAfterMs } : {};
      if (status >= 500 || status === 408) return { kind: 'transient', reason, ...wait };
      // GitHub answers 403 (or 429) for primary and secondary rate limits; without a time to wait
      // for, its documentation asks for at least a minute.
      if (status === 429 || (status === 403 && isRateLimit(e))) return { kind: 'transient', reason, retryAfterMs: retryAfterMs ?? RATE_LIMIT_WAIT_MS };
      return { kind: 'permanent', reason };
    }
    if (e.status === 0) return { kind: 'transient', reason }; // ForgejoApiError: no response at all
  }
  if (describeNetworkError(error) !== undefined) return { kind: 'transient', reason };
  return { kind: 'permanent', reason };
}
