/**
 * actions/cache inside forgevm: the real @actions/cache releases (4.x, 5.x, 6.x, the ones
 * actions/cache v4/v5 and setup-node/-python/-go bundle) save and restore through forgevm's
 * cache service, with GitHub's key matching, branch scoping, immutability and size cap.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobIdentity } from '../src/services/job-identity.ts';
import { RunnerServices } from '../src/services/runner-services.ts';
import { identity, listenForJob, runClient, type JobPort } from './support/services-harness.ts';

const MAJORS = ['actions-cache-4', 'actions-cache-5', 'actions-cache-6'] as const;
const LATEST = 'actions-cache-6';

let root: string;
let services: RunnerServices;
const ports: JobPort[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fvm-cache-'));
  services = await RunnerServices.open({ dir: join(root, 'services') });
});

afterAll(async () => {
  await Promise.all(ports.map((p) => p.close()));
  await services?.close();
  await rm(root, { recursive: true, force: true });
});

/** A job of the given identity, with a fresh workspace holding `files`. */
async function job(overrides: Partial<JobIdentity>, on: RunnerServices = services) {
  const port = await listenForJob(on.openJob(identity(overrides)));
  ports.push(port);
  const workspace = await mkdtemp(join(root, 'ws-'));
  return {
    workspace,
    async write(files: Record<string, string | Buffer>) {
      for (const [name, content] of Object.entries(files)) {
        await mkdir(join(workspace, name, '..'), { recursive: true });
        await writeFile(join(workspace, name), content);
      }
    },
    read: (name: string) => readFile(join(workspace, name), 'utf8').catch(() => undefined),
    save: (key: string, pkg: string = LATEST, paths = ['deps']) => runClient(pkg, 'save', { paths, key }, port.env, workspace),
    restore: (key: string, restoreKeys: string[] = [], pkg: string = LATEST, paths = ['deps']) =>
      runClient(pkg, 'restore', { paths, key, restoreKeys }, port.env, workspace),
  };
}

describe('saving and restoring with the real clients', () => {
  it.each(MAJORS)('%s saves a folder and restores it in another job, and misses an unknown key', async (pkg) => {
    const saver = await job({ jobId: `save-${pkg}` });
    await saver.write({ 'deps/a.txt': `made by ${pkg}\n`, 'deps/sub/b.bin': randomBytes(3000) });
    const saved = await saver.save(`deps-${pkg}-1`, pkg);
    expect(saved.ok, saved.output).toBe(true);
    expect(saved.result).toBeGreaterThan(0);

    const restorer = await job({ jobId: `restore-${pkg}` });
    const restored = await restorer.restore(`deps-${pkg}-1`, [], pkg);
    expect(restored, restored.output).toMatchObject({ ok: true, result: `deps-${pkg}-1` });
    expect(await restorer.read('deps/a.txt')).toBe(`made by ${pkg}\n`);

    const miss = await restorer.restore(`nothing-${pkg}`, ['nothing-either-'], pkg);
    expect(miss).toMatchObject({ ok: true, result: null });
  });

  it('restores with 6.x what 4.x saved (the version hash is the same)', async () => {
    const saver = await job({ jobId: 'old' });
    await saver.write({ 'deps/x': 'from 4.x' });
    expect((await saver.save('cross-major', 'actions-cache-4')).ok).toBe(true);
    const restorer = await job({ jobId: 'new' });
    expect((await restorer.restore('cross-major', [], 'actions-cache-6')).result).toBe('cross-major');
    expect(await restorer.read('deps/x')).toBe('from 4.x');
  });
});

describe('key matching', () => {
  it('matches the key exactly, then as a prefix, then each restore key in order, newest first', async () => {
    const saver = await job({ jobId: 'keys' });
    for (const key of ['npm-linux-aaa', 'npm-linux-bbb', 'npm-macos-ccc']) {
      await saver.write({ 'deps/which': key });
      expect((await saver.save(key)).ok).toBe(true);
    }
    const reader = await job({ jobId: 'keys-reader' });
    // Exact beats prefix, even when a newer entry shares the prefix.
    expect((await reader.restore('npm-linux-aaa')).result).toBe('npm-linux-aaa');
    // The primary key as a prefix: the newest entry that starts with it.
    expect((await reader.restore('npm-linux-')).result).toBe('npm-linux-bbb');
    // Restore keys in order: the first that matches anything wins, whatever is newer elsewhere.
    const fallback = await reader.restore('npm-linux-zzz', ['npm-windows-', 'npm-linux-a', 'npm-']);
    expect(fallback.result).toBe('npm-linux-aaa');
    expect(await reader.read('deps/which')).toBe('npm-linux-aaa');
    // Keys are case-sensitive and the version must match (other paths = another version).
    expect((await reader.restore('NPM-linux-aaa')).result).toBeNull();
    expect((await reader.restore('npm-linux-aaa', [], LATEST, ['other-path'])).result).toBeNull();
  });
});

describe('scopes, as on GitHub', () => {
  it('a branch reads its own entries, then the default branch; never another branch', async () => {
    const main = await job({ jobId: 'main', ref: 'refs/heads/main' });
    await main.write({ 'deps/v': 'main' });
    expect((await main.save('shared-key')).ok).toBe(true);
    expect((await main.save('main-only')).ok).toBe(true);

    const feature = await job({ jobId: 'feature', ref: 'refs/heads/feature' });
    await feature.write({ 'deps/v': 'feature' });
    expect((await feature.save('shared-key')).ok).toBe(true); // its own scope: no conflict with main's
    expect((await feature.save('feature-only')).ok).toBe(true);

    const featureAgain = await job({ jobId: 'feature-2', ref: 'refs/heads/feature' });
    expect((await featureAgain.restore('shared-key')).result).toBe('shared-key');
    expect(await featureAgain.read('deps/v')).toBe('feature'); // its own scope first
    expect((await featureAgain.restore('main-only')).result).toBe('main-only');

    const other = await job({ jobId: 'other', ref: 'refs/heads/other' });
    expect((await other.restore('feature-only')).result).toBeNull();
    expect((await other.restore('shared-key')).result).toBe('shared-key');
    expect(await other.read('deps/v')).toBe('main');
  });

  it("a pull request reads its base's and the default branch's entries, and never writes them", async () => {
    const release = await job({ jobId: 'rel', ref: 'refs/heads/release' });
    await release.write({ 'deps/v': 'release' });
    expect((await release.save('release-key')).ok).toBe(true);

    const pr = await job({ jobId: 'pr', ref: 'refs/pull/7/merge', baseRef: 'refs/heads/release' });
    expect((await pr.restore('release-key')).result).toBe('release-key');
    expect((await pr.restore('main-only')).result).toBe('main-only');
    await pr.write({ 'deps/v': 'pull request' });
    expect((await pr.save('release-key')).ok).toBe(true); // lands in refs/pull/7/merge, not in release
    expect((await pr.save('pr-key')).ok).toBe(true);

    const releaseAgain = await job({ jobId: 'rel-2', ref: 'refs/heads/release' });
    expect((await releaseAgain.restore('release-key')).result).toBe('release-key');
    expect(await releaseAgain.read('deps/v')).toBe('release');
    expect((await releaseAgain.restore('pr-key')).result).toBeNull();
    const mainAgain = await job({ jobId: 'main-2', ref: 'refs/heads/main' });
    expect((await mainAgain.restore('pr-key')).result).toBeNull();
    // The same pull request's next run reads what it saved.
    const prAgain = await job({ jobId: 'pr-2', runId: '101', ref: 'refs/pull/7/merge', baseRef: 'refs/heads/release' });
    expect((await prAgain.restore('pr-key')).result).toBe('pr-key');
  });

  it('a pull request from a fork restores but saves nothing, with either client generation', async () => {
    const before = services.cache.totalBytes();
    const fork = await job({ jobId: 'fork', ref: 'refs/pull/8/merge', baseRef: 'refs/heads/main', fork: true });
    expect((await fork.restore('main-only')).result).toBe('main-only');
    await fork.write({ 'deps/v': 'fork' });
    const modern = await fork.save('fork-key', 'actions-cache-6');
    expect(modern.result).toBe(-1);
    expect(modern.output).toMatch(/Cache save skipped: the effective cache-mode 'read' does not permit writes/);
    const older = await fork.save('fork-key', 'actions-cache-4');
    expect(older.result).toBe(-1);
    expect(older.output).toMatch(/cache write denied: this job may restore caches but not save them/);
    expect(services.cache.totalBytes()).toBe(before);
  });

  it('keeps repositories apart', async () => {
    const stranger = await job({ jobId: 'x', repo: 'someone/else' });
    expect((await stranger.restore('main-only')).result).toBeNull();
  });
});

describe('entries are immutable', () => {
  it('a second save of the same key is refused as on GitHub, and the first content stays', async () => {
    const first = await job({ jobId: 'imm-1' });
    await first.write({ 'deps/v': 'first' });
    expect((await first.save('immutable')).ok).toBe(true);
    const second = await job({ jobId: 'imm-2' });
    await second.write({ 'deps/v': 'second' });
    const again = await second.save('immutable');
    expect(again.result).toBe(-1);
    expect(again.output).toMatch(/Failed to save: Unable to reserve cache with key immutable, another job may be creating this cache\. More details: Cache already exists/);
    const reader = await job({ jobId: 'imm-3' });
    await reader.restore('immutable');
    expect(await reader.read('deps/v')).toBe('first');
  });

  it('two jobs saving the same key at once: one wins, the other is told another job is creating it', async () => {
    const jobs = await Promise.all([job({ jobId: 'race-1' }), job({ jobId: 'race-2' })]);
    await Promise.all(jobs.map((j, i) => j.write({ 'deps/v': `racer ${i}`, 'deps/pad': randomBytes(200_000) })));
    const results = await Promise.all(jobs.map((j) => j.save('raced')));
    const winners = results.filter((r) => (r.result as number) > 0);
    expect(winners).toHaveLength(1);
    const loser = results.find((r) => r.result === -1)!;
    expect(loser.output).toMatch(/another job may be creating this cache/);
    const reader = await job({ jobId: 'race-reader' });
    expect((await reader.restore('raced')).result).toBe('raced');
    expect(await reader.read('deps/v')).toMatch(/^racer [01]$/);
  });
});

describe('the size cap', () => {
  it('evicts the least recently restored entries, and refuses an entry larger than the cap', async () => {
    const small = await RunnerServices.open({ dir: join(root, 'small'), cacheMaxBytes: 160 * 1024 });
    try {
      const saver = await job({ jobId: 'lru' }, small);
      // Random bytes do not compress: each archive is a little over 60 KiB.
      for (const key of ['lru-a', 'lru-b']) {
        await saver.write({ 'deps/blob': randomBytes(60 * 1024) });
        expect((await saver.save(key)).ok).toBe(true);
      }
      expect((await saver.restore('lru-a')).result).toBe('lru-a'); // a is now more recent than b
      await saver.write({ 'deps/blob': randomBytes(60 * 1024) });
      expect((await saver.save('lru-c')).ok).toBe(true); // over the cap: b goes
      expect((await saver.restore('lru-b')).result).toBeNull();
      expect((await saver.restore('lru-a')).result).toBe('lru-a');
      expect((await saver.restore('lru-c')).result).toBe('lru-c');
      expect(small.cache.totalBytes()).toBeLessThanOrEqual(160 * 1024);

      await saver.write({ 'deps/blob': randomBytes(200 * 1024) });
      const tooBig = await saver.save('lru-huge');
      expect(tooBig.result).toBe(-1);
      expect(tooBig.output).toMatch(/over the 163840 B limit of this forgevm \(cache\.maxBytes\)/);
    } finally {
      await small.close();
    }
  });

  it('deletes entries nobody restored for cache.unusedDays, and keeps the ones in use', async () => {
    let clock = Date.now();
    const aging = await RunnerServices.open({ dir: join(root, 'aging'), cacheUnusedDays: 7, now: () => clock });
    try {
      const saver = await job({ jobId: 'age' }, aging);
      await saver.write({ 'deps/v': 'old' });
      expect((await saver.save('stale')).ok).toBe(true);
      expect((await saver.save('fresh')).ok).toBe(true);
      clock += 5 * 86_400_000;
      expect((await saver.restore('fresh')).result).toBe('fresh');
      clock += 3 * 86_400_000;
      expect((await aging.prune(clock)).cache.unusedEntries).toBe(1);
      expect((await saver.restore('stale')).result).toBeNull();
      expect((await saver.restore('fresh')).result).toBe('fresh');
    } finally {
      await aging.close();
    }
  });
});
