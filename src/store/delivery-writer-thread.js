// @ts-check
/**
 * The thread side of delivery-writer.ts: a second SQLite connection that stores webhook
 * deliveries, so that the insert, the commit, the WAL sync and SQLite's checkpoints never run
 * on the event loop that answers webhooks.
 *
 * Group commit falls out of the thread model: while this thread is busy committing or syncing,
 * deliveries queue up in its message port, and the next round takes all of them in one
 * transaction and one sync.
 *
 * Durable mode ("2xx = on disk"): the transaction commits with synchronous=NORMAL (in WAL
 * mode: frames appended to the -wal file, no sync, write lock released at once), then the -wal
 * file is fdatasync'ed and only then are the deliveries acknowledged. From then on their frames
 * are on stable storage, which is what synchronous=FULL guarantees (SQLite replays valid WAL
 * frames on open), but other writers (the main connection) never wait behind our disk. The
 * -wal file is the same file while a connection is open, and its directory entry is synced once.
 *
 * Non-durable mode (FORGEVM_STORE_SYNC=normal): acknowledged at commit (a crash of forgevm
 * loses nothing, the data is in the kernel); a sync every BACKGROUND_SYNC_MS (100 ms) bounds what a power
 * loss can take.
 *
 * Plain JavaScript on purpose: on Node 20 a worker thread does not inherit tsx's loader, and
 * this file needs nothing but better-sqlite3.
 *
 * Messages in (parentPort): { rows, ids } (a batch from the main thread), { probe, at } (a
 * health check: one small write, committed and synced like a delivery), 'close'.
 * Messages out (workerData.replies): { ids, results, stats } once the batch is committed (and
 * synced if durable), { probe, result: true | reason, stats } for a probe, { stats } after a
 * background sync, { fatal, stats } when the disk failed.
 */
import { closeSync, fdatasyncSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** @typedef {import('./delivery-writer.ts').DeliveryRow} DeliveryRow */
/** @typedef {import('./delivery-writer.ts').WriterStats} WriterStats */
/** @typedef {import('./delivery-writer.ts').WriterThreadOptions} WriterThreadOptions */

const options = /** @type {WriterThreadOptions} */ (workerData);
/** Non-durable mode: how often the WAL is synced in the background. */
const BACKGROUND_SYNC_MS = 100;
/** How often the main connection's own writes are checkpointed when no deliveries arrive. */
const IDLE_CHECKPOINT_MS = 10_000;
const inbox = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);
/** Answers go through their own channel, which the main thread can also read synchronously. */
const replies = options.replies;

/**
 * Opens the connection and prepares the insert. A failure is rethrown as a plain Error: the
 * thread's error reaches the main thread through structured clone, which keeps the message of
 * an Error but not of better-sqlite3's SqliteError subclass.
 */
function open() {
  try {
    const db = new Database(options.path);
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    const insert = db.prepare(`
      INSERT OR IGNORE INTO deliveries
        (id, forge, event, action, dedupe_key, normalized, repo, payload, received_at, status, updated_at)
      VALUES (@id, @forge, @event, @action, @dedupeKey, @normalized, @repo, @payload, @receivedAt, @status, @updatedAt)`);
    const probeWrite = db.prepare('INSERT INTO health_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at');
    return { db, insert, probeWrite };
  } catch (error) {
    throw new Error(/** @type {Error} */ (error).message);
  }
}
const { db, insert, probeWrite } = open();
const insertBatch = db.transaction(
  /** @param {DeliveryRow[]} rows */
  (rows) =>
    rows.map((row) => {
      try {
        return insert.run(row).changes === 1;
      } catch (error) {
        // A failed statement is rolled back alone; the rest of the batch still commits.
        return `store: could not store delivery ${row.id}: ${/** @type {Error} */ (error).message}`;
      }
    }),
);

/** @type {WriterStats} */
const stats = { commits: 0, syncs: 0, rows: 0, syncMs: 0, maxSyncMs: 0, commitMs: 0, maxCommitMs: 0, slowCommits: 0 };
/** @type {Array<{ rows: DeliveryRow[]; ids: number[] }>} */
let pending = [];
let flushScheduled = false;
let dirty = false;
/** @type {number | null} */
let walFd = null;
/** Set when a sync failed: what is on disk is unknown, so nothing more is acknowledged. */
let broken = /** @type {string | null} */ (null);

function syncWal() {
  if (walFd === null) {
    // The -wal file exists once something was committed; opened once, it stays the same file.
    walFd = openSync(`${options.path}-wal`, 'r+');
    const dirFd = openSync(dirname(options.path), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
  const started = performance.now();
  fdatasyncSync(walFd);
  const ms = performance.now() - started;
  stats.syncs++;
  stats.syncMs += ms;
  stats.maxSyncMs = Math.max(stats.maxSyncMs, ms);
}

function flush() {
  flushScheduled = false;
  const batches = pending;
  pending = [];
  if (batches.length === 0) return;
  const rows = batches.flatMap((b) => b.rows);
  const ids = batches.flatMap((b) => b.ids);
  if (broken) {
    replies.postMessage({ ids, results: ids.map(() => broken), stats });
    return;
  }
  /** @type {Array<boolean | string>} */
  let results;
  const started = performance.now();
  try {
    // SQLite's automatic checkpoint, when due, runs inside this call (after the commit).
    results = insertBatch.immediate(rows);
  } catch (error) {
    const message = `store: could not commit ${rows.length} deliveries: ${/** @type {Error} */ (error).message}`;
    replies.postMessage({ ids, results: ids.map(() => message), stats });
    return;
  }
  const ms = performance.now() - started;
  stats.commits++;
  stats.rows += rows.length;
  stats.commitMs += ms;
  stats.maxCommitMs = Math.max(stats.maxCommitMs, ms);
  if (ms > 5) stats.slowCommits++;
  dirty = true;
  if (options.durable) {
    try {
      syncWal();
      dirty = false;
    } catch (error) {
      broken = `store: could not sync ${options.path}-wal (${/** @type {Error} */ (error).message}); deliveries are no longer acknowledged, restart forgevm`;
      // These commits may or may not be on disk: do not acknowledge them (the forge sees a 500).
      replies.postMessage({ ids, results: ids.map(() => broken), stats });
      replies.postMessage({ fatal: broken, stats });
      return;
    }
  }
  replies.postMessage({ ids, results, stats });
}

const timer = options.durable
  ? null
  : setInterval(() => {
      if (!dirty || broken) return;
      dirty = false;
      try {
        syncWal();
        replies.postMessage({ stats });
      } catch {
        dirty = true; // try again next tick; nothing was promised on it
      }
    }, BACKGROUND_SYNC_MS);

// The main connection never checkpoints (it must not block the event loop); this connection
// checkpoints automatically when its commits grow the WAL past 1000 pages, and this timer
// covers the main connection's own writes when no deliveries arrive. A PASSIVE checkpoint with
// nothing to copy costs nothing.
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const checkpointTimer = setInterval(() => {
  try {
    checkpoint.get();
  } catch {
    // busy or failing: the next round or the next commit tries again
  }
}, IDLE_CHECKPOINT_MS);
checkpointTimer.unref();

/**
 * A health probe: the same commit (and sync, when durable) a delivery gets. Its failure is an
 * answer, not a fatal error: a full disk may have room again later.
 * @param {{ probe: number; at: string }} message
 */
function probe(message) {
  /** @type {true | string} */
  let result = true;
  if (broken) result = broken;
  else {
    try {
      db.transaction(() => probeWrite.run(message.at)).immediate();
      dirty = true;
      if (options.durable) {
        syncWal();
        dirty = false;
      }
    } catch (error) {
      result = `store: cannot write to ${options.path}: ${/** @type {Error} */ (error).message}`;
    }
  }
  replies.postMessage({ probe: message.probe, result, stats });
}

inbox.on('message', (message) => {
  if (typeof message === 'object' && message !== null && 'probe' in message) {
    probe(message);
    return;
  }
  if (message === 'close') {
    if (timer) clearInterval(timer);
    clearInterval(checkpointTimer);
    flush();
    if (walFd !== null) closeSync(walFd);
    db.close();
    replies.close();
    inbox.close();
    return;
  }
  pending.push(message);
  if (!flushScheduled) {
    flushScheduled = true;
    // Every batch that reached the port by now (all that queued while we were busy) shares
    // this commit and its sync.
    setImmediate(flush);
  }
});
