/**
 * Log retention for `forgevm serve`: job logs and console logs pile up in `<state>/logs`, one or
 * two files per job, for as long as the server runs. Files last written more than the retention
 * period ago are deleted at start and then every few hours. A running job's log is written to
 * as the job runs, so it is never that old.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from './logger.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Deletes the regular files in `dir` last modified before `olderThan`; returns their names. */
export async function pruneLogs(dir: string, olderThan: Date): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return []; // no logs yet
  }
  const removed: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const info = await stat(path);
      if (!info.isFile() || info.mtime >= olderThan) continue;
      await unlink(path);
      removed.push(name);
    } catch {
      // gone meanwhile, or not ours to delete: the next round looks again
    }
  }
  return removed.sort();
}

export interface Retention {
  /** The first prune, started at once. */
  firstRound: Promise<void>;
  stop(): void;
}

export interface RetentionOptions {
  /** 0 keeps everything: no round ever runs. */
  days: number;
  /** Default 6 h. */
  intervalMs?: number;
  now?: () => number;
}

/** Runs `round` with the cutoff (now − days) at once and then every `intervalMs`. */
export function startRetention(options: RetentionOptions, round: (olderThan: Date) => Promise<void>): Retention {
  const { days } = options;
  if (days === 0) return { firstRound: Promise.resolve(), stop: () => undefined };
  const now = options.now ?? Date.now;
  const run = () => round(new Date(now() - days * DAY_MS));
  const timer = setInterval(() => void run().catch(() => undefined), options.intervalMs ?? 6 * 60 * 60 * 1000);
  timer.unref();
  return { firstRound: run(), stop: () => clearInterval(timer) };
}

/** Prunes now and then every `intervalMs` (default 6 h); `days` 0 keeps everything. */
export function startLogRetention(options: RetentionOptions & { dir: string; log: Logger }): Retention {
  const { dir, days, log } = options;
  return startRetention(options, async (olderThan) => {
    const removed = await pruneLogs(dir, olderThan);
    if (removed.length > 0) log.info({ kind: 'log_retention', removed: removed.length, days }, `deleted ${removed.length} job logs older than ${days} days from ${dir}`);
  });
}
