/**
 * Schema migrations, applied in order at open. `schema_version` holds one row with the highest
 * version applied. Never edit a released migration: append a new one.
 */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    description: 'deliveries, installations, runs, jobs, vms',
    sql: `
      CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        forge TEXT NOT NULL CHECK (forge IN ('github', 'forgejo')),
        event TEXT NOT NULL,
        action TEXT,
        dedupe_key TEXT UNIQUE,
        normalized TEXT NOT NULL,
        payload TEXT NOT NULL,
        received_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'done', 'ignored', 'failed')),
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX deliveries_status ON deliveries (status, seq);

      CREATE TABLE installations (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL COLLATE NOCASE,
        all_repos INTEGER NOT NULL,
        suspended INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX installations_account ON installations (account);
      CREATE TABLE installation_repos (
        installation_id INTEGER NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
        repo TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (installation_id, repo)
      );
      CREATE INDEX installation_repos_repo ON installation_repos (repo);

      CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id TEXT REFERENCES deliveries (id),
        forge TEXT NOT NULL,
        repo TEXT NOT NULL,
        sha TEXT NOT NULL,
        ref TEXT NOT NULL,
        event TEXT NOT NULL,
        workflow_file TEXT NOT NULL,
        workflow_name TEXT NOT NULL,
        installation_id INTEGER,
        attempt INTEGER NOT NULL,
        run_number INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX runs_delivery ON runs (delivery_id);
      CREATE INDEX runs_repo_sha ON runs (repo, sha);
      CREATE INDEX runs_repo_workflow ON runs (repo, workflow_file, run_number);

      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        instance_key TEXT NOT NULL,
        display_name TEXT NOT NULL,
        label TEXT NOT NULL,
        external_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed')),
        conclusion TEXT,
        check_run_id INTEGER,
        status_context TEXT,
        approval TEXT NOT NULL CHECK (approval IN ('not_required', 'pending', 'approved', 'rejected')),
        spec TEXT,
        result TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE (run_id, instance_key)
      );
      CREATE INDEX jobs_status ON jobs (status, id);

      CREATE TABLE vms (
        job_id INTEGER PRIMARY KEY REFERENCES jobs (id),
        pid INTEGER NOT NULL,
        dir TEXT NOT NULL,
        started_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'delivery retries (failures, next attempt, last error), repository key, payload retention, health probe',
    sql: `
      ALTER TABLE deliveries ADD COLUMN repo TEXT;
      UPDATE deliveries SET repo = json_extract(normalized, '$.repo.fullName');
      ALTER TABLE deliveries ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE deliveries ADD COLUMN next_attempt_at TEXT;
      ALTER TABLE deliveries ADD COLUMN last_error TEXT;
      ALTER TABLE deliveries ADD COLUMN failing_since TEXT;
      ALTER TABLE deliveries ADD COLUMN payload_deleted_at TEXT;
      CREATE INDEX deliveries_processing_repo ON deliveries (status, forge, repo);
      CREATE INDEX deliveries_received ON deliveries (received_at);
      CREATE TABLE health_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
    `,
  },
  {
    version: 3,
    description: 'report outbox: the final report of a completed job until the forge has it',
    sql: `
      ALTER TABLE jobs ADD COLUMN pending_report TEXT;
      CREATE INDEX jobs_pending_report ON jobs (id) WHERE pending_report IS NOT NULL;
    `,
  },
];
