/**
 * `forgevm serve` deletes job and console logs older than `logRetentionDays`, at start and then
 * on a timer, and says so in one log line.
 */
import { mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pruneLogs, startLogRetention } from '../src/log/log-retention.ts';
import { createLogger } from '../src/log/logger.ts';

const DAY = 24 * 60 * 60 * 1000;

/** A logs folder with files last written `age` days before `now`. */
function logsFolder(now: number, files: Record<string, number>): string {
  const dir = mkdtempSync(join(tmpdir(), 'forgevm-logs-'));
  for (const [name, ageDays] of Object.entries(files)) {
    writeFileSync(join(dir, name), 'step output\n');
    const at = new Date(now - ageDays * DAY);
    utimesSync(join(dir, name), at, at);
  }
  return dir;
}

describe('log retention', () => {
  it('deletes logs last written before the cutoff and keeps newer ones and folders', async () => {
    const now = Date.now();
    const dir = logsFolder(now, { '1-a.log': 45, 'j1-ab.console.log': 31, '2-b.log': 29, '3-c.log': 0 });
    mkdirSync(join(dir, 'not-a-log'));
    expect(await pruneLogs(dir, new Date(now - 30 * DAY))).toEqual(['1-a.log', 'j1-ab.console.log']);
    expect(readdirSync(dir).sort()).toEqual(['2-b.log', '3-c.log', 'not-a-log']);
    expect(await pruneLogs(join(dir, 'missing'), new Date(now))).toEqual([]);
  });

  it('prunes at start and again on its interval, with one line each time it deleted something', async () => {
    let now = Date.now();
    const dir = logsFolder(now, { 'old.log': 10, 'recent.log': 5 });
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (chunk: string) => void lines.push(chunk) } });
    const retention = startLogRetention({ dir, days: 7, log, intervalMs: 50, now: () => now });
    await retention.firstRound;
    expect(readdirSync(dir)).toEqual(['recent.log']);
    expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ kind: 'log_retention', removed: 1, days: 7, msg: `deleted 1 job logs older than 7 days from ${dir}` })]);
    now += 3 * DAY; // recent.log is now 8 days old
    await expect.poll(() => lines.length, { timeout: 5000 }).toBe(2);
    retention.stop();
    expect(readdirSync(dir)).toEqual([]);
    expect(JSON.parse(lines[1]!)).toMatchObject({ removed: 1 });
  });

  it('keeps everything when the retention is 0', async () => {
    const now = Date.now();
    const dir = logsFolder(now, { 'ancient.log': 3650 });
    const retention = startLogRetention({ dir, days: 0, log: createLogger({ level: 'silent' }), intervalMs: 10 });
    await retention.firstRound;
    await new Promise((r) => setTimeout(r, 50));
    retention.stop();
    expect(readdirSync(dir)).toEqual(['ancient.log']);
  });
});
