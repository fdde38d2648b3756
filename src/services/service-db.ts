/**
 * The SQLite database of one service (cache or artifacts), in its own folder. WAL, so a second
 * forgevm process on the same state folder (`forgevm run` beside `serve`) reads and writes it
 * safely; NORMAL sync, because a row lost to a power cut only forgets a cache entry or an
 * artifact whose file the next start sweeps away.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type ServiceDb = Database.Database;

export function openServiceDb(dir: string, name: string, schemaVersion: number, schema: string): ServiceDb {
  const db = new Database(join(dir, name));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const found = db.pragma('user_version', { simple: true }) as number;
    if (found > schemaVersion) {
      throw new Error(`${join(dir, name)} was written by a newer forgevm (schema ${found}, this one knows ${schemaVersion}): upgrade forgevm, or delete the folder to start the service afresh`);
    }
    db.exec(schema);
    db.pragma(`user_version = ${schemaVersion}`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
