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
    await new Promise<void>((resolve) => {
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
