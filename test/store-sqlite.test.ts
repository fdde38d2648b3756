import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../src/store/sqlite.ts';
import { migrations } from '../src/store/migrations.ts';
import { delivery, describeStoreContract } from './support/store-contract.ts';

const dirs: string[] = [];
const dirOf = new WeakMap<object, string>();
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'forgevm-store-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describeStoreContract('sqlite', {
  async make() {
    const dir = freshDir();
    const store = new SqliteStore({ dir });
    dirOf.set(store, dir);
    return store;
  },
  async reopen(store) {
    const dir = dirOf.get(store)!;
    await store.close();
    const again = new SqliteStore({ dir });
    dirOf.set(again, dir);
    return again;
  },
});

describe('sqlite store on disk', () => {
  it('uses WAL with synchronous=FULL and records the schema version', async () => {
    const dir = freshDir();
    const store = new SqliteStore({ dir });
    expect(store.schemaVersion).toBe(migrations.at(-1)!.version);
    await store.close();
    const db = new Database(join(dir, 'forgevm.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT version FROM schema_version').all()).toEqual([{ version: migrations.at(-1)!.version }]);
    db.close();
  });

  it('keeps a delivery once insert resolved, across a reopen', async () => {
    const dir = freshDir();
    const store = new SqliteStore({ dir });
    await store.insertDelivery(delivery('kept'));
    // A second process opening the file sees the row without the first one closing.
    const reader = new Database(join(dir, 'forgevm.db'), { readonly: true });
    expect(reader.prepare('SELECT id FROM deliveries').all()).toEqual([{ id: 'kept' }]);
    reader.close();
    await store.close();
    const again = new SqliteStore({ dir });
    expect((await again.getDelivery('kept'))?.id).toBe('kept');
    expect(again.schemaVersion).toBe(migrations.at(-1)!.version);
    await again.close();
  });

  it('refuses a database from a newer forgevm with an actionable line', async () => {
    const dir = freshDir();
    const store = new SqliteStore({ dir });
    await store.close();
    const db = new Database(join(dir, 'forgevm.db'));
    db.prepare('UPDATE schema_version SET version = 999').run();
    db.close();
    expect(() => new SqliteStore({ dir })).toThrow(/schema version 999, newer than this forgevm knows/);
  });

  it('upgrades a database of schema 1, filling in each delivery\'s repository', async () => {
    const dir = freshDir();
    const db = new Database(join(dir, 'forgevm.db'));
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
    db.exec(migrations[0]!.sql);
    db.prepare('INSERT INTO schema_version (version) VALUES (1)').run();
    db.prepare(`INSERT INTO deliveries (id, forge, event, normalized, payload, received_at, status, updated_at) VALUES ('old', 'github', 'push', ?, '{}', '2026-01-01T00:00:00Z', 'pending', '2026-01-01T00:00:00Z')`).run(
      JSON.stringify({ kind: 'push', repo: { fullName: 'octo/legacy' } }),
    );
    db.close();
    const store = new SqliteStore({ dir });
    expect(store.schemaVersion).toBe(migrations.at(-1)!.version);
    expect(await store.getDelivery('old')).toMatchObject({ repo: 'octo/legacy', failures: 0, nextAttemptAt: null, lastError: null, payloadDeletedAt: null });
    expect((await store.claimNextDelivery())?.id).toBe('old');
    await store.close();
  });

  it('reports a store it cannot write to as unhealthy, with the reason, and healthy again after', async () => {
    const dir = freshDir();
    const store = new SqliteStore({ dir });
    expect(await store.health()).toEqual({ ok: true });
    // Another process holds the write lock: the probe cannot commit.
    const other = new Database(join(dir, 'forgevm.db'));
    other.exec('BEGIN IMMEDIATE');
    await new Promise((r) => setTimeout(r, 1_100)); // past the cached answer
    expect(await store.health()).toEqual({ ok: false, reason: 'store: a test write did not finish within 2000 ms (the database is locked or the disk is stalled)' });
    other.exec('ROLLBACK');
    other.close();
    await new Promise((r) => setTimeout(r, 4_000)); // the stuck probe gives up on the lock (busy timeout)
    expect(await store.health()).toEqual({ ok: true });
    // Less free disk than it needs.
    const picky = new SqliteStore({ dir: freshDir(), minFreeBytes: Number.MAX_SAFE_INTEGER });
    expect(await picky.health()).toEqual({ ok: false, reason: expect.stringMatching(/^store: only .* free in .*, less than the .* deliveries need; free some space$/) });
    await picky.close();
    await store.close();
  }, 20_000);

  it('answers ping false once closed', async () => {
    const store = new SqliteStore({ dir: freshDir() });
    await store.close();
    expect(await store.ping()).toBe(false);
    await expect(store.insertDelivery(delivery('late'))).rejects.toThrow(/closed/);
  });
});

describe('acknowledged deliveries survive a killed process', () => {
  it.each(['FULL', 'NORMAL'] as const)('synchronous=%s: every insert that resolved is there after SIGKILL', async (synchronous) => {
    const dir = freshDir();
    const storeUrl = new URL('../src/store/sqlite.ts', import.meta.url).href;
    // The child acknowledges each insert on stdout as a webhook 2xx would, and is killed mid-stream.
    const script = `
      import { SqliteStore } from ${JSON.stringify(storeUrl)};
      const store = new SqliteStore({ dir: ${JSON.stringify(dir)}, synchronous: ${JSON.stringify(synchronous)} });
      const normalized = { kind: 'push' };
      for (let i = 0; ; i++) {
        const batch = Array.from({ length: 5 }, (_, j) => 'd' + (i * 5 + j));
        await Promise.all(batch.map((id) => store.insertDelivery({ id, forge: 'github', event: 'push', normalized, payload: '{}' })
          .then(() => process.stdout.write(id + '\\n'))));
      }`;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked: string[] = [];
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the writing process exited (${code}) after ${acked.length} acknowledgements`)));
      let buffer = '';
      child.stdout.on('data', (d: Buffer) => {
        buffer += d.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        acked.push(...lines);
        if (acked.length >= 200 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    const store = new SqliteStore({ dir });
    for (const id of acked) expect(await store.getDelivery(id), id).not.toBeNull();
    expect(await store.countDeliveries()).toBeGreaterThanOrEqual(acked.length);
    await store.close();
  });

  it('group-commits concurrent deliveries into few syncs under FULL, and syncs in the background under NORMAL', async () => {
    const full = new SqliteStore({ dir: freshDir(), synchronous: 'FULL' });
    await Promise.all(Array.from({ length: 50 }, (_, i) => full.insertDelivery(delivery(`g${i}`))));
    expect(full.deliveryWriterStats.rows).toBe(50);
    expect(full.deliveryWriterStats.syncs).toBeGreaterThanOrEqual(1);
    expect(full.deliveryWriterStats.syncs).toBeLessThan(50);
    await full.close();
    const normal = new SqliteStore({ dir: freshDir(), synchronous: 'NORMAL' });
    await normal.insertDelivery(delivery('n1'));
    expect(normal.deliveryWriterStats.syncs).toBe(0);
    await new Promise((r) => setTimeout(r, 350));
    expect(normal.deliveryWriterStats.syncs).toBeGreaterThanOrEqual(1);
    await normal.close();
  });
});

describe('the delivery writer thread', () => {
  const runScript = async (script: string): Promise<{ code: number | null; stdout: string; ms: number }> => {
    const { spawn } = await import('node:child_process');
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stdout, ms: performance.now() - started };
  };
  const storeUrl = new URL('../src/store/sqlite.ts', import.meta.url).href;

  it('keeps a process alive while an insert waits for it, and never after', async () => {
    const dir = freshDir();
    // Nothing but the insert keeps this process alive; the store is deliberately never closed.
    const result = await runScript(`
      import { SqliteStore } from ${JSON.stringify(storeUrl)};
      const store = new SqliteStore({ dir: ${JSON.stringify(dir)} });
      const results = await Promise.all(['a', 'b', 'a'].map((id) =>
        store.insertDelivery({ id, forge: 'github', event: 'push', normalized: { kind: 'push' }, payload: Buffer.from('{}') })));
      console.log(JSON.stringify(results));`);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([{ inserted: true }, { inserted: true }, { inserted: false }]);
    expect(result.ms).toBeLessThan(20_000);
  });

  it('rejects inserts with an actionable line when the thread cannot store anything', async () => {
    const { DeliveryWriter } = await import('../src/store/delivery-writer.ts');
    // A database without the deliveries table: the thread fails as it starts.
    const path = join(freshDir(), 'empty.db');
    new Database(path).close();
    const writer = new DeliveryWriter({ path, durable: true });
    const row = { id: 'x', forge: 'github', event: 'push', action: null, dedupeKey: null, normalized: '{}', repo: null, payload: '{}', receivedAt: '', status: 'pending', updatedAt: '' };
    await expect(writer.insert(row)).rejects.toThrow(/^store: the delivery writer thread failed: .*no such table: deliveries.*; restart forgevm$/);
    expect(writer.healthy).toBe(false);
    await expect(writer.insert(row)).rejects.toThrow(/restart forgevm/);
    await writer.close();
  });

  it('checkpoints on its own thread: the WAL stays small under a long stream of deliveries', async () => {
    const dir = freshDir();
    const store = new SqliteStore({ dir });
    const payload = JSON.stringify({ filler: 'x'.repeat(8000) });
    for (let i = 0; i < 30; i++) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => store.insertDelivery(delivery(`w${i}-${j}`, { payload }))));
    }
    // 1500 deliveries wrote ~12 MB of pages; SQLite's automatic checkpoint (1000 pages) on the
    // writer thread keeps restarting the WAL instead of letting it grow.
    const { statSync } = await import('node:fs');
    expect(statSync(join(dir, 'forgevm.db-wal')).size).toBeLessThan(8 * 1024 * 1024);
    expect(await store.countDeliveries()).toBe(1500);
    await store.close();
  });
});
