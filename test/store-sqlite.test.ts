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
