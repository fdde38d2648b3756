/**
 * Stores webhook deliveries on a thread of their own (delivery-writer-thread.js), so that
 * "2xx = on disk" stays affordable.
 *
 * Storing a delivery is a ~9 kB insert, a commit, an fdatasync of the WAL, and now and then a
 * checkpoint that copies the WAL into the database and fsyncs both. On the event loop, that was
 * the largest cost per webhook (a checkpoint alone was two thirds of the insert time, measured),
 * and every request queued behind it. Here the event loop only posts the row and waits for the
 * answer; the thread commits in groups (see its header for why a 2xx still means "on disk").
 *
 * Rows posted in the same event-loop turn travel in one message. Answers come back on a channel
 * of their own, which `insert()` also reads synchronously: under load one event-loop turn works
 * through many requests, and answers that waited for the next turn held every one of their 2xx
 * back until the whole turn was done. The connections then bunched up into waves, and the
 * event loop, the writer and the forge's side took turns instead of working at once (measured
 * with bench:ingest: reading answers mid-turn raised throughput from 0.79 to ~0.84 of Probot's).
 *
 * The thread and the answer channel keep the process alive only while an insert is waiting.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

/** A row as the deliveries table wants it. */
export interface DeliveryRow {
  id: string;
  forge: string;
  event: string;
  action: string | null;
  dedupeKey: string | null;
  normalized: string;
  /** `owner/name`, null for events about no repository. */
  repo: string | null;
  /** Bytes are stored as a BLOB, text as TEXT; both read back as text. */
  payload: string | Uint8Array;
  receivedAt: string;
  status: string;
  updatedAt: string;
}

/** rows / commits is the group-commit factor. */
export interface WriterStats {
  commits: number;
  syncs: number;
  rows: number;
  syncMs: number;
  maxSyncMs: number;
  /** Time in insert + commit (and the checkpoints that ran inside commits). */
  commitMs: number;
  maxCommitMs: number;
  /** Commits that took over 5 ms: almost always the ones that ran a checkpoint. */
  slowCommits: number;
}

export interface WriterThreadOptions {
  path: string;
  /** Acknowledge only after the WAL was synced (synchronous=FULL semantics). */
  durable: boolean;
  /** Where the thread answers. */
  replies: MessagePort;
}

type ThreadMessage =
  | { ids: number[]; results: Array<boolean | string>; stats: WriterStats }
  | { probe: number; result: true | string; stats: WriterStats }
  | { fatal: string; stats: WriterStats }
  | { stats: WriterStats };

interface Waiting {
  resolve: (inserted: boolean) => void;
  reject: (error: Error) => void;
}

export class DeliveryWriter {
  readonly #worker: Worker;
  readonly #replies: MessagePort;
  #stats: WriterStats = { commits: 0, syncs: 0, rows: 0, syncMs: 0, maxSyncMs: 0, commitMs: 0, maxCommitMs: 0, slowCommits: 0 };
  #waiting = new Map<number, Waiting>();
  #probes = new Map<number, (result: true | string) => void>();
  #nextId = 0;
  #batch: { rows: DeliveryRow[]; ids: number[] } | null = null;
  #broken: Error | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: { path: string; durable: boolean }) {
    const { port1, port2 } = new MessageChannel();
    this.#replies = port1;
    const data: WriterThreadOptions = {
      path: options.path,
      durable: options.durable,
      replies: port2,
    };
    // execArgv: [] so the thread does not inherit flags meant for the main script (`--input-type`,
    // loaders): it is plain JavaScript.
    this.#worker = new Worker(new URL('./delivery-writer-thread.js', import.meta.url), { workerData: data, transferList: [port2], execArgv: [] });
    this.#worker.unref();
    this.#replies.on('message', (message: ThreadMessage) => this.#onMessage(message));
    this.#replies.unref();
    this.#worker.on('error', (error: unknown) => {
      const message = (error as { message?: unknown } | null)?.message ?? String(error);
      this.#fail(new Error(`store: the delivery writer thread failed: ${String(message)}; restart forgevm`));
    });
    this.#worker.on('exit', (code) => {
      if (!this.#closing) this.#fail(new Error(`store: the delivery writer thread exited (code ${code}); restart forgevm`));
    });
  }

  get stats(): WriterStats {
    const s = this.#stats;
    return { ...s, syncMs: Math.round(s.syncMs), maxSyncMs: Math.round(s.maxSyncMs), commitMs: Math.round(s.commitMs), maxCommitMs: Math.round(s.maxCommitMs) };
  }

  /** False once the thread died or a sync failed: nothing more is acknowledged. */
  get healthy(): boolean {
    return this.#broken === null;
  }

  /** Resolves true when stored, false when the id (or dedupe key) was already there. */
  insert(row: DeliveryRow): Promise<boolean> {
    this.#drainReplies();
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#closing) return Promise.reject(new Error('store: closed'));
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      if (this.#waiting.size === 0) this.#keepAlive(true);
      this.#waiting.set(id, { resolve, reject });
      if (!this.#batch) {
        this.#batch = { rows: [], ids: [] };
        setImmediate(() => this.#post());
      }
      this.#batch.rows.push(row);
      this.#batch.ids.push(id);
    });
  }

  /**
   * Writes one small row through this thread (commit, and sync when durable), as a delivery
   * would be written: resolves true, or the reason it failed or did not finish within `timeoutMs`.
   */
  probe(timeoutMs: number): Promise<true | string> {
    this.#drainReplies();
    if (this.#broken) return Promise.resolve(this.#broken.message);
    if (this.#closing) return Promise.resolve('store: closed');
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#probes.delete(id);
        resolve(`store: a test write did not finish within ${timeoutMs} ms (the database is locked or the disk is stalled)`);
      }, timeoutMs);
      timer.unref();
      this.#probes.set(id, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      this.#worker.postMessage({ probe: id, at: new Date().toISOString() });
    });
  }

  /** Answers that already arrived, without waiting for the event loop to deliver them. */
  #drainReplies(): void {
    for (let received = receiveMessageOnPort(this.#replies); received; received = receiveMessageOnPort(this.#replies)) {
      this.#onMessage(received.message as ThreadMessage);
    }
  }

  #keepAlive(on: boolean): void {
    if (on) {
      this.#worker.ref();
      this.#replies.ref();
    } else {
      this.#worker.unref();
      this.#replies.unref();
    }
  }

  #post(): void {
    this.#drainReplies();
    const batch = this.#batch;
    this.#batch = null;
    if (!batch) return;
    // A payload that owns its whole ArrayBuffer (a request body read into one allocation) moves
    // to the thread instead of being copied; that copy was the largest cost left on the event loop.
    const transfer: ArrayBuffer[] = [];
    for (const { payload } of batch.rows) {
      if (typeof payload === 'string') continue;
      const buffer = payload.buffer;
      if (buffer instanceof ArrayBuffer && payload.byteOffset === 0 && payload.byteLength === buffer.byteLength && !transfer.includes(buffer)) transfer.push(buffer);
    }
    try {
      this.#worker.postMessage(batch, transfer);
    } catch {
      this.#worker.postMessage(batch); // an untransferable buffer (a pooled one): copy instead
    }
  }

  #onMessage(message: ThreadMessage): void {
    this.#stats = message.stats;
    if ('fatal' in message) this.#broken ??= new Error(message.fatal);
    if ('probe' in message) {
      const answer = this.#probes.get(message.probe);
      this.#probes.delete(message.probe);
      answer?.(message.result);
      return;
    }
    if (!('ids' in message)) return;
    message.ids.forEach((id, i) => {
      const waiting = this.#waiting.get(id);
      if (!waiting) return;
      this.#waiting.delete(id);
      const result = message.results[i]!;
      if (typeof result === 'string') waiting.reject(new Error(result));
      else waiting.resolve(result);
    });
    if (this.#waiting.size === 0) this.#keepAlive(false);
  }

  #fail(error: Error): void {
    this.#broken ??= error;
    for (const waiting of this.#waiting.values()) waiting.reject(this.#broken);
    this.#waiting.clear();
    this.#keepAlive(false);
  }

  /** Stores what is queued, waits for it, and stops the thread. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#post();
      if (this.#broken && this.#waiting.size === 0) {
        await this.#worker.terminate();
        return;
      }
      const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
      this.#keepAlive(true);
      this.#worker.postMessage('close');
      await exited;
      this.#drainReplies(); // answers the event loop has not delivered yet
      this.#replies.close();
    })();
    return this.#closing;
  }
}
