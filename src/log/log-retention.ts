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

export interface LogRetention {
  /** The first prune, started at once. */
  firstRound: Promise<void>;
  stop(): void;
}

/** Prunes now and then every `intervalMs` (default 6 h); `days` 0 keeps everything. */
export function startLogRetention(options: { dir: string; days: number; log: Logger; intervalMs?: number; now?: () => number }): LogRetention {
  const { dir, days, log } = options;
  if (days === 0) return { firstRound: Promise.resolve(), stop: () => undefined };
  const now = options.now ?? Date.now;
  const round = async () => {
    const removed = await pruneLogs(dir, new Date(now() - days * DAY_MS));
    if (removed.length > 0) log.info({ kind: 'log_retention', removed: removed.length, days }, `deleted ${removed.length} job logs older than ${days} days from ${dir}`);
  };
  const timer = setInterval(() => void round(), options.intervalMs ?? 6 * 60 * 60 * 1000);
  timer.unref();
  return { firstRound: round(), stop: () => clearInterval(timer) };
}
