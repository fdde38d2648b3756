/**
 * Artifacts as GitHub keeps them since upload-artifact@v4: they belong to a workflow run, and
 * their names are unique in it. Any job of the run lists and downloads them (a later job
 * downloads what an earlier one uploaded; a re-run sees the earlier attempts' artifacts);
 * no other run sees them. An upload goes
 *
 *   create (name, expiry) → blocks staged → block list committed (the blob) → finalize
 *
 * and is visible only once finalized. A name taken in this run attempt is refused (409, as on
 * GitHub); one from an earlier attempt is replaced. Artifacts expire after their retention
 * (the client's retention-days, at most the configured default, 90 days like GitHub's) and
 * prune() deletes them. Uploads that never finish go when their job ends, or after a day.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BlobFolder, BodyTooLargeError, concatenate, writeNew } from '../blob-files.ts';
import type { JobContext } from '../job-context.ts';
import { refuse, type Outcome } from '../outcome.ts';
import { openServiceDb, type ServiceDb } from '../service-db.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    run_attempt INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    job_backend_id TEXT NOT NULL,
    -- the JobServices that created it
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('created', 'uploaded', 'finalized')),
    -- CreateArtifact's mime_type (@actions/artifact ≥ 5), else the blob's content type
    content_type TEXT,
    size INTEGER,
    -- sha256:<hex> of the blob, computed here
    digest TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (run, name)
  );
  CREATE INDEX IF NOT EXISTS artifacts_expiry ON artifacts (expires_at);
  -- Staged blocks of an upload; a block id staged twice keeps its latest (highest seq) bytes.
  CREATE TABLE IF NOT EXISTS blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    block_id TEXT NOT NULL,
    -- null while its bytes are being written
    size INTEGER
  );
  CREATE INDEX IF NOT EXISTS blocks_artifact ON blocks (artifact_id, block_id, seq);
`;

/** Azure's limit on a block id (before base64) is 64 bytes. */
const MAX_BLOCK_ID_LENGTH = 128;
/** The clients stage 8 MiB blocks; Azure allows 4000 MiB, no client here comes close to this. */
export const MAX_BLOCK_BYTES = 256 * 1024 * 1024;
const MAX_BLOCKS = 50_000;
const MAX_NAME_LENGTH = 256;
/** Characters GitHub refuses in artifact names (the client checks the same), and other control characters. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_NAME_CHARACTERS = /[":<>|*?\\/\x00-\x1f\x7f]/;
/** An upload not finalized after this long is abandoned. */
const UPLOAD_IDLE_MS = 24 * 60 * 60 * 1000;
const DAY_MS = 86_400_000;

export interface Artifact {
  id: number;
  name: string;
  size: number;
  digest: string | undefined;
  contentType: string | undefined;
  jobId: string;
  jobBackendId: string;
  runAttempt: number;
  createdAt: number;
  expiresAt: number;
}

export interface ArtifactStoreOptions {
  /** The artifacts' own folder: `artifacts.db`, `blobs/`, `parts/`. */
  dir: string;
  /** Default and longest retention. */
  retentionDays: number;
  /** Largest artifact. */
  maxBytes: number;
  now?: () => number;
}

interface ArtifactRow {
  id: number;
  run: string;
  run_attempt: number;
  job_id: string;
  job_backend_id: string;
  owner: string;
  name: string;
  state: 'created' | 'uploaded' | 'finalized';
  content_type: string | null;
  size: number | null;
  digest: string | null;
  created_at: number;
  expires_at: number;
}

export interface ArtifactPruneReport {
  expired: number;
  abandonedUploads: number;
  strayFiles: number;
}

export class ArtifactStore {
  readonly retentionDays: number;
  readonly maxBytes: number;
  #db: ServiceDb;
  #files: BlobFolder;
  #now: () => number;

  private constructor(db: ServiceDb, files: BlobFolder, options: ArtifactStoreOptions) {
    this.#db = db;
    this.#files = files;
    this.retentionDays = options.retentionDays;
    this.maxBytes = options.maxBytes;
    this.#now = options.now ?? Date.now;
  }

  static async open(options: ArtifactStoreOptions): Promise<ArtifactStore> {
    const files = new BlobFolder(options.dir);
    await files.create();
    const store = new ArtifactStore(openServiceDb(options.dir, 'artifacts.db', 1, SCHEMA), files, options);
    await store.#sweep();
    return store;
  }

  close(): void {
    this.#db.close();
  }

  /** Start an upload named `name` in the job's run. */
  async create(job: JobContext, name: string, options: { expiresAt?: number; contentType?: string }): Promise<Outcome<{ id: number }>> {
    const bad = checkName(name);
    if (bad) return refuse(400, bad);
    const now = this.#now();
    const longest = now + this.retentionDays * DAY_MS;
    if (options.expiresAt !== undefined && options.expiresAt <= now) return refuse(400, 'expires_at is in the past');
    const expiresAt = Math.min(options.expiresAt ?? longest, longest);
    let replaced: number | undefined;
    const outcome = this.#db.transaction((): Outcome<{ id: number }> => {
      const existing = this.#db.prepare<[string, string], ArtifactRow>(`SELECT * FROM artifacts WHERE run = ? AND name = ?`).get(job.run, name);
      if (existing && !replaceable(existing, job, now)) {
        return refuse(
          409,
          existing.state === 'finalized'
            ? `an artifact named "${name}" already exists in this run (uploaded by job ${existing.job_id}); artifact names are unique per run: pick another name, or delete it first (upload-artifact's overwrite: true)`
            : `an artifact named "${name}" is being uploaded by job ${existing.job_id} of this run`,
        );
      }
      if (existing) {
        replaced = existing.id;
        this.#db.prepare(`DELETE FROM artifacts WHERE id = ?`).run(existing.id);
      }
      const result = this.#db
        .prepare(
          `INSERT INTO artifacts (run, run_attempt, job_id, job_backend_id, owner, name, state, content_type, created_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, 'created', ?, ?, ?)`,
        )
        .run(job.run, job.identity.runAttempt, job.identity.jobId, job.jobBackendId, job.id, name, options.contentType ?? null, now, expiresAt);
      return { ok: true, id: Number(result.lastInsertRowid) };
    })();
    if (replaced !== undefined) await this.#removeFiles(replaced);
    return outcome;
  }

  /** Azure's Put Block: stage `blockId`'s bytes for an upload of this job. */
  async stageBlock(job: JobContext, id: number, blockId: string, body: Readable, declaredLength: number | undefined): Promise<Outcome> {
    const row = this.#upload(job, id);
    if (!row.ok) return row;
    if (!blockId || blockId.length > MAX_BLOCK_ID_LENGTH || !/^[A-Za-z0-9+/=_-]+$/.test(blockId)) {
      return refuse(400, 'the block id must be a base64 string of at most 64 bytes');
    }
    const staged = this.#db
      .prepare<[number], { total: number | null; count: number }>(`SELECT sum(size) AS total, count(*) AS count FROM blocks WHERE artifact_id = ?`)
      .get(id)!;
    if (staged.count >= MAX_BLOCKS) return refuse(413, `an upload has at most ${MAX_BLOCKS} blocks`);
    const room = Math.min(MAX_BLOCK_BYTES, this.maxBytes - (staged.total ?? 0));
    if (declaredLength !== undefined && declaredLength > room) return refuse(413, tooLarge(this.maxBytes));
    const seq = Number(this.#db.prepare(`INSERT INTO blocks (artifact_id, block_id, size) VALUES (?, ?, NULL)`).run(id, blockId).lastInsertRowid);
    const path = this.#files.block(id, seq);
    try {
      const size = await writeNew(path, body, Math.max(0, room));
      this.#db.prepare(`UPDATE blocks SET size = ? WHERE seq = ?`).run(size, seq);
      return { ok: true };
    } catch (error) {
      this.#db.prepare(`DELETE FROM blocks WHERE seq = ?`).run(seq);
      await rm(path, { force: true });
      if (error instanceof BodyTooLargeError) return refuse(413, tooLarge(this.maxBytes));
      throw error;
    }
  }

  /** Azure's Put Block List: the blob is these staged blocks, in this order. */
  async commitBlocks(job: JobContext, id: number, blockIds: string[], contentType: string | undefined): Promise<Outcome> {
    const row = this.#upload(job, id);
    if (!row.ok) return row;
    const latest = this.#db.prepare<[number, string], { seq: number; size: number | null }>(
      `SELECT seq, size FROM blocks WHERE artifact_id = ? AND block_id = ? ORDER BY seq DESC LIMIT 1`,
    );
    const sources: string[] = [];
    let total = 0;
    for (const blockId of blockIds) {
      const block = latest.get(id, blockId);
      if (!block || block.size === null) return refuse(400, `block ${blockId} was never staged (or is still being written)`);
      total += block.size;
      sources.push(this.#files.block(id, block.seq));
    }
    if (total > this.maxBytes) return refuse(413, tooLarge(this.maxBytes));
    const part = this.#files.part(id);
    const hash = createHash('sha256');
    const size = await concatenate(sources, part, (chunk) => hash.update(chunk));
    await this.#files.publish(part, id);
    const changed = this.#db
      .prepare(`UPDATE artifacts SET state = 'uploaded', size = ?, digest = ?, content_type = coalesce(content_type, ?) WHERE id = ? AND state = 'created'`)
      .run(size, `sha256:${hash.digest('hex')}`, contentType ?? null, id).changes;
    this.#db.prepare(`DELETE FROM blocks WHERE artifact_id = ?`).run(id);
    await this.#files.removeUpload(id);
    if (changed === 0) {
      await this.#files.removeBlob(id);
      return refuse(404, `upload ${id} was abandoned while its blocks were committed`);
    }
    return { ok: true };
  }

  /** Make an uploaded artifact visible. `size` and `hash` are the client's view, checked against ours. */
  finalize(job: JobContext, name: string, size: number, hash: string | undefined): Outcome<{ id: number }> {
    const row = this.#db.prepare<[string, string], ArtifactRow>(`SELECT * FROM artifacts WHERE run = ? AND name = ?`).get(job.run, name);
    if (!row || row.owner !== job.id) return refuse(404, `this job has no upload named "${name}" to finalize`);
    if (row.state === 'finalized') return refuse(409, `artifact "${name}" is already finalized`);
    if (row.state !== 'uploaded') return refuse(400, `artifact "${name}" has no committed content yet (the blob upload did not finish)`);
    if (size !== row.size) return refuse(400, `artifact "${name}": the client counted ${size} bytes, ${row.size} arrived`);
    if (hash !== undefined && hash !== row.digest) return refuse(400, `artifact "${name}": the content's digest ${row.digest} is not the client's ${hash}`);
    this.#db.prepare(`UPDATE artifacts SET state = 'finalized' WHERE id = ?`).run(row.id);
    return { ok: true, id: row.id };
  }

  /** The run's visible artifacts (finalized, unexpired), oldest first. */
  list(run: string, filter: { name?: string; id?: number } = {}): Artifact[] {
    const rows = this.#db
      .prepare<[string, number], ArtifactRow>(`SELECT * FROM artifacts WHERE run = ? AND state = 'finalized' AND expires_at > ? ORDER BY id`)
      .all(run, this.#now());
    return rows.filter((row) => (filter.name === undefined || row.name === filter.name) && (filter.id === undefined || row.id === filter.id)).map(toArtifact);
  }

  /** One visible artifact of the run, by name. */
  find(run: string, name: string): Artifact | undefined {
    return this.list(run, { name })[0];
  }

  /** The content of a visible artifact of the run, for download. */
  blob(run: string, id: number): { path: string; artifact: Artifact } | undefined {
    const artifact = this.list(run, { id })[0];
    return artifact && { path: this.#files.blob(id), artifact };
  }

  /** Delete a visible artifact of the run (upload-artifact's `overwrite`, and DeleteArtifact). */
  async delete(run: string, name: string): Promise<Outcome<{ id: number }>> {
    const artifact = this.find(run, name);
    if (!artifact) return refuse(404, `no artifact named "${name}" in this run`);
    this.#db.prepare(`DELETE FROM artifacts WHERE id = ?`).run(artifact.id);
    await this.#removeFiles(artifact.id);
    return { ok: true, id: artifact.id };
  }

  /** Drop the unfinished uploads of a job that ended. */
  async abandon(owner: string): Promise<number> {
    const ids = this.#db
      .prepare<[string], { id: number }>(`SELECT id FROM artifacts WHERE owner = ? AND state != 'finalized'`)
      .all(owner)
      .map((r) => r.id);
    for (const id of ids) {
      this.#db.prepare(`DELETE FROM artifacts WHERE id = ?`).run(id);
      await this.#removeFiles(id);
    }
    return ids.length;
  }

  async prune(now = this.#now()): Promise<ArtifactPruneReport> {
    const expired = this.#db.prepare<[number], { id: number }>(`SELECT id FROM artifacts WHERE expires_at <= ?`).all(now);
    const abandoned = this.#db
      .prepare<[number, number], { id: number }>(`SELECT id FROM artifacts WHERE state != 'finalized' AND created_at < ? AND expires_at > ?`)
      .all(now - UPLOAD_IDLE_MS, now);
    for (const { id } of [...expired, ...abandoned]) {
      this.#db.prepare(`DELETE FROM artifacts WHERE id = ?`).run(id);
      await this.#removeFiles(id);
    }
    return { expired: expired.length, abandonedUploads: abandoned.length, strayFiles: await this.#sweep() };
  }

  /** An upload in progress of this job, or why not. */
  #upload(job: JobContext, id: number): Outcome<{ row: ArtifactRow }> {
    const row = this.#db.prepare<[number], ArtifactRow>(`SELECT * FROM artifacts WHERE id = ?`).get(id);
    // Another job's upload answers exactly like a missing one.
    if (!row || row.owner !== job.id) return refuse(404, `no artifact upload ${id} of this job`);
    if (row.state !== 'created') return refuse(409, `artifact upload ${id} is already committed`);
    return { ok: true, row };
  }

  async #removeFiles(id: number): Promise<void> {
    await this.#files.removeUpload(id);
    await this.#files.removeBlob(id);
  }

  #sweep(): Promise<number> {
    const ids = (sql: string) => new Set(this.#db.prepare<[], { id: number }>(sql).all().map((r) => r.id));
    const withBlob = ids(`SELECT id FROM artifacts WHERE state != 'created'`);
    const uploading = ids(`SELECT id FROM artifacts WHERE state = 'created'`);
    return this.#files.sweep(
      (id) => withBlob.has(id),
      (id) => uploading.has(id),
    );
  }
}

/**
 * Whether a new upload may take over an existing name: an earlier attempt's artifact (a re-run
 * replaces it), this job's own unfinished upload (a retried step), or an upload left for a day.
 */
function replaceable(existing: ArtifactRow, job: JobContext, now: number): boolean {
  if (existing.state === 'finalized') return existing.run_attempt < job.identity.runAttempt;
  return existing.owner === job.id || existing.created_at < now - UPLOAD_IDLE_MS || existing.run_attempt < job.identity.runAttempt;
}

function checkName(name: string): string | undefined {
  if (name.trim() === '') return 'an artifact name must not be empty';
  if (name.length > MAX_NAME_LENGTH) return `an artifact name must be at most ${MAX_NAME_LENGTH} characters`;
  if (FORBIDDEN_NAME_CHARACTERS.test(name)) return `the artifact name "${name}" contains a character GitHub forbids: " : < > | * ? \\ / or a control character such as a line break`;
  return undefined;
}

function tooLarge(maxBytes: number): string {
  return `the artifact is larger than the ${maxBytes} bytes this forgevm allows (artifacts.maxBytes)`;
}

function toArtifact(row: ArtifactRow): Artifact {
  return {
    id: row.id,
    name: row.name,
    size: row.size ?? 0,
    digest: row.digest ?? undefined,
    contentType: row.content_type ?? undefined,
    jobId: row.job_id,
    jobBackendId: row.job_backend_id,
    runAttempt: row.run_attempt,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
