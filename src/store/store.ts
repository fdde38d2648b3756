/**
 * The durable store: webhook deliveries, installations, runs, jobs and the VMs in use.
 * Every method is async so that another backend (PostgreSQL) can pass the same contract tests
 * (test/support/store-contract.ts). Times are ISO-8601 strings (UTC).
 */
import type { Forge, ForgeEvent } from '../forge/event-types.ts';
import type { JobConclusion, JobResult } from '../job/result.ts';
import type { Completion } from '../report/reporter.ts';

export type { Forge, ForgeEvent };

// ---------------------------------------------------------------------------------------------
// Deliveries

export type DeliveryStatus = 'pending' | 'processing' | 'done' | 'ignored' | 'failed';

export interface NewDelivery {
  /** `X-GitHub-Delivery` / `X-Gitea-Delivery` / `X-Forgejo-Delivery`. Unique. */
  id: string;
  forge: Forge;
  /** Header event name, e.g. `push`, `pull_request`. */
  event: string;
  action?: string | null;
  /**
   * Second dedupe key, unique when set. Forgejo replays get a new delivery id, so Forgejo
   * deliveries carry `forgejo:<repo>:<event>:<action or ref>:<sha>`. Null for GitHub.
   */
  dedupeKey?: string | null;
  /** The normalised event the worker acts on. */
  normalized: ForgeEvent;
  /**
   * The raw JSON body exactly as received (for `github.event`): its bytes or its text. Bytes are
   * taken, not copied: a store may move their memory elsewhere (SQLite hands it to its writer
   * thread), so the caller must not use the buffer after this call.
   */
  payload: string | Uint8Array;
  /** Default `pending`. Installation events, applied at once, are stored as `done`. */
  status?: 'pending' | 'done' | 'ignored';
  /** Default: now. */
  receivedAt?: string;
}

export interface Delivery {
  id: string;
  forge: Forge;
  event: string;
  action: string | null;
  dedupeKey: string | null;
  normalized: ForgeEvent;
  payload: string;
  receivedAt: string;
  status: DeliveryStatus;
  /** Why it failed or was ignored. */
  error: string | null;
  /** How many times it was claimed (requeues after a crash count). */
  attempts: number;
  updatedAt: string;
  /** `owner/name` the event is about (null for installation events): deliveries of one repository are processed one at a time. */
  repo: string | null;
  /** Transient failures since it last succeeded or was redelivered (see src/scheduler/delivery-retry.ts). */
  failures: number;
  /** A pending delivery waiting for a retry is not claimed before this time; null = at once. */
  nextAttemptAt: string | null;
  /** The last transient failure, kept while it is retried and after. */
  lastError: string | null;
  /** When the current run of failures began (the give-up limit counts from here). */
  failingSince: string | null;
  /** Set when retention deleted the payload (the row stays for the runs that refer to it). */
  payloadDeletedAt: string | null;
}

/** What `/healthz` says about the store. */
export interface StoreHealth {
  ok: boolean;
  /** Why it is not ok: one line an operator can act on. */
  reason?: string;
}

export interface PruneDeliveriesResult {
  /** Finished deliveries no run refers to, deleted with their payload. */
  deleted: number;
  /** Finished deliveries runs refer to: the row stays, the payload is deleted. */
  stripped: number;
}

export interface InsertDeliveryResult {
  /** False when a delivery with the same id or dedupe key is already stored. */
  inserted: boolean;
}

// ---------------------------------------------------------------------------------------------
// Installations (GitHub App)

export interface Installation {
  id: number;
  /** Account login (user or organisation). */
  account: string;
  /** `owner/name` list; null = all repositories of the account. */
  repos: string[] | null;
  suspended: boolean;
  updatedAt: string;
}

// ---------------------------------------------------------------------------------------------
// Runs and jobs

export interface NewRun {
  /** The delivery that caused this run (null for manual/local runs). */
  deliveryId: string | null;
  forge: Forge;
  /** `owner/name`. */
  repo: string;
  sha: string;
  ref: string;
  /** `push`, `pull_request`, … (the workflow's event_name). */
  event: string;
  /** Workflow file path relative to the repository root. */
  workflowFile: string;
  workflowName: string;
  installationId?: number | null;
  /** 1 for the first run, +1 per re-run of the same workflow/sha. Default 1. */
  attempt?: number;
}

export interface Run extends Required<Omit<NewRun, 'installationId'>> {
  id: number;
  installationId: number | null;
  /** Per repo + workflow file, 1-based, assigned at creation (GitHub's run_number). */
  runNumber: number;
  createdAt: string;
}

export type JobStatus = 'queued' | 'in_progress' | 'completed';

/**
 * Fork PRs from outsiders wait for a maintainer: `pending` → `approved` (then runs) or
 * `rejected`. Everything else is `not_required`.
 */
export type ApprovalState = 'not_required' | 'pending' | 'approved' | 'rejected';

export interface NewJob {
  /** JobInstance.key, unique within the run. */
  instanceKey: string;
  displayName: string;
  /** The image label (`runs-on`), for per-label concurrency caps. */
  label: string;
  /** Unique across the store; round-trips through GitHub's check-run external_id. Default: random UUID. */
  externalId?: string;
  approval?: ApprovalState;
  /** Whatever the worker needs to start the job again after a restart (matrix, needs…). JSON. */
  spec?: unknown;
}

export interface Job {
  id: number;
  runId: number;
  instanceKey: string;
  displayName: string;
  label: string;
  externalId: string;
  status: JobStatus;
  conclusion: JobConclusion | 'action_required' | 'neutral' | null;
  /** GitHub check-run id, once created. */
  checkRunId: number | null;
  /** Forgejo commit-status context, once posted. */
  statusContext: string | null;
  approval: ApprovalState;
  spec: unknown;
  result: JobResult | null;
  /** One-line error when the job failed outside any step. */
  error: string | null;
  /**
   * The final report of a completed job that the forge has not confirmed yet (the forge was down,
   * or forgevm stopped while sending it); null once it got through. The next start sends it.
   */
  pendingReport: Completion | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  updatedAt: string;
}

/** Fields `updateJob` may change. Undefined = leave as is; null clears. */
export interface JobPatch {
  status?: JobStatus;
  conclusion?: Job['conclusion'];
  checkRunId?: number | null;
  statusContext?: string | null;
  approval?: ApprovalState;
  spec?: unknown;
  result?: JobResult | null;
  error?: string | null;
  pendingReport?: Completion | null;
  startedAt?: string | null;
  completedAt?: string | null;
}

// ---------------------------------------------------------------------------------------------
// VMs in use (for reaping after a crash)

export interface VmRecord {
  jobId: number;
  pid: number;
  /** The VM's working folder (overlay disk, sockets, pidfile). */
  dir: string;
  startedAt: string;
}

export interface RecoveredJob {
  job: Job;
  /** The VM recorded for this job, if any: the caller kills it and removes the folder. */
  vm: VmRecord | null;
}

// ---------------------------------------------------------------------------------------------

export interface Store {
  // Deliveries
  /** Durable when the promise resolves (committed to disk). Dedupes by id and by dedupeKey. */
  insertDelivery(delivery: NewDelivery): Promise<InsertDeliveryResult>;
  getDelivery(id: string): Promise<Delivery | null>;
  /**
   * Atomically takes the oldest pending delivery that is due (`nextAttemptAt` unset or ≤ `now`,
   * default the current time) and whose repository has no delivery `processing`, and marks it
   * processing; null when none.
   */
  claimNextDelivery(now?: string): Promise<Delivery | null>;
  /** `pending` puts a claimed delivery back as it was (a shutdown interrupted it): no failure is counted. */
  markDelivery(id: string, status: DeliveryStatus, error?: string | null): Promise<void>;
  /**
   * A transient failure: back to `pending`, not claimed before `nextAttemptAt`; counts the
   * failure, keeps `error` as the last error, and starts `failingSince` if not yet set.
   */
  deferDelivery(id: string, retry: { nextAttemptAt: string; error: string }): Promise<Delivery>;
  /**
   * A redelivery of a stored delivery (same id, or same dedupe key): a `failed` one goes back to
   * `pending` with its retry state reset, and a pending one waiting for its retry is made due now.
   * Returns the id of the delivery requeued, or null when there was nothing to requeue (it is
   * done, ignored, processing, or already due).
   */
  requeueDelivery(id: string, dedupeKey?: string | null): Promise<string | null>;
  /**
   * Retention: finished deliveries (done, ignored, failed) received before `olderThan` are
   * deleted when no run refers to them; the others lose their payload (see Delivery.payloadDeletedAt).
   * Deliveries whose runs still have unfinished jobs are left whole.
   */
  pruneDeliveries(olderThan: string): Promise<PruneDeliveriesResult>;
  /** At start: deliveries left `processing` by a crashed process go back to `pending`. Returns how many. */
  requeueStaleProcessing(): Promise<number>;
  listDeliveries(filter?: { status?: DeliveryStatus; limit?: number }): Promise<Delivery[]>;
  countDeliveries(status?: DeliveryStatus): Promise<number>;

  // Installations
  upsertInstallation(inst: { id: number; account: string; repos: string[] | null; suspended?: boolean }): Promise<void>;
  /** Adds/removes repos of a `selected` installation; unknown installation → created. */
  updateInstallationRepos(id: number, account: string, change: { added: string[]; removed: string[]; selection?: 'all' | 'selected' }): Promise<void>;
  setInstallationSuspended(id: number, suspended: boolean): Promise<void>;
  deleteInstallation(id: number): Promise<void>;
  getInstallation(id: number): Promise<Installation | null>;
  /** The installation covering `owner/name` (explicit repo list, or all repos of the owner). */
  findInstallationForRepo(fullName: string): Promise<Installation | null>;

  // Runs
  /** Assigns runNumber (per repo + workflow file) in the same transaction. */
  createRun(run: NewRun): Promise<Run>;
  getRun(id: number): Promise<Run | null>;
  listRunsByDelivery(deliveryId: string): Promise<Run[]>;
  listRunsBySha(repo: string, sha: string): Promise<Run[]>;

  // Jobs
  /** Creates all jobs of a run in one transaction (status queued). */
  createJobs(runId: number, jobs: NewJob[]): Promise<Job[]>;
  getJob(id: number): Promise<Job | null>;
  findJobByExternalId(externalId: string): Promise<Job | null>;
  listJobsByRun(runId: number): Promise<Job[]>;
  /** Oldest first. */
  listJobsByStatus(status: JobStatus, limit?: number): Promise<Job[]>;
  /** Completed jobs whose final report the forge has not confirmed (Job.pendingReport), oldest first. */
  listJobsWithPendingReports(): Promise<Job[]>;
  updateJob(id: number, patch: JobPatch): Promise<Job>;
  /**
   * Compare-and-set: applies the patch only if the job's status is still `from`.
   * Returns the updated job, or null when someone else moved it first.
   */
  transitionJob(id: number, from: JobStatus, patch: JobPatch): Promise<Job | null>;

  // VMs
  recordVm(vm: Omit<VmRecord, 'startedAt'> & { startedAt?: string }): Promise<void>;
  removeVm(jobId: number): Promise<void>;
  listVms(): Promise<VmRecord[]>;

  /**
   * At start, after a crash: returns the jobs that were in_progress, with their VM records.
   * Changes nothing: the caller reaps the VMs, concludes the jobs ("runner restarted") with
   * updateJob, and removes the VM records. Queued jobs stay queued.
   */
  recoverAfterRestart(): Promise<RecoveredJob[]>;

  /** Resolves true when the store answers a trivial query. */
  ping(): Promise<boolean>;
  /** For /healthz: whether the store can write now (a real write on the delivery path), and why not. */
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}
