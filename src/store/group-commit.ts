/**
 * Group commit for webhook deliveries, so that "2xx = on disk" stays affordable.
 *
 * With `synchronous=FULL`, every SQLite commit blocks the event loop on an fsync of the WAL
 * (2 ms typical here, 100+ ms at the tail under I/O load), and nothing queues up to share it.
 * Instead, deliveries are inserted on the main connection with `synchronous=NORMAL` for that
 * one transaction (in WAL mode: frames are written to the -wal file, no sync), and then the
 * -wal file is fdatasync'ed asynchronously on libuv's thread pool. A delivery's promise resolves
 * only after an fdatasync that *started after its commit* completed: from then on its frames
 * are on stable storage, which is exactly what FULL would have guaranteed (SQLite replays
 * valid WAL frames on open). Deliveries arriving in the same event-loop turn share one commit
 * and one sync; while a sync runs, new deliveries queue and are committed together as soon as
 * it completes (one commit + one sync per round), and the HTTP server never blocks on the disk.
 *
 * This relies on SQLite's documented WAL behaviour: a commit appends frames to the -wal file,
 * and the -wal file is not deleted while a connection (ours) stays open. The directory is
 * synced once, so the -wal file's own creation is durable.
 *
 * With `durable: false` (synchronous=NORMAL) a delivery is acknowledged once committed: it
 * survives a crash of forgevm (the data is in the kernel), and a background sync every
 * `backgroundSyncMs` bounds what a power loss or kernel crash can take to that last window.
 */
import { closeSync, openSync } from 'node:fs';
import { fdatasync, fsync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';

/** A row as the deliveries table wants it. */
export interface DeliveryRow {
  id: string;
  forge: string;
  event: string;
  action: string | null;
  dedupeKey: string | null;
  normalized: string;
  payload: string;
  receivedAt: string;
  status: string;
  updatedAt: string;
}

interface Waiting {
  row: DeliveryRow;
  resolve: (inserted: boolean) => void;
  reject: (error: Error) => void;
}

interface Committed {
  inserted: boolean;
  resolve: (inserted: boolean) => void;
  reject: (error: Error) => void;
}

const syncFd = (fd: number, data: boolean) =>
  new Promise<void>((resolve, reject) => (data ? fdatasync : fsync)(fd, (error) => (error ? reject(error) : resolve())));

export class DeliveryGroupCommit {
  readonly #walPath: string;
  readonly #durable: boolean;
  readonly #insert: Database.Statement;
  /**
   * Prepared once: `db.pragma()` and `db.transaction()` compile a statement / build a wrapper on
   * every call, which showed up in profiles at one flush per event-loop turn.
   */
  readonly #syncNormal: Database.Statement;
  readonly #syncRestore: Database.Statement;
  readonly #insertBatch: Database.Transaction<(batch: Waiting[]) => Array<boolean | Error>>;
  #queue: Waiting[] = [];
  #flushScheduled = false;
  /** Durable mode: fdatasyncs of committed deliveries still running. */
  #durableSyncs = 0;
  /** Committed, waiting for the next sync to start. */
  #needSync: Committed[] = [];
  #inFlight = 0;
  #idle: Array<() => void> = [];
  #walFd: number | null = null;
  #broken: Error | null = null;
  #commits = 0;
  #syncs = 0;
  #rows = 0;
  #syncMs = 0;
  #maxSyncMs = 0;

  #dirty = false;
  readonly #timer: NodeJS.Timeout | null = null;

  constructor(
    db: Database.Database,
    path: string,
    options: { durable: boolean; restoreSynchronous: 'FULL' | 'NORMAL'; backgroundSyncMs?: number },
  ) {
    this.#walPath = `${path}-wal`;
    this.#durable = options.durable;
    this.#insert = db.prepare(`
      INSERT OR IGNORE INTO deliveries
        (id, forge, event, action, dedupe_key, normalized, payload, received_at, status, updated_at)
      VALUES (@id, @forge, @event, @action, @dedupeKey, @normalized, @payload, @receivedAt, @status, @updatedAt)`);
    this.#syncNormal = db.prepare('PRAGMA synchronous = NORMAL');
    this.#syncRestore = db.prepare(`PRAGMA synchronous = ${options.restoreSynchronous}`);
    this.#insertBatch = db.transaction((batch: Waiting[]) =>
      batch.map((w) => {
        try {
          return this.#insert.run(w.row).changes === 1;
        } catch (error) {
          // A failed statement is rolled back alone; the rest of the batch still commits.
          return new Error(`store: could not store delivery ${w.row.id}: ${(error as Error).message}`);
        }
      }),
    );
    if (!this.#durable) {
      this.#timer = setInterval(() => this.#backgroundSync(), options.backgroundSyncMs ?? 100);
      this.#timer.unref();
    }
  }

  /** NORMAL mode: bound the power-loss window without making anyone wait. */
  #backgroundSync(): void {
    if (!this.#dirty || this.#inFlight > 0 || this.#broken) return;
    this.#dirty = false;
    this.#inFlight++;
    this.#syncs++;
    this.#syncWal()
      .catch(() => {
        this.#dirty = true; // try again next tick; nothing was promised on it
      })
      .finally(() => {
        this.#inFlight--;
        if (this.#inFlight === 0) for (const idle of this.#idle.splice(0)) idle();
      });
  }

  /** rows / syncs is the group-commit factor. */
  get stats(): { commits: number; syncs: number; rows: number; syncMs: number; maxSyncMs: number } {
    return { commits: this.#commits, syncs: this.#syncs, rows: this.#rows, syncMs: Math.round(this.#syncMs), maxSyncMs: Math.round(this.#maxSyncMs) };
  }

  /** False once a sync failed: what is on disk is unknown, so nothing more is acknowledged. */
  get healthy(): boolean {
    return this.#broken === null;
  }

  insert(row: DeliveryRow): Promise<boolean> {
    if (this.#broken) return Promise.reject(this.#broken);
    return new Promise((resolve, reject) => {
      this.#queue.push({ row, resolve, reject });
      // Durable mode, while a sync is running: let the queue grow; the sync's completion flushes
      // it (#kickSync). That sync bounds these deliveries' wait anyway (the kernel serialises
      // fdatasyncs of one file), and one commit for the whole queue costs far less CPU than one
      // per event-loop turn (~130 µs per commit vs ~60 µs per row measured here).
      if (this.#durable && this.#durableSyncs > 0) return;
      this.#scheduleFlush();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // setImmediate: deliveries that arrive in the same event-loop turn share the commit.
    setImmediate(() => this.#flush());
  }

  /** Commits everything queued in one transaction (no sync), then hands it to the syncer. */
  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    if (this.#broken) {
      for (const w of batch) w.reject(this.#broken);
      return;
    }
    let outcomes: Array<boolean | Error>;
    try {
      this.#syncNormal.run();
      outcomes = this.#insertBatch.immediate(batch);
    } catch (error) {
      for (const w of batch) w.reject(error as Error);
      return;
    } finally {
      this.#syncRestore.run();
    }
    this.#commits++;
    this.#rows += batch.length;
    this.#dirty = true;
    batch.forEach((w, i) => {
      const outcome = outcomes[i]!;
      if (outcome instanceof Error) w.reject(outcome);
      else if (!this.#durable) w.resolve(outcome);
      else this.#needSync.push({ inserted: outcome, resolve: w.resolve, reject: w.reject });
    });
    if (this.#durable) this.#kickSync();
  }

  /**
   * Starts a sync for everything committed so far. Normally one runs at a time (inserts queue
   * behind it, see insert()); only close() may start one while another is still running.
   */
  #kickSync(): void {
    if (this.#needSync.length === 0) return;
    const round = this.#needSync;
    this.#needSync = [];
    this.#syncs++;
    this.#inFlight++;
    this.#durableSyncs++;
    const done = this.#syncWal()
      .then(() => {
        for (const c of round) c.resolve(c.inserted);
      })
      .catch((error: Error) => {
        this.#broken ??= new Error(`store: could not sync ${this.#walPath} (${error.message}); deliveries are no longer acknowledged, restart forgevm`);
        // Their commits may or may not be on disk: do not acknowledge them (the forge sees a 500).
        for (const c of round) c.reject(this.#broken);
      })
      .finally(() => {
        this.#inFlight--;
        this.#durableSyncs--;
        // Commit (and then sync) what queued up while this sync ran.
        if (this.#durableSyncs === 0 && this.#queue.length > 0) this.#scheduleFlush();
        if (this.#inFlight === 0) for (const idle of this.#idle.splice(0)) idle();
      });
    void done;
  }

  async #syncWal(): Promise<void> {
    if (this.#walFd === null) {
      // Opened once; the -wal file stays the same file while our connection is open.
      this.#walFd = openSync(this.#walPath, 'r+');
      // Make the -wal file's directory entry durable, once.
      const dirFd = openSync(dirname(this.#walPath), 'r');
      try {
        await syncFd(dirFd, false);
      } finally {
        closeSync(dirFd);
      }
    }
    const started = performance.now();
    await syncFd(this.#walFd, true);
    const ms = performance.now() - started;
    this.#syncMs += ms;
    this.#maxSyncMs = Math.max(this.#maxSyncMs, ms);
  }

  /** Commits what is queued and waits for its sync. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#flush();
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    if (this.#walFd !== null) closeSync(this.#walFd);
    this.#walFd = null;
  }
}
