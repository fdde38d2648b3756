/**
 * forgevm's service log: pino, one JSON line per event. The helpers below fix the shape of the
 * three lines operators grep for (a delivery, a job state change, a forge API error), so every
 * caller writes the same keys.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/config.ts';

export type { Logger };

export interface LoggerOptions {
  level: LogLevel;
  /** Default: stdout. Tests pass a stream to read the lines. */
  destination?: DestinationStream;
  /** Extra fields on every line, e.g. `{ component: 'worker' }`. */
  base?: Record<string, unknown>;
}

/**
 * Where a secret could sit in something logged by mistake: the settings themselves, a config
 * object or one of its forge sections, and a request's headers. Exact paths on purpose: pino's
 * `*` wildcard paths cost ~15 µs on *every* line (measured), more than the rest of a line.
 */
const SECRET_KEYS = ['privateKey', 'token', 'webhookSecret', 'secret'];
const SECRET_PATHS = [
  ...['', 'github.', 'forgejo.', 'config.github.', 'config.forgejo.'].flatMap((prefix) => SECRET_KEYS.map((key) => prefix + key)),
  'headers.authorization',
  'request.headers.authorization',
  'err.request.headers.authorization',
];

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { name: 'forgevm', ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Secrets must never reach the log, even when an object carrying them is logged by mistake.
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
    },
    // Synchronous writes: a line is in the kernel before the call returns, so a crash loses no
    // log line, and there is no hand-off to libuv's thread pool per line (which the WAL syncs
    // also use; that hand-off cost more than the line itself under load).
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export interface DeliveryLogLine {
  forge: 'github' | 'forgejo';
  delivery: string;
  event: string;
  action?: string | null;
  repo?: string;
  /**
   * stored (202), duplicate (200), requeued (202: a redelivery of one that failed or waits for
   * its retry), ignored (202), rejected (4xx, or 503 when the intake is full).
   */
  outcome: 'stored' | 'duplicate' | 'requeued' | 'ignored' | 'rejected';
  status: number;
  /** Why it was ignored or rejected. */
  reason?: string;
  ms?: number;
}

export function logDelivery(log: Logger, line: DeliveryLogLine): void {
  const level = line.outcome === 'rejected' ? 'warn' : 'info';
  log[level]({ kind: 'delivery', ...line }, `delivery ${line.delivery} ${line.forge}/${line.event}${line.action ? `.${line.action}` : ''}: ${line.outcome}${line.reason ? ` (${line.reason})` : ''}`);
}

export interface JobStateLogLine {
  job: number;
  run: number;
  repo: string;
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: string | null;
  /** One-line error, when the job failed outside any step. */
  error?: string | null;
}

export function logJobState(log: Logger, line: JobStateLogLine): void {
  const level = line.error ? 'warn' : 'info';
  log[level]({ kind: 'job', ...line }, `job ${line.job} ${line.repo} "${line.name}": ${line.status}${line.conclusion ? ` (${line.conclusion})` : ''}`);
}

export interface ForgeApiErrorLogLine {
  forge: 'github' | 'forgejo';
  /** e.g. `POST /repos/{owner}/{repo}/check-runs`. */
  request: string;
  status?: number;
  repo?: string;
  /** The forge's message, one line. */
  message: string;
  /** Whether the caller will retry. */
  willRetry?: boolean;
}

export function logForgeApiError(log: Logger, line: ForgeApiErrorLogLine): void {
  log.error(
    { kind: 'forge_api_error', ...line },
    `${line.forge} API ${line.request} failed${line.status ? ` with ${line.status}` : ''}: ${line.message.split('\n')[0]}${line.willRetry ? ' (will retry)' : ''}`,
  );
}
