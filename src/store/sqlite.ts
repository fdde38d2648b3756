/**
 * SQLite store (better-sqlite3) in the state folder, WAL journal.
 *
 * Durability (option `synchronous`, FULL when not given; `forgevm serve` uses the config's
 * `store.synchronous`, default full). In WAL mode, NORMAL does not sync the WAL on commit, so
 * a power loss (not a process crash) can drop the last committed transactions; FULL syncs on
 * every commit. Deliveries are stored by a thread of their own, group-committed
 * (delivery-writer.ts): under FULL each promise resolves only after a sync of the WAL that
 * covers its commit; under NORMAL at commit, with a background sync every 100 ms bounding the
 * power-loss window. Other writes (runs, jobs…) are rare, stay on this connection and use the
 * mode as is. SQLite's checkpoints run on the writer's thread, never here.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { formatBytes, freeBytes } from '../vm/disk-space.ts';
import { DeliveryWriter, type WriterStats } from './delivery-writer.ts';
import { migrations } from './migrations.ts';
import type {
  Delivery,
  DeliveryStatus,
  InsertDeliveryResult,
  Installation,
  Job,
  JobPatch,
  JobStatus,
  NewDelivery,
  NewJob,
  NewRun,
  PruneDeliveriesResult,
  RecoveredJob,
  Run,
  Store,
  StoreHealth,
  VmRecord,
} from './store.ts';

export interface SqliteStoreOptions {
  /** State folder; the database is `<dir>/forgevm.db`. */
  dir: string;
  /** Default FULL: see the file comment. */
  synchronous?: 'FULL' | 'NORMAL';
  /**
   * `health()` reports the store unhealthy below this much free disk in the state folder
   * (default: room for two of the largest deliveries).
   */
  minFreeBytes?: number;
}

/** Room for two of the largest deliveries GitHub sends (25 MB each). */
const DEFAULT_MIN_FREE_BYTES = 50 * 1024 * 1024;
/** How long `/healthz` waits for the write probe before calling the store stuck. */
const HEALTH_PROBE_TIMEOUT_MS = 2_000;
/** Concurrent and back-to-back health checks share one probe for this long. */
const HEALTH_CACHE_MS = 1_000;

type Row = Record<string, unknown>;

const now = (): string => new Date().toISOString();

function parseJson(text: unknown): unknown {
  return typeof text === 'string' ? JSON.parse(text) : null;
}

function toDelivery(r: Row): Delivery {
  return {
    id: r.id as string,
    forge: r.forge as Delivery['forge'],
    event: r.event as string,
    action: (r.action as string | null) ?? null,
    dedupeKey: (r.dedupe_key as string | null) ?? null,
    normalized: parseJson(r.normalized) as Delivery['normalized'],
    payload: typeof r.payload === 'string' ? r.payload : (r.payload as Buffer).toString('utf8'),
    receivedAt: r.received_at as string,
    status: r.status as DeliveryStatus,
    error: (r.error as string | null) ?? null,
    attempts: r.attempts as number,
    updatedAt: r.updated_at as string,
    repo: (r.repo as string | null) ?? null,
    failures: r.failures as number,
    nextAttemptAt: (r.next_attempt_at as string | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
    failingSince: (r.failing_since as string | null) ?? null,
    payloadDeletedAt: (r.payload_deleted_at as string | null) ?? null,
  };
}

function toRun(r: Row): Run {
  return {
    id: r.id as number,
    deliveryId: (r.delivery_id as string | null) ?? null,
    forge: r.forge as Run['forge'],
    repo: r.repo as string,
    sha: r.sha as string,
    ref: r.ref as string,
    event: r.event as string,
    workflowFile: r.workflow_file as string,
    workflowName: r.workflow_name as string,
    installationId: (r.installation_id as number | null) ?? null,
    attempt: r.attempt as number,
    runNumber: r.run_number as number,
    createdAt: r.created_at as string,
  };
}

function toJob(r: Row): Job {
  return {
    id: r.id as number,
    runId: r.run_id as number,
    instanceKey: r.instance_key as string,
    displayName: r.display_name as string,
    label: r.label as string,
    externalId: r.external_id as string,
    status: r.status as JobStatus,
    conclusion: (r.conclusion as Job['conclusion']) ?? null,
    checkRunId: (r.check_run_id as number | null) ?? null,
    statusContext: (r.status_context as string | null) ?? null,
    approval: r.approval as Job['approval'],
    spec: parseJson(r.spec),
    result: parseJson(r.result) as Job['result'],
    error: (r.error as string | null) ?? null,
    pendingReport: parseJson(r.pending_report) as Job['pendingReport'],
    createdAt: r.created_at as string,
    startedAt: (r.started_at as string | null) ?? null,
    completedAt: (r.completed_at as string | null) ?? null,
    updatedAt: r.updated_at as string,
  };
}

function toVm(r: Row): VmRecord {
  return { jobId: r.job_id as number, pid: r.pid as number, dir: r.dir as string, startedAt: r.started_at as string };
}

/** JobPatch field → column, with JSON encoding where the column holds JSON. */
const jobColumns: Record<keyof JobPatch, { column: string; json?: boolean }> = {
  status: { column: 'status' },
  conclusion: { column: 'conclusion' },
  checkRunId: { column: 'check_run_id' },
  statusContext: { column: 'status_context' },
  approval: { column: 'approval' },
  spec: { column: 'spec', json: true },
  result: { column: 'result', json: true },
  error: { column: 'error' },
  pendingReport: { column: 'pending_report', json: true },
  startedAt: { column: 'started_at' },
  completedAt: { column: 'completed_at' },
};

export class SqliteStore implements Store {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #writer: DeliveryWriter;
  readonly #minFreeBytes: number;
  readonly #dir: string;
  #closed = false;
  #health?: { at: number; result: Promise<StoreHealth> };

  constructor(options: SqliteStoreOptions) {
    mkdirSync(options.dir, { recursive: true });
    this.#dir = options.dir;
    this.#minFreeBytes = options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
    this.path = join(options.dir, 'forgevm.db');
    this.#db = new Database(this.path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
    this.#migrate();
    // Checkpoints run on the delivery writer's thread, never on this (the event loop's) connection.
    this.#db.pragma('wal_autocheckpoint = 0');
    this.#writer = new DeliveryWriter({ path: this.path, durable: (options.synchronous ?? 'FULL') === 'FULL' });
  }

  /** Group-commit counters of the delivery writer (for the ingest benchmark and tests). */
  get deliveryWriterStats(): WriterStats {
    return this.#writer.stats;
  }

  /** Highest schema version applied. */
  get schemaVersion(): number {
    const row = this.#db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    return row?.version ?? 0;
  }

  #migrate(): void {
    this.#db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const apply = this.#db.transaction(() => {
      const current = this.schemaVersion;
      const latest = migrations.at(-1)?.version ?? 0;
      if (current > latest) {
        throw new Error(
          `store: ${this.path} has schema version ${current}, newer than this forgevm knows (${latest}); upgrade forgevm or point FORGEVM_STATE_DIR elsewhere`,
        );
      }
      for (const m of migrations) {
        if (m.version <= current) continue;
        this.#db.exec(m.sql);
      }
      if (latest > current) {
        this.#db.prepare('DELETE FROM schema_version').run();
        this.#db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(latest);
      }
    });
    apply.immediate();
  }

  // ------------------------------------------------------------------------------- deliveries

  insertDelivery(delivery: NewDelivery): Promise<InsertDeliveryResult> {
    if (this.#closed) return Promise.reject(new Error('store: closed'));
    const at = now();
    return this.#writer
      .insert({
        id: delivery.id,
        forge: delivery.forge,
        event: delivery.event,
        action: delivery.action ?? null,
        dedupeKey: delivery.dedupeKey ?? null,
        normalized: JSON.stringify(delivery.normalized),
        repo: 'repo' in delivery.normalized ? delivery.normalized.repo.fullName : null,
        payload: delivery.payload,
        receivedAt: delivery.receivedAt ?? at,
        status: delivery.status ?? 'pending',
        updatedAt: at,
      })
      .then((inserted) => ({ inserted }));
  }

  async getDelivery(id: string): Promise<Delivery | null> {
    const row = this.#db.prepare('SELECT * FROM deliveries WHERE id = ?').get(id) as Row | undefined;
    return row ? toDelivery(row) : null;
  }

  async claimNextDelivery(at: string = now()): Promise<Delivery | null> {
    // Deliveries of one repository are claimed one at a time, oldest first, so that two pushes
    // are planned (and enter their concurrency groups) in the order they arrived.
    const row = this.#db
      .prepare(
        `UPDATE deliveries SET status = 'processing', attempts = attempts + 1, updated_at = ?
         WHERE seq = (
           SELECT d.seq FROM deliveries d
           WHERE d.status = 'pending' AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?)
             AND (d.repo IS NULL OR NOT EXISTS (
               SELECT 1 FROM deliveries p WHERE p.status = 'processing' AND p.forge = d.forge AND p.repo = d.repo))
           ORDER BY d.seq LIMIT 1)
         RETURNING *`,
      )
      .get(now(), at) as Row | undefined;
    return row ? toDelivery(row) : null;
  }

  async markDelivery(id: string, status: DeliveryStatus, error?: string | null): Promise<void> {
    const info = this.#db
      .prepare('UPDATE deliveries SET status = ?, error = ?, updated_at = ? WHERE id = ?')
      .run(status, error ?? null, now(), id);
    if (info.changes === 0) throw new Error(`store: no delivery ${id} to mark ${status}`);
  }

  async deferDelivery(id: string, retry: { nextAttemptAt: string; error: string }): Promise<Delivery> {
    const at = now();
    const row = this.#db
      .prepare(
        `UPDATE deliveries SET status = 'pending', failures = failures + 1, next_attempt_at = ?, last_error = ?,
           failing_since = coalesce(failing_since, ?), error = NULL, updated_at = ?
         WHERE id = ? RETURNING *`,
      )
      .get(retry.nextAttemptAt, retry.error, at, at, id) as Row | undefined;
    if (!row) throw new Error(`store: no delivery ${id} to retry`);
    return toDelivery(row);
  }

  async requeueDelivery(id: string, dedupeKey?: string | null): Promise<string | null> {
    const at = now();
    const row = this.#db
      .prepare(
        `UPDATE deliveries SET status = 'pending', next_attempt_at = NULL, updated_at = ?,
           failures = CASE status WHEN 'failed' THEN 0 ELSE failures END,
           failing_since = CASE status WHEN 'failed' THEN NULL ELSE failing_since END
         WHERE (id = ? OR (? IS NOT NULL AND dedupe_key = ?))
           AND (status = 'failed' OR (status = 'pending' AND next_attempt_at IS NOT NULL))
         RETURNING id`,
      )
      .get(at, id, dedupeKey ?? null, dedupeKey ?? null) as { id: string } | undefined;
    return row?.id ?? null;
  }

  async pruneDeliveries(olderThan: string): Promise<PruneDeliveriesResult> {
    return this.#db.transaction((): PruneDeliveriesResult => {
      const finished = `status IN ('done', 'ignored', 'failed') AND received_at < @olderThan`;
      const deleted = this.#db
        .prepare(`DELETE FROM deliveries WHERE ${finished} AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.delivery_id = deliveries.id)`)
        .run({ olderThan }).changes;
      // The runs keep their delivery (re-runs and restarts replay it): only the payload goes,
      // and only once none of their jobs is still waiting to run.
      const stripped = this.#db
        .prepare(
          `UPDATE deliveries SET payload = '', payload_deleted_at = @at
           WHERE ${finished} AND payload_deleted_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM runs r JOIN jobs j ON j.run_id = r.id WHERE r.delivery_id = deliveries.id AND j.status <> 'completed')`,
        )
        .run({ olderThan, at: now() }).changes;
      return { deleted, stripped };
    }).immediate();
  }

  async requeueStaleProcessing(): Promise<number> {
    return this.#db
      .prepare(`UPDATE deliveries SET status = 'pending', updated_at = ? WHERE status = 'processing'`)
      .run(now()).changes;
  }

  async listDeliveries(filter: { status?: DeliveryStatus; limit?: number } = {}): Promise<Delivery[]> {
    const limit = filter.limit ?? -1;
    const rows = filter.status
      ? this.#db.prepare('SELECT * FROM deliveries WHERE status = ? ORDER BY seq LIMIT ?').all(filter.status, limit)
      : this.#db.prepare('SELECT * FROM deliveries ORDER BY seq LIMIT ?').all(limit);
    return (rows as Row[]).map(toDelivery);
  }

  async countDeliveries(status?: DeliveryStatus): Promise<number> {
    const row = (
      status
        ? this.#db.prepare('SELECT count(*) AS n FROM deliveries WHERE status = ?').get(status)
        : this.#db.prepare('SELECT count(*) AS n FROM deliveries').get()
    ) as { n: number };
    return row.n;
  }

  // ----------------------------------------------------------------------------- installations

  async upsertInstallation(inst: { id: number; account: string; repos: string[] | null; suspended?: boolean }): Promise<void> {
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO installations (id, account, all_repos, suspended, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET account = excluded.account, all_repos = excluded.all_repos,
             suspended = excluded.suspended, updated_at = excluded.updated_at`,
        )
        .run(inst.id, inst.account, inst.repos === null ? 1 : 0, inst.suspended ? 1 : 0, now());
      this.#db.prepare('DELETE FROM installation_repos WHERE installation_id = ?').run(inst.id);
      const add = this.#db.prepare('INSERT OR IGNORE INTO installation_repos (installation_id, repo) VALUES (?, ?)');
      for (const repo of inst.repos ?? []) add.run(inst.id, repo);
    }).immediate();
  }

  async updateInstallationRepos(
    id: number,
    account: string,
    change: { added: string[]; removed: string[]; selection?: 'all' | 'selected' },
  ): Promise<void> {
    this.#db.transaction(() => {
      const at = now();
      this.#db
        .prepare(
          `INSERT INTO installations (id, account, all_repos, suspended, updated_at) VALUES (?, ?, ?, 0, ?)
           ON CONFLICT (id) DO UPDATE SET account = excluded.account, updated_at = excluded.updated_at`,
        )
        .run(id, account, change.selection === 'all' ? 1 : 0, at);
      if (change.selection) {
        this.#db.prepare('UPDATE installations SET all_repos = ? WHERE id = ?').run(change.selection === 'all' ? 1 : 0, id);
      }
      const add = this.#db.prepare('INSERT OR IGNORE INTO installation_repos (installation_id, repo) VALUES (?, ?)');
      const remove = this.#db.prepare('DELETE FROM installation_repos WHERE installation_id = ? AND repo = ?');
      for (const repo of change.added) add.run(id, repo);
      for (const repo of change.removed) remove.run(id, repo);
    }).immediate();
  }

  async setInstallationSuspended(id: number, suspended: boolean): Promise<void> {
    this.#db.prepare('UPDATE installations SET suspended = ?, updated_at = ? WHERE id = ?').run(suspended ? 1 : 0, now(), id);
  }

  async deleteInstallation(id: number): Promise<void> {
    this.#db.prepare('DELETE FROM installations WHERE id = ?').run(id);
  }

  #installation(row: Row | undefined): Installation | null {
    if (!row) return null;
    const id = row.id as number;
    const repos = row.all_repos
      ? null
      : (this.#db.prepare('SELECT repo FROM installation_repos WHERE installation_id = ? ORDER BY repo').all(id) as Array<{ repo: string }>).map(
          (r) => r.repo,
        );
    return { id, account: row.account as string, repos, suspended: row.suspended === 1, updatedAt: row.updated_at as string };
  }

  async getInstallation(id: number): Promise<Installation | null> {
    return this.#installation(this.#db.prepare('SELECT * FROM installations WHERE id = ?').get(id) as Row | undefined);
  }

  async findInstallationForRepo(fullName: string): Promise<Installation | null> {
    const owner = fullName.split('/')[0] ?? '';
    const row = this.#db
      .prepare(
        `SELECT i.* FROM installations i
         WHERE i.id IN (SELECT installation_id FROM installation_repos WHERE repo = ?)
            OR (i.all_repos = 1 AND i.account = ?)
         ORDER BY i.suspended, i.updated_at DESC LIMIT 1`,
      )
      .get(fullName, owner) as Row | undefined;
    return this.#installation(row);
  }

  // -------------------------------------------------------------------------------------- runs

  async createRun(run: NewRun): Promise<Run> {
    return this.#db.transaction((): Run => {
      const attempt = run.attempt ?? 1;
      let runNumber: number | undefined;
      if (attempt > 1) {
        // A re-run keeps the number of the run it repeats, as on GitHub.
        const prev = this.#db
          .prepare('SELECT run_number FROM runs WHERE repo = ? AND workflow_file = ? AND sha = ? ORDER BY id DESC LIMIT 1')
          .get(run.repo, run.workflowFile, run.sha) as { run_number: number } | undefined;
        runNumber = prev?.run_number;
      }
      if (runNumber === undefined) {
        const max = this.#db
          .prepare('SELECT max(run_number) AS n FROM runs WHERE repo = ? AND workflow_file = ?')
          .get(run.repo, run.workflowFile) as { n: number | null };
        runNumber = (max.n ?? 0) + 1;
      }
      const row = this.#db
        .prepare(
          `INSERT INTO runs (delivery_id, forge, repo, sha, ref, event, workflow_file, workflow_name, installation_id, attempt, run_number, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        )
        .get(
          run.deliveryId,
          run.forge,
          run.repo,
          run.sha,
          run.ref,
          run.event,
          run.workflowFile,
          run.workflowName,
          run.installationId ?? null,
          attempt,
          runNumber,
          now(),
        ) as Row;
      return toRun(row);
    }).immediate();
  }

  async getRun(id: number): Promise<Run | null> {
    const row = this.#db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Row | undefined;
    return row ? toRun(row) : null;
  }

  async listRunsByDelivery(deliveryId: string): Promise<Run[]> {
    return (this.#db.prepare('SELECT * FROM runs WHERE delivery_id = ? ORDER BY id').all(deliveryId) as Row[]).map(toRun);
  }

  async listRunsBySha(repo: string, sha: string): Promise<Run[]> {
    return (this.#db.prepare('SELECT * FROM runs WHERE repo = ? AND sha = ? ORDER BY id').all(repo, sha) as Row[]).map(toRun);
  }

  // -------------------------------------------------------------------------------------- jobs

  async createJobs(runId: number, jobs: NewJob[]): Promise<Job[]> {
    return this.#db.transaction((): Job[] => {
      const insert = this.#db.prepare(
        `INSERT INTO jobs (run_id, instance_key, display_name, label, external_id, status, approval, spec, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING *`,
      );
      return jobs.map((j) => {
        const at = now();
        return toJob(
          insert.get(
            runId,
            j.instanceKey,
            j.displayName,
            j.label,
            j.externalId ?? randomUUID(),
            j.approval ?? 'not_required',
            j.spec === undefined ? null : JSON.stringify(j.spec),
            at,
            at,
          ) as Row,
        );
      });
    }).immediate();
  }

  async getJob(id: number): Promise<Job | null> {
    const row = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row ? toJob(row) : null;
  }

  async findJobByExternalId(externalId: string): Promise<Job | null> {
    const row = this.#db.prepare('SELECT * FROM jobs WHERE external_id = ?').get(externalId) as Row | undefined;
    return row ? toJob(row) : null;
  }

  async listJobsByRun(runId: number): Promise<Job[]> {
    return (this.#db.prepare('SELECT * FROM jobs WHERE run_id = ? ORDER BY id').all(runId) as Row[]).map(toJob);
  }

  async listJobsByStatus(status: JobStatus, limit?: number): Promise<Job[]> {
    return (this.#db.prepare('SELECT * FROM jobs WHERE status = ? ORDER BY id LIMIT ?').all(status, limit ?? -1) as Row[]).map(toJob);
  }

  async listJobsWithPendingReports(): Promise<Job[]> {
    return (this.#db.prepare('SELECT * FROM jobs WHERE pending_report IS NOT NULL ORDER BY id').all() as Row[]).map(toJob);
  }

  /** Builds `col = ?` assignments for the fields present in the patch. */
  #patchSql(patch: JobPatch): { sets: string[]; values: unknown[] } {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [key, value] of Object.entries(patch) as Array<[keyof JobPatch, unknown]>) {
      if (value === undefined) continue;
      const col = jobColumns[key];
      if (!col) throw new Error(`store: unknown job field ${String(key)}`);
      sets.push(`${col.column} = ?`);
      values.push(col.json && value !== null ? JSON.stringify(value) : value);
    }
    sets.push('updated_at = ?');
    values.push(now());
    return { sets, values };
  }

  async updateJob(id: number, patch: JobPatch): Promise<Job> {
    const { sets, values } = this.#patchSql(patch);
    const row = this.#db.prepare(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ? RETURNING *`).get(...values, id) as Row | undefined;
    if (!row) throw new Error(`store: no job ${id} to update`);
    return toJob(row);
  }

  async transitionJob(id: number, from: JobStatus, patch: JobPatch): Promise<Job | null> {
    const { sets, values } = this.#patchSql(patch);
    const row = this.#db
      .prepare(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ? AND status = ? RETURNING *`)
      .get(...values, id, from) as Row | undefined;
    return row ? toJob(row) : null;
  }

  // --------------------------------------------------------------------------------------- vms

  async recordVm(vm: Omit<VmRecord, 'startedAt'> & { startedAt?: string }): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO vms (job_id, pid, dir, started_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (job_id) DO UPDATE SET pid = excluded.pid, dir = excluded.dir, started_at = excluded.started_at`,
      )
      .run(vm.jobId, vm.pid, vm.dir, vm.startedAt ?? now());
  }

  async removeVm(jobId: number): Promise<void> {
    this.#db.prepare('DELETE FROM vms WHERE job_id = ?').run(jobId);
  }

  async listVms(): Promise<VmRecord[]> {
    return (this.#db.prepare('SELECT * FROM vms ORDER BY job_id').all() as Row[]).map(toVm);
  }

  async recoverAfterRestart(): Promise<RecoveredJob[]> {
    return this.#db.transaction((): RecoveredJob[] => {
      const jobs = (this.#db.prepare(`SELECT * FROM jobs WHERE status = 'in_progress' ORDER BY id`).all() as Row[]).map(toJob);
      const vm = this.#db.prepare('SELECT * FROM vms WHERE job_id = ?');
      return jobs.map((job) => {
        const row = vm.get(job.id) as Row | undefined;
        return { job, vm: row ? toVm(row) : null };
      });
    })();
  }

  // ------------------------------------------------------------------------------------- misc

  async ping(): Promise<boolean> {
    if (this.#closed || !this.#writer.healthy) return false;
    try {
      return (this.#db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  async health(): Promise<StoreHealth> {
    if (this.#closed) return { ok: false, reason: 'store: closed (forgevm is stopping)' };
    const cached = this.#health;
    if (cached && Date.now() - cached.at < HEALTH_CACHE_MS) return cached.result;
    const result = this.#checkHealth();
    this.#health = { at: Date.now(), result };
    return result;
  }

  async #checkHealth(): Promise<StoreHealth> {
    if (this.#closed) return { ok: false, reason: 'store: closed (forgevm is stopping)' };
    let free: number;
    try {
      free = await freeBytes(this.#dir);
    } catch (error) {
      return { ok: false, reason: `store: cannot read the free space of ${this.#dir}: ${(error as Error).message}` };
    }
    if (free < this.#minFreeBytes) {
      return {
        ok: false,
        reason: `store: only ${formatBytes(free)} free in ${this.#dir}, less than the ${formatBytes(this.#minFreeBytes)} deliveries need; free some space`,
      };
    }
    // A real write through the path deliveries take (the writer thread, its commit and sync).
    const probe = await this.#writer.probe(HEALTH_PROBE_TIMEOUT_MS);
    return probe === true ? { ok: true } : { ok: false, reason: probe };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writer.close();
    this.#db.close();
  }
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
