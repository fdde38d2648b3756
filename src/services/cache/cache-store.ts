/**
 * Cache entries with GitHub's semantics:
 *
 * - An entry is (repository, scope, key, version): the scope is the ref of the run that saved
 *   it, the version a hash of the paths and compression the client computed. A lookup matches
 *   the version exactly.
 * - Lookup walks the job's readable scopes in order (own ref, PR base, default branch); in each,
 *   the keys in order, each first exactly and then as a prefix (newest entry first).
 * - Saving reserves the key in the job's own scope, uploads chunks at offsets, then commits.
 *   A committed entry is immutable: reserving it again answers 409, as GitHub does.
 * - The total size is capped: committing evicts the least recently used entries (by last
 *   restore) until the rest fits. Entries unused for `unusedDays` go too. The bytes of uploads
 *   in progress are bounded by the same cap (so the folder holds at most twice the cap);
 *   abandoned ones (their job ended, or idle for an hour) are removed with their files.
 *
 * Metadata lives in SQLite next to the blobs; a blob is renamed into place only once complete.
 */
import type { Readable } from 'node:stream';
import { BlobFolder, BodyLengthError, ensureFile, fileSize, syncFile, writeAt } from '../blob-files.ts';
import { refuse, type Outcome } from '../outcome.ts';
import { openServiceDb, type ServiceDb } from '../service-db.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('reserved', 'committed')),
    -- cacheSize announced at reserve (the client sends it), or null
    declared_size INTEGER,
    -- the archive's size once committed
    size INTEGER,
    -- bytes written so far while reserved (what uploads in progress hold on disk)
    received INTEGER NOT NULL DEFAULT 0,
    -- the JobServices that reserved it
    owner TEXT NOT NULL,
    -- ms: reserved, then committed
    created_at INTEGER NOT NULL,
    -- ms: last chunk while reserved, last restore once committed (LRU)
    used_at INTEGER NOT NULL,
    UNIQUE (repo, scope, key, version)
  );
  CREATE INDEX IF NOT EXISTS entries_match ON entries (repo, scope, version, state, created_at);
  CREATE INDEX IF NOT EXISTS entries_lru ON entries (state, used_at);
  CREATE TABLE IF NOT EXISTS chunks (
    entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    first_byte INTEGER NOT NULL,
    last_byte INTEGER NOT NULL,
    PRIMARY KEY (entry_id, first_byte, last_byte)
  );
`;

/** GitHub's limits on keys (the client checks them too, the service must not rely on it). */
export const MAX_KEY_LENGTH = 512;
const MAX_VERSION_LENGTH = 512;
const MAX_LOOKUP_KEYS = 10;
/** A reservation with no chunk for this long is abandoned. */
const RESERVATION_IDLE_MS = 60 * 60 * 1000;

export interface CacheEntry {
  id: number;
  scope: string;
  key: string;
  version: string;
  size: number;
  createdAt: number;
}

export interface CacheStoreOptions {
  /** The cache's own folder: `cache.db`, `blobs/`, `parts/`. */
  dir: string;
  /** Total size of committed entries; also the largest entry. */
  maxBytes: number;
  /** Committed entries not restored for this many days are removed by prune(); 0 keeps them. */
  unusedDays: number;
  now?: () => number;
}

/** Who is asking: the job's repository, the scopes it may read, the one it may write. */
export interface CacheAccess {
  repo: string;
  readScopes: string[];
  writeScope: string | undefined;
  /** The JobServices id: reservations belong to the job that made them. */
  owner: string;
}

interface EntryRow {
  id: number;
  repo: string;
  scope: string;
  key: string;
  version: string;
  state: 'reserved' | 'committed';
  declared_size: number | null;
  size: number | null;
  owner: string;
  created_at: number;
  used_at: number;
}

export interface CachePruneReport {
  abandonedReservations: number;
  unusedEntries: number;
  strayFiles: number;
}

export class CacheStore {
  readonly maxBytes: number;
  #db: ServiceDb;
  #files: BlobFolder;
  #now: () => number;
  #unusedDays: number;
  /** Commits in progress: a second commit of the same upload waits for none, it is refused. */
  #committing = new Set<number>();

  private constructor(db: ServiceDb, files: BlobFolder, options: CacheStoreOptions) {
    this.#db = db;
    this.#files = files;
    this.maxBytes = options.maxBytes;
    this.#unusedDays = options.unusedDays;
    this.#now = options.now ?? Date.now;
  }

  static async open(options: CacheStoreOptions): Promise<CacheStore> {
    const files = new BlobFolder(options.dir);
    await files.create();
    const store = new CacheStore(openServiceDb(options.dir, 'cache.db', 1, SCHEMA), files, options);
    await store.#sweep();
    return store;
  }

  close(): void {
    this.#db.close();
  }

  /** The entry a restore gets, or undefined (a miss). Counts as a use for LRU. */
  lookup(access: CacheAccess, keys: string[], version: string): Outcome<{ entry?: CacheEntry }> {
    if (keys.length === 0 || keys.length > MAX_LOOKUP_KEYS) return refuse(400, `give 1 to ${MAX_LOOKUP_KEYS} keys, not ${keys.length}`);
    const bad = keys.map(checkKey).find(Boolean) ?? checkVersion(version);
    if (bad) return refuse(400, bad);
    const exact = this.#db.prepare<[string, string, string, string], EntryRow>(
      `SELECT * FROM entries WHERE repo = ? AND scope = ? AND version = ? AND state = 'committed' AND key = ?`,
    );
    // instr(), not LIKE: keys may contain % and _, which LIKE would treat as wildcards.
    const prefix = this.#db.prepare<[string, string, string, string], EntryRow>(
      `SELECT * FROM entries WHERE repo = ? AND scope = ? AND version = ? AND state = 'committed' AND instr(key, ?) = 1
       ORDER BY created_at DESC, id DESC LIMIT 1`,
    );
    for (const scope of access.readScopes) {
      for (const key of keys) {
        const row = exact.get(access.repo, scope, version, key) ?? prefix.get(access.repo, scope, version, key);
        if (row) {
          this.#touch(row.id);
          return { ok: true, entry: toEntry(row) };
        }
      }
    }
    return { ok: true };
  }

  /** Entries the job can read whose key is exactly `key`, any version (the client's diagnostics). */
  list(access: CacheAccess, key: string): CacheEntry[] {
    const rows = this.#db
      .prepare<[string, string], EntryRow>(`SELECT * FROM entries WHERE repo = ? AND key = ? AND state = 'committed' ORDER BY created_at DESC`)
      .all(access.repo, key);
    return rows.filter((row) => access.readScopes.includes(row.scope)).map(toEntry);
  }

  /** Start saving `key` in the job's own scope. */
  async reserve(access: CacheAccess, key: string, version: string, declaredSize: number | undefined): Promise<Outcome<{ id: number }>> {
    if (!access.writeScope) {
      return refuse(403, 'cache write denied: this job may restore caches but not save them (a pull request from a fork)');
    }
    const bad = checkKey(key) ?? checkVersion(version);
    if (bad) return refuse(400, bad);
    if (declaredSize !== undefined && declaredSize > this.maxBytes) {
      return refuse(400, `Cache size of ~${Math.round(declaredSize / 1024 ** 2)} MB (${declaredSize} B) is over the ${this.maxBytes} B limit of this forgevm (cache.maxBytes), not saving cache.`);
    }
    const scope = access.writeScope;
    const now = this.#now();
    let stale: number | undefined;
    const outcome = this.#db.transaction((): Outcome<{ id: number }> => {
      const existing = this.#db
        .prepare<[string, string, string, string], EntryRow>(`SELECT * FROM entries WHERE repo = ? AND scope = ? AND key = ? AND version = ?`)
        .get(access.repo, scope, key, version);
      if (existing?.state === 'committed') {
        return refuse(409, `Cache already exists. Scope: ${scope}, Key: ${key}, Version: ${version}`);
      }
      if (existing && existing.used_at > now - RESERVATION_IDLE_MS) {
        return refuse(409, `Cache ${key} is being saved by another job (scope ${scope}); entries are immutable, use a key that says what it holds.`);
      }
      if (existing) {
        stale = existing.id;
        this.#db.prepare(`DELETE FROM entries WHERE id = ?`).run(existing.id);
      }
      const result = this.#db
        .prepare(`INSERT INTO entries (repo, scope, key, version, state, declared_size, owner, created_at, used_at) VALUES (?, ?, ?, ?, 'reserved', ?, ?, ?, ?)`)
        .run(access.repo, scope, key, version, declaredSize ?? null, access.owner, now, now);
      return { ok: true, id: Number(result.lastInsertRowid) };
    }).immediate();
    if (stale !== undefined) await this.#files.removeUpload(stale);
    return outcome;
  }

  /** Write bytes first..last (inclusive) of a reservation. */
  async writeChunk(access: CacheAccess, id: number, first: number, last: number, body: Readable): Promise<Outcome> {
    const row = this.#reservation(access, id);
    if (!row.ok) return row;
    const limit = row.entry.declared_size ?? this.maxBytes;
    if (last >= limit) {
      return refuse(413, `bytes ${first}-${last} go past the ${limit} B ${row.entry.declared_size === null ? 'cache size limit (cache.maxBytes)' : 'size announced at reserve'}`);
    }
    const length = last - first + 1;
    // Uploads in progress may hold at most the cache's size on disk, besides the entries.
    const inFlight = this.#db.prepare<[], { total: number | null }>(`SELECT sum(received) AS total FROM entries WHERE state = 'reserved'`).get()!.total ?? 0;
    if (inFlight + length > this.maxBytes) {
      return refuse(429, `the cache uploads in progress already hold the cache's whole size (${this.maxBytes} B, cache.maxBytes); try again later`);
    }
    try {
      await writeAt(this.#files.part(id), first, length, body);
    } catch (error) {
      if (error instanceof BodyLengthError) return refuse(400, error.message);
      throw error;
    }
    // The job may have ended (and its reservation gone) while the bytes were arriving.
    const stillThere = this.#db
      .prepare(`UPDATE entries SET used_at = ?, received = received + ? WHERE id = ? AND state = 'reserved'`)
      .run(this.#now(), length, id).changes;
    if (stillThere === 0) {
      await this.#files.removeUpload(id);
      return refuse(404, `cache upload ${id} was abandoned while this chunk arrived`);
    }
    this.#db.prepare(`INSERT OR IGNORE INTO chunks (entry_id, first_byte, last_byte) VALUES (?, ?, ?)`).run(id, first, last);
    return { ok: true };
  }

  /** Finish a reservation whose chunks cover exactly bytes 0..size-1. */
  async commit(access: CacheAccess, id: number, size: number): Promise<Outcome<{ evicted: number }>> {
    if (this.#committing.has(id)) return refuse(409, `cache ${id} is being committed already`);
    this.#committing.add(id);
    try {
      return await this.#commit(access, id, size);
    } finally {
      this.#committing.delete(id);
    }
  }

  async #commit(access: CacheAccess, id: number, size: number): Promise<Outcome<{ evicted: number }>> {
    const row = this.#reservation(access, id);
    if (!row.ok) return row;
    if (row.entry.declared_size !== null && size !== row.entry.declared_size) {
      return refuse(400, `commit says ${size} B, but ${row.entry.declared_size} B were announced at reserve`);
    }
    if (size > this.maxBytes) return refuse(413, `${size} B is over the cache size limit (${this.maxBytes} B, cache.maxBytes)`);
    const chunks = this.#db
      .prepare<[number], { first_byte: number; last_byte: number }>(`SELECT first_byte, last_byte FROM chunks WHERE entry_id = ? ORDER BY first_byte`)
      .all(id);
    const gap = coverageProblem(chunks, size);
    if (gap) return refuse(400, `cannot commit cache ${id}: ${gap}`);
    const part = this.#files.part(id);
    if (size === 0) await ensureFile(part);
    if ((await fileSize(part)) !== size) return refuse(400, `cannot commit cache ${id}: the uploaded file is not ${size} B`);
    await syncFile(part);
    await this.#files.publish(part, id);
    const now = this.#now();
    const committed = this.#db
      .prepare(`UPDATE entries SET state = 'committed', size = ?, created_at = ?, used_at = ? WHERE id = ? AND state = 'reserved'`)
      .run(size, now, now, id).changes;
    if (committed === 0) {
      await this.#files.removeBlob(id);
      return refuse(404, `cache upload ${id} was abandoned before its commit`);
    }
    this.#db.prepare(`DELETE FROM chunks WHERE entry_id = ?`).run(id);
    return { ok: true, evicted: await this.#evictOverCap(id) };
  }

  /** The archive of a committed entry the job may read, for download. Counts as a use. */
  archive(access: CacheAccess, id: number): { path: string; size: number } | undefined {
    const row = this.#db.prepare<[number], EntryRow>(`SELECT * FROM entries WHERE id = ? AND state = 'committed'`).get(id);
    if (!row || row.repo !== access.repo || !access.readScopes.includes(row.scope)) return undefined;
    this.#touch(id);
    return { path: this.#files.blob(id), size: row.size ?? 0 };
  }

  /** Drop the unfinished uploads of a job that ended. */
  async abandon(owner: string): Promise<number> {
    const ids = this.#db
      .prepare<[string], { id: number }>(`SELECT id FROM entries WHERE owner = ? AND state = 'reserved'`)
      .all(owner)
      .map((r) => r.id);
    for (const id of ids) {
      this.#db.prepare(`DELETE FROM entries WHERE id = ? AND state = 'reserved'`).run(id);
      await this.#files.removeUpload(id);
    }
    return ids.length;
  }

  async prune(now = this.#now()): Promise<CachePruneReport> {
    const idle = this.#db
      .prepare<[number], { id: number }>(`SELECT id FROM entries WHERE state = 'reserved' AND used_at < ?`)
      .all(now - RESERVATION_IDLE_MS);
    for (const { id } of idle) {
      this.#db.prepare(`DELETE FROM entries WHERE id = ?`).run(id);
      await this.#files.removeUpload(id);
    }
    let unused: { id: number }[] = [];
    if (this.#unusedDays > 0) {
      unused = this.#db
        .prepare<[number], { id: number }>(`SELECT id FROM entries WHERE state = 'committed' AND used_at < ?`)
        .all(now - this.#unusedDays * 86_400_000);
      for (const { id } of unused) await this.#remove(id);
    }
    return { abandonedReservations: idle.length, unusedEntries: unused.length, strayFiles: await this.#sweep() };
  }

  /** Bytes held by committed entries. */
  totalBytes(): number {
    return this.#db.prepare<[], { total: number | null }>(`SELECT sum(size) AS total FROM entries WHERE state = 'committed'`).get()!.total ?? 0;
  }

  #reservation(access: CacheAccess, id: number): Outcome<{ entry: EntryRow }> {
    const row = this.#db.prepare<[number], EntryRow>(`SELECT * FROM entries WHERE id = ?`).get(id);
    // Another job's reservation answers exactly like a missing one: ids reveal nothing.
    if (!row || row.repo !== access.repo || row.scope !== access.writeScope || row.owner !== access.owner) {
      return refuse(404, `no cache upload ${id} reserved by this job`);
    }
    if (row.state !== 'reserved') return refuse(409, `cache ${id} is already committed; entries are immutable`);
    return { ok: true, entry: row };
  }

  #touch(id: number): void {
    this.#db.prepare(`UPDATE entries SET used_at = max(used_at, ?) WHERE id = ?`).run(this.#now(), id);
  }

  /** Least recently used first, never the entry just committed. */
  async #evictOverCap(keep: number): Promise<number> {
    let evicted = 0;
    while (this.totalBytes() > this.maxBytes) {
      const victim = this.#db
        .prepare<[number], { id: number }>(`SELECT id FROM entries WHERE state = 'committed' AND id != ? ORDER BY used_at ASC, id ASC LIMIT 1`)
        .get(keep);
      if (!victim) break;
      await this.#remove(victim.id);
      evicted++;
    }
    return evicted;
  }

  async #remove(id: number): Promise<void> {
    this.#db.prepare(`DELETE FROM entries WHERE id = ?`).run(id);
    // A download already streaming keeps its open file; the name goes now.
    await this.#files.removeBlob(id);
  }

  /** Remove files no row accounts for (a crash between a file operation and its row). */
  #sweep(): Promise<number> {
    const ids = (state: string) =>
      new Set(this.#db.prepare<[string], { id: number }>(`SELECT id FROM entries WHERE state = ?`).all(state).map((r) => r.id));
    const committed = ids('committed');
    const reserved = ids('reserved');
    return this.#files.sweep(
      (id) => committed.has(id),
      (id) => reserved.has(id),
    );
  }
}

function toEntry(row: EntryRow): CacheEntry {
  return { id: row.id, scope: row.scope, key: row.key, version: row.version, size: row.size ?? 0, createdAt: row.created_at };
}

function checkKey(key: string): string | undefined {
  if (key.length === 0) return 'a cache key must not be empty';
  if (key.length > MAX_KEY_LENGTH) return `a cache key must be at most ${MAX_KEY_LENGTH} characters (this one has ${key.length})`;
  if (key.includes(',')) return 'a cache key must not contain commas';
  return undefined;
}

function checkVersion(version: string): string | undefined {
  if (version.length === 0 || version.length > MAX_VERSION_LENGTH) return `a cache version must be 1 to ${MAX_VERSION_LENGTH} characters`;
  return undefined;
}

/** Why the chunks do not cover exactly 0..size-1, or undefined when they do. */
function coverageProblem(chunks: { first_byte: number; last_byte: number }[], size: number): string | undefined {
  let covered = 0; // bytes 0..covered-1 are written
  for (const chunk of chunks) {
    if (chunk.first_byte > covered) return `bytes ${covered}-${chunk.first_byte - 1} were never uploaded`;
    covered = Math.max(covered, chunk.last_byte + 1);
  }
  if (covered < size) return `bytes ${covered}-${size - 1} were never uploaded`;
  if (covered > size) return `chunks were uploaded past the committed size of ${size} B`;
  return undefined;
}
