/**
 * The worker: takes stored deliveries from the Store and turns them into check runs and VMs.
 *
 *   delivery → workflow files at the head SHA (forge API) → plan → one store job + one check per
 *   job instance (queued; skipped ones completed with the reason) → job graph → per job: wait
 *   for a runner slot, fetch the commit, run it in a VM, stream the log tail, report, persist.
 *
 * Everything that touches VMs or workflow semantics is injected (planner, graph runner, engine),
 * so tests run the whole pipeline with fakes and the integrator wires the real ones.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { classifyFailure } from '../forge/api-failure.ts';
import type { CheckRunEvent, CheckSuiteEvent, ForgeEvent, PullRequestEvent, PushEvent } from '../forge/event-types.ts';
import { fetchSource } from '../forge/fetch-source.ts';
import type { ForgeLogger } from '../forge/github-client.ts';
import type { JobResult } from '../job/result.ts';
import type { WorkspaceSource } from '../job/workspace.ts';
import { JobLog } from '../log/job-log.ts';
import type { JobStateLogLine } from '../log/logger.ts';
import type { ForgeGitCredential } from '../actions/fetch.ts';
import { annotationsFromLog, commandAnnotations } from '../report/annotations.ts';
import type { JobIdentity } from '../services/job-identity.ts';
import { secretsForJob } from '../workflow/call-secrets.ts';
import { buildCheckOutput, type CheckOutput } from '../report/check-output.ts';
import { LiveTail } from '../report/live-tail.ts';
import type { Completion, ReportButton, ReportHandle, ReportTarget } from '../report/reporter.ts';
import type { Delivery, Job, Run, Store } from '../store/store.ts';
import type { LoadedWorkflows, WorkflowSource } from '../workflow/load.ts';
import { evaluateValue, interpolate } from '../workflow/expressions.ts';
import { jobContexts } from '../workflow/graph.ts';
import type { Concurrency, GithubContext, NeedsEntry, PlannedJob, PlannedWorkflow, Workflow } from '../workflow/model.ts';
import { eitherSignal } from '../util/either-signal.ts';
import { ConcurrencyGroups, concurrencyReason, NO_CONCURRENCY_GROUP, type ConcurrencySlot } from './concurrency-groups.ts';
import type { ForgeAccess } from './forge-access.ts';
import { DEFAULT_RETRY_POLICY, formatDuration, nextRetry, type RetryPolicy } from './delivery-retry.ts';
import { RunnerLimits } from './limits.ts';

/** The event as the planner sees it (same shape as src/workflow/planner.ts PlanEvent). */
export interface WorkerPlanEvent {
  name: string;
  action?: string;
  ref: string;
  baseRef?: string;
  sha: string;
  before?: string;
  headCommitMessage?: string;
  payload: Record<string, unknown>;
  inputs: Record<string, string>;
}

export type PlanFn = (event: WorkerPlanEvent, workflows: Workflow[], changedFiles: string[] | undefined, github: GithubContext) => PlannedWorkflow[];

export type GraphRunner = (
  plan: PlannedJob[],
  runJob: (job: PlannedJob, needs: Record<string, NeedsEntry>, signal: AbortSignal) => Promise<JobResult>,
  opts: { maxParallel: number; signal?: AbortSignal; contexts?: { github?: unknown } },
) => Promise<Map<string, JobResult>>;

export interface ExecuteJobRequest {
  /** Store job id (for VM records and the job folder name). */
  jobId: number;
  job: PlannedJob;
  needs: Record<string, NeedsEntry>;
  github: GithubContext;
  /** The commit in the host's bare cache; the engine makes the shallow working copy. */
  workspace: WorkspaceSource;
  repoName: string;
  log: JobLog;
  signal: AbortSignal;
  onVmStarted(): void;
  /** The job's `secrets` context (none for fork pull requests; a called workflow's as passed down). */
  secrets: Record<string, string>;
  /** The run's forge and its git credential, for actions hosted on that forge. */
  forge: ForgeGitCredential;
  /** Who the job is, for the cache and artifact services (scopes, the run's artifacts). */
  identity: JobIdentity;
}

export type ExecuteJob = (request: ExecuteJobRequest) => Promise<JobResult>;

/** Structured events for the service log (start-worker wires them to the pino helpers). */
export interface WorkerEvents {
  /** One call per job state change: queued, in_progress, completed (with its conclusion). */
  onJobState?(line: JobStateLogLine): void;
}

export interface WorkerOptions {
  store: Store;
  forges: Partial<Record<'github' | 'forgejo', ForgeAccess>>;
  loadWorkflows: (source: WorkflowSource, folders: string[]) => Promise<LoadedWorkflows>;
  plan: PlanFn;
  runGraph: GraphRunner;
  executeJob: ExecuteJob;
  /** A run's secrets (src/secrets/run-secrets.ts); absent: runs get none. Throws a one-line reason. */
  secretsFor?: (event: PushEvent | PullRequestEvent) => Promise<Record<string, string>>;
  /** Called once the worker has stopped (closes what start-worker opened for it). */
  onStopped?: () => Promise<void>;
  /** Kills VMs left by a crashed process (the engine's sweep). */
  reapVms: () => Promise<void>;
  limits: RunnerLimits;
  workflowDirs: string[];
  /** Job logs go here. */
  logsDir: string;
  /** Bare repository caches go here. */
  cacheRoot: string;
  logCapBytes: number;
  log: ForgeLogger;
  events?: WorkerEvents;
  /** Check-run log tail interval (default 10 s). */
  progressIntervalMs?: number;
  /** Delivery poll interval when idle (default 1 s); `notify()` wakes the loop sooner. */
  pollIntervalMs?: number;
  /** Deliveries planned at once (default 4). Their jobs run in the background, under `limits`. */
  maxDeliveries?: number;
  /** Backoff and give-up limit for deliveries that failed for a transient reason. */
  retryPolicy?: RetryPolicy;
  /**
   * Aborted by `stop()` after `forgeCallGraceMs` (default 2 s): every forge API call in flight,
   * and every retry wait in the clients, ends then (start-worker passes the clients' controller).
   */
  forgeCalls?: AbortController;
  forgeCallGraceMs?: number;
  /** `stop()` waits this long (default 5 s) for deliveries and jobs to wind down, then returns anyway. */
  stopGraceMs?: number;
}

const TRUSTED_ASSOCIATIONS = new Set(['OWNER', 'MEMBER', 'COLLABORATOR']);
export const APPROVE_ACTION: ReportButton = { label: 'Approve and run', identifier: 'approve', description: 'Run this commit in a VM' };
const RUNNER_RESTARTED = 'runner restarted while the job was running; re-run it from the checks tab';
/** A re-run whose delivery lost its payload to retention cannot be replayed faithfully. */
const PAYLOAD_DELETED = 'its stored webhook payload was deleted by retention (deliveryRetentionDays); push a new commit to run it again';

type Trigger = PushEvent | PullRequestEvent;

/** Job spec kept in the store: enough to find the planned job again after a restart. */
interface JobSpec {
  workflowFile: string;
  instanceKey: string;
}

/**
 * A job's external id, the same every time the same delivery plans the same job: a retry, or a
 * restart halfway through, finds the check run (by external_id) and the store job made the
 * first time instead of making them again. `cause` is the delivery being processed (the push
 * itself, or the re-run request); `trigger` the push or pull request it runs.
 */
function stableExternalId(cause: string, trigger: string, workflowFile: string, instanceKey: string): string {
  const hex = createHash('sha256').update(`${cause}\0${trigger}\0${workflowFile}\0${instanceKey}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Rethrows a failure worth retrying (the forge is down or busy); returns for the others. */
function rethrowTransient(error: unknown): void {
  if (classifyFailure(error).kind !== 'permanent') throw error;
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

function needsApproval(event: Trigger): boolean {
  if (event.kind !== 'pull_request' || !event.isFork) return false;
  if (event.forge === 'forgejo') return true;
  return !TRUSTED_ASSOCIATIONS.has((event.authorAssociation ?? '').toUpperCase());
}

/** The result of a job that ended before any step ran. */
function resultWithoutSteps(conclusion: JobResult['conclusion'], logPath: string, error: string): JobResult {
  return { conclusion, steps: [], outputs: {}, logPath, startedAt: new Date().toISOString(), durationMs: 0, error };
}

/** A result cancelled by a concurrency group says so, whatever else the cancellation reported. */
function withCancelReason(result: JobResult, reason: string | undefined): JobResult {
  return result.conclusion === 'cancelled' && reason ? { ...result, error: reason } : result;
}

function jobResultOf(job: Job, fallbackLog: string): JobResult {
  if (job.result) return job.result;
  const conclusion = job.conclusion === 'success' || job.conclusion === 'skipped' || job.conclusion === 'cancelled' || job.conclusion === 'timed_out' ? job.conclusion : 'failure';
  return { conclusion, steps: [], outputs: {}, logPath: fallbackLog, startedAt: job.startedAt ?? job.createdAt, durationMs: 0, ...(job.error ? { error: job.error } : {}) };
}

type DispatchOutcome = { status: 'done' | 'ignored'; reason?: string; running?: Promise<void> };

export class Worker {
  #opts: WorkerOptions;
  #log: ForgeLogger;
  #stopping = new AbortController();
  #concurrency = new ConcurrencyGroups();
  #active = new Set<Promise<void>>();
  /** Deliveries being planned (until their jobs exist, or they failed): at most maxDeliveries. */
  #planning = new Set<string>();
  /** Runs whose jobs this process is executing: a resumed delivery never runs them twice. */
  #executingRuns = new Set<number>();
  #wake?: () => void;
  #loop?: Promise<void>;

  constructor(options: WorkerOptions) {
    this.#opts = options;
    this.#log = options.log;
  }

  /** Recovers from a crash, then processes deliveries until stop(). */
  async start(): Promise<void> {
    await this.recoverAfterRestart();
    this.#loop = this.#run();
  }

  /** Wake the loop now (the intake calls this after storing a delivery). */
  notify(): void {
    this.#wake?.();
  }

  /**
   * Stops taking deliveries. Deliveries being planned go back to pending, queued jobs stay
   * queued, and jobs running in a VM are cancelled and left `in_progress`: the next start
   * concludes them ("runner restarted") and runs the rest. Forge calls end after
   * `forgeCallGraceMs`; after `stopGraceMs` this resolves even if something is still winding down.
   */
  async stop(): Promise<void> {
    this.#stopping.abort(new Error('forgevm is stopping'));
    this.#wake?.();
    const forgeCalls = this.#opts.forgeCalls;
    const abortCalls = () => forgeCalls?.abort(new Error('forgevm is stopping'));
    const callTimer = setTimeout(abortCalls, this.#opts.forgeCallGraceMs ?? 2_000);
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<false>((resolve) => (graceTimer = setTimeout(() => resolve(false), this.#opts.stopGraceMs ?? 5_000)));
    const settled = (async () => {
      await this.#loop;
      await this.idle();
      return true as const;
    })();
    const done = await Promise.race([settled, graceOver]);
    clearTimeout(callTimer);
    clearTimeout(graceTimer);
    abortCalls();
    if (!done) this.#log.warn(`worker: ${this.#active.size} deliveries or jobs were still winding down when the stop grace ended; the next start takes them up`);
    await this.#opts.onStopped?.().catch((error) => this.#log.warn(`worker: closing its resources failed: ${messageOf(error)}`));
  }

  /** Resolves when no delivery or job is being worked on. */
  async idle(): Promise<void> {
    while (this.#active.size > 0) await Promise.allSettled([...this.#active]);
  }

  async #run(): Promise<void> {
    const max = this.#opts.maxDeliveries ?? 4;
    while (!this.#stopping.signal.aborted) {
      let claimed: Delivery | null = null;
      if (this.#planning.size < max) {
        try {
          claimed = await this.#opts.store.claimNextDelivery();
        } catch (error) {
          this.#log.error(`worker: cannot claim a delivery: ${messageOf(error)}`);
        }
      }
      if (claimed) {
        void this.#begin(claimed);
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#opts.pollIntervalMs ?? 1_000);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  #track(work: Promise<void>): void {
    const tracked = work.catch((error) => this.#log.error(`worker: ${messageOf(error)}`)).finally(() => this.#active.delete(tracked));
    this.#active.add(tracked);
  }

  /**
   * Claims one delivery and waits until it is planned (its jobs keep running in the background).
   * Returns false when there was nothing to claim.
   */
  async processNext(): Promise<boolean> {
    const delivery = await this.#opts.store.claimNextDelivery();
    if (!delivery) return false;
    await this.#begin(delivery);
    return true;
  }

  /** Starts on a claimed delivery; resolves once it is planned (or failed, or set aside for a retry). */
  #begin(delivery: Delivery): Promise<void> {
    this.#planning.add(delivery.id);
    let ready: () => void = () => {};
    const setUp = new Promise<void>((resolve) => (ready = resolve));
    this.#track(this.#handleDelivery(delivery, ready));
    return setUp.finally(() => {
      this.#planning.delete(delivery.id);
      this.#wake?.(); // a planning slot is free
    });
  }

  /** `ready` is called once the delivery is durably turned into store jobs (or failed, or deferred). */
  async #handleDelivery(delivery: Delivery, ready: () => void): Promise<void> {
    let work: DispatchOutcome;
    try {
      work = await this.#dispatch(delivery, delivery.normalized);
      if (work.running) this.#track(work.running);
      await this.#opts.store.markDelivery(delivery.id, work.status, work.reason ?? null);
    } catch (error) {
      await this.#deliveryFailed(delivery, error).catch((e) => this.#log.error(`delivery ${delivery.id}: cannot record its failure: ${messageOf(e)}`));
    } finally {
      ready();
    }
  }

  /**
   * A delivery that could not be planned: a shutdown leaves it pending, a transient failure
   * (forge down, 5xx, rate limit) is retried with backoff, anything else fails it with the reason.
   */
  async #deliveryFailed(delivery: Delivery, error: unknown): Promise<void> {
    const { store } = this.#opts;
    const failure = classifyFailure(error);
    const what = `delivery ${delivery.id} (${delivery.event}${delivery.repo ? ` ${delivery.repo}` : ''})`;
    if (failure.kind === 'aborted' || this.#stopping.signal.aborted) {
      await store.markDelivery(delivery.id, 'pending', null);
      this.#log.info(`${what} left pending: forgevm is stopping (${failure.reason}); the next start processes it`);
      return;
    }
    let reason = failure.reason;
    if (failure.kind === 'transient') {
      const now = Date.now();
      const failures = delivery.failures + 1;
      const failingSinceMs = delivery.failingSince ? Date.parse(delivery.failingSince) : now;
      const decision = nextRetry(this.#opts.retryPolicy ?? DEFAULT_RETRY_POLICY, { failures, failingSinceMs, ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}) }, now);
      if (decision.retry) {
        await store.deferDelivery(delivery.id, { nextAttemptAt: new Date(now + decision.delayMs).toISOString(), error: failure.reason });
        this.#log.warn(`${what} failed for a passing reason: ${failure.reason}; attempt ${failures + 1} in ${formatDuration(decision.delayMs)}`);
        return;
      }
      reason = `${decision.reason}; last error: ${failure.reason}`;
    }
    this.#log.error(`${what} failed: ${reason}`);
    await store.markDelivery(delivery.id, 'failed', reason);
  }

  async #dispatch(delivery: Delivery, event: ForgeEvent): Promise<DispatchOutcome> {
    const access = this.#opts.forges[event.forge];
    if (!access) return { status: 'ignored', reason: `no ${event.forge} configuration: this forge is not set up` };
    switch (event.kind) {
      case 'push':
      case 'pull_request':
        // Also resumes what an earlier attempt (before a crash, a restart or a failure) created.
        return { status: 'done', running: (await this.#startRuns(access, delivery, { delivery, event }, { attempt: 1, approved: false })).running };
      case 'check_run':
        return this.#onCheckRun(access, delivery, event);
      case 'check_suite':
        return this.#onCheckSuite(access, delivery, event);
      default:
        return { status: 'ignored', reason: `${event.kind} events need no work` };
    }
  }

  // ------------------------------------------------------------------------------------------
  // Planning and job creation

  #planEvent(event: Trigger, payload: Record<string, unknown>): WorkerPlanEvent {
    if (event.kind === 'push') {
      return { name: 'push', ref: event.ref, sha: event.sha, before: event.before, headCommitMessage: event.headCommitMessage, payload, inputs: {} };
    }
    return { name: 'pull_request', action: event.action, ref: `refs/heads/${event.headRef}`, baseRef: event.baseRef, sha: event.headSha, payload, inputs: {} };
  }

  #githubContext(access: ForgeAccess, event: Trigger, payload: Record<string, unknown>, run: { id: number; runNumber: number; attempt: number; workflowName: string } | undefined): GithubContext {
    const isPush = event.kind === 'push';
    const ref = isPush ? event.ref : `refs/pull/${event.number}/merge`;
    return {
      event_name: isPush ? 'push' : 'pull_request',
      event: payload,
      sha: isPush ? event.sha : event.headSha,
      ref,
      ref_name: isPush ? ref.replace(/^refs\/(heads|tags)\//, '') : `${event.number}/merge`,
      ref_type: isPush ? (ref.startsWith('refs/tags/') ? 'tag' : 'branch') : '',
      head_ref: isPush ? '' : event.headRef,
      base_ref: isPush ? '' : event.baseRef,
      repository: event.repo.fullName,
      repository_owner: event.repo.owner,
      run_id: String(run?.id ?? 0),
      run_number: String(run?.runNumber ?? 0),
      run_attempt: String(run?.attempt ?? 1),
      actor: event.actor,
      workflow: run?.workflowName ?? '',
      server_url: access.serverUrl,
      api_url: access.apiUrl,
    };
  }

  async #changedFiles(access: ForgeAccess, event: Trigger): Promise<string[] | undefined> {
    try {
      if (event.kind === 'pull_request') return await access.pullRequestFiles(event.repo.fullName, event.number, event.installationId);
      if (event.changedFiles.length > 0) return event.changedFiles;
      if (/^0+$/.test(event.before) || event.created) return undefined;
      return await access.compareFiles(event.repo.fullName, event.before, event.sha, event.installationId);
    } catch (error) {
      // A forge that is down is waited for (the delivery is retried) rather than guessed around.
      rethrowTransient(error);
      // Unknown changes: paths filters then match as GitHub does when it cannot tell (run).
      this.#log.warn(`cannot list changed files for ${event.repo.fullName}: ${messageOf(error)}`);
      return undefined;
    }
  }

  async #plan(access: ForgeAccess, delivery: Delivery, event: Trigger): Promise<{ planned: PlannedWorkflow[]; loaded: LoadedWorkflows; payload: Record<string, unknown> }> {
    const sha = event.kind === 'push' ? event.sha : event.headSha;
    const payload = JSON.parse(delivery.payload || '{}') as Record<string, unknown>;
    const source = access.workflowSource(event.repo.fullName, sha, event.installationId);
    const loaded = await this.#opts.loadWorkflows(source, this.#opts.workflowDirs);
    const valid = loaded.workflows.filter((w) => !loaded.invalidFiles.includes(w.file));
    const changed = await this.#changedFiles(access, event);
    const planned = this.#opts.plan(this.#planEvent(event, payload), valid, changed, this.#githubContext(access, event, payload, undefined));
    return { planned, loaded, payload };
  }

  /**
   * Plans a push / PR and creates its runs, jobs and checks; returns a promise for the jobs'
   * execution. `cause` is the delivery being processed: the push / PR itself, or a re-run request
   * (`onlyJob`, check_run.rerequested, re-runs one job and replays the others' results).
   *
   * Safe to repeat: checks are created before the store jobs, under external ids that are the
   * same on every attempt, so a retry or a restart finds what was made before instead of making
   * it twice, and resumes the runs it finds that this process is not executing.
   */
  async #startRuns(
    access: ForgeAccess,
    cause: Delivery,
    trigger: { delivery: Delivery; event: Trigger },
    opts: { attempt: number; approved: boolean; onlyJob?: JobSpec },
  ): Promise<{ running: Promise<void> }> {
    const { store } = this.#opts;
    const { event } = trigger;
    const { planned, loaded, payload } = await this.#plan(access, trigger.delivery, event);
    const sha = event.kind === 'push' ? event.sha : event.headSha;
    const gated = !opts.approved && needsApproval(event);
    const executions: Promise<void>[] = [];
    const processingTrigger = cause.id === trigger.delivery.id;

    // What an earlier attempt at this very delivery created and did not finish: run it now.
    const earlierRuns = processingTrigger ? await store.listRunsByDelivery(trigger.delivery.id) : [];
    for (const run of earlierRuns) {
      const resumed = await this.#resume(access, run, planned, event, payload);
      if (resumed) executions.push(resumed.running);
    }

    if (!opts.onlyJob) await this.#reportInvalidWorkflows(access, event, loaded);

    for (const pw of planned) {
      if (pw.skipped) continue;
      if (opts.onlyJob && pw.workflow.file !== opts.onlyJob.workflowFile) continue;
      const jobsToCreate = opts.onlyJob ? pw.jobs.filter((j) => j.instance.key === opts.onlyJob!.instanceKey) : pw.jobs;
      if (jobsToCreate.length === 0) continue;
      if (processingTrigger && earlierRuns.some((r) => r.workflowFile === pw.workflow.file && r.attempt === opts.attempt)) continue;
      const specs = jobsToCreate.map((pj) => ({ pj, externalId: stableExternalId(cause.id, trigger.delivery.id, pw.workflow.file, pj.instance.key) }));
      const made = await store.findJobByExternalId(specs[0]!.externalId);
      if (made) {
        const run = await store.getRun(made.runId);
        const resumed = run ? await this.#resume(access, run, planned, event, payload) : undefined;
        if (resumed) executions.push(resumed.running);
        continue;
      }

      // 1. The checks, so the PR shows every job as queued. A forge that fails here leaves
      //    nothing half-made in the store: the delivery is retried and finds these checks again.
      const handles = new Map<string, ReportHandle>();
      for (const { pj, externalId } of specs) {
        const target: ReportTarget = {
          forge: event.forge,
          repo: event.repo.fullName,
          sha,
          installationId: event.installationId,
          workflowName: pw.workflow.name,
          jobName: pj.instance.displayName,
          externalId,
        };
        try {
          const handle = await access.reporter.queued(target);
          handles.set(pj.instance.key, handle);
          if (gated && pj.decision.runs) await access.reporter.completed(handle, this.#gatedCompletion(access, event as PullRequestEvent));
        } catch (error) {
          rethrowTransient(error);
          // The job still runs; its check is created (or found) again when it completes.
          this.#log.error(`cannot create the check for ${event.repo.fullName} ${pw.workflow.name} / ${pj.instance.displayName}: ${messageOf(error)}`);
        }
      }

      // 2. The store: run and jobs.
      const run = await store.createRun({
        deliveryId: trigger.delivery.id,
        forge: event.forge,
        repo: event.repo.fullName,
        sha,
        ref: event.kind === 'push' ? event.ref : `refs/pull/${event.number}/head`,
        event: event.kind,
        workflowFile: pw.workflow.file,
        workflowName: pw.workflow.name,
        installationId: event.installationId ?? null,
        attempt: opts.attempt,
      });
      const created = await store.createJobs(
        run.id,
        specs.map(({ pj, externalId }) => ({
          instanceKey: pj.instance.key,
          displayName: pj.instance.displayName,
          label: pj.instance.runsOn,
          externalId,
          approval: gated ? ('pending' as const) : opts.approved && needsApproval(event) ? ('approved' as const) : ('not_required' as const),
          spec: { workflowFile: pw.workflow.file, instanceKey: pj.instance.key } satisfies JobSpec,
        })),
      );
      const jobs = new Map<string, Job>();
      for (const job of created) {
        this.#jobState(run, job, 'queued');
        const handle = handles.get(job.instanceKey);
        const waitsForApproval = gated && specs.find((s) => s.pj.instance.key === job.instanceKey)!.pj.decision.runs;
        const updated = await store.updateJob(job.id, {
          checkRunId: handle?.checkRunId ?? null,
          statusContext: handle?.statusContext ?? null,
          ...(waitsForApproval && handle ? { status: 'completed' as const, conclusion: 'action_required' as const, completedAt: new Date().toISOString() } : {}),
        });
        if (updated.status === 'completed') this.#jobState(run, updated, 'completed', { conclusion: 'action_required' });
        jobs.set(job.instanceKey, updated);
      }
      if (gated) continue;
      executions.push(this.#executeExclusive(run, () => this.#executeWithReplay(access, event, payload, run, pw, jobs)));
    }
    // Wrapped: an async function returning a bare promise would make callers wait for the jobs.
    return { running: Promise.all(executions).then(() => undefined) };
  }

  /** Executes a run's jobs unless this process already is; the run is marked before any await. */
  #executeExclusive(run: Run, execute: () => Promise<void>): Promise<void> {
    this.#executingRuns.add(run.id);
    return execute().finally(() => this.#executingRuns.delete(run.id));
  }

  async #executeWithReplay(access: ForgeAccess, event: Trigger, payload: Record<string, unknown>, run: Run, pw: PlannedWorkflow, jobs: Map<string, Job>): Promise<void> {
    const replay = await this.#earlierResults(run);
    await this.#execute(access, event, payload, run, pw, jobs, replay);
  }

  /**
   * Runs the queued jobs of a run made earlier (before a crash or a restart, or by an attempt
   * that failed afterwards), unless this process is running it already. Checks that are still
   * missing are created first. Returns the execution, or undefined when there is nothing to do.
   */
  async #resume(access: ForgeAccess, run: Run, planned: PlannedWorkflow[], event: Trigger, payload: Record<string, unknown>): Promise<{ running: Promise<void> } | undefined> {
    if (this.#executingRuns.has(run.id)) return undefined;
    const queued = (await this.#opts.store.listJobsByRun(run.id)).filter((j) => j.status === 'queued' && j.approval !== 'pending' && j.approval !== 'rejected');
    if (queued.length === 0 || this.#executingRuns.has(run.id)) return undefined;
    this.#executingRuns.add(run.id);
    try {
      const pw = planned.find((p) => p.workflow.file === run.workflowFile && !p.skipped);
      if (!pw) {
        for (const job of queued) {
          await this.#complete(access, run, job, resultWithoutSteps('cancelled', '', `workflow ${run.workflowFile} no longer plans this job`));
        }
        this.#executingRuns.delete(run.id);
        return undefined;
      }
      const jobs = new Map<string, Job>();
      for (const job of queued) jobs.set(job.instanceKey, job.checkRunId === null && job.statusContext === null ? await this.#queue(access, run, job) : job);
      this.#log.info(`run ${run.id} (${run.repo} ${run.workflowName}, attempt ${run.attempt}): resuming ${jobs.size} queued jobs`);
      return { running: this.#executeWithReplay(access, event, payload, run, pw, jobs).finally(() => this.#executingRuns.delete(run.id)) };
    } catch (error) {
      this.#executingRuns.delete(run.id);
      throw error;
    }
  }

  /**
   * Results a run replays for the jobs it does not run itself: its own completed jobs, and those
   * of earlier attempts of the same workflow for the same delivery (the latest attempt wins).
   */
  async #earlierResults(run: Run): Promise<Map<string, JobResult>> {
    const runs = run.deliveryId ? await this.#opts.store.listRunsByDelivery(run.deliveryId) : [run];
    const earlier = runs.filter((r) => r.workflowFile === run.workflowFile && r.attempt <= run.attempt).sort((a, b) => a.attempt - b.attempt || a.id - b.id);
    const results = new Map<string, JobResult>();
    for (const r of earlier) for (const [key, result] of await this.#storedResults(r)) results.set(key, result);
    // This run is not executing here, so a job of it still in progress was interrupted by a
    // restart: its dependents see the failure that recovery is reporting for it.
    for (const job of await this.#opts.store.listJobsByRun(run.id)) {
      if (job.status === 'in_progress') results.set(job.instanceKey, resultWithoutSteps('failure', join(this.#opts.logsDir, `${job.id}-${job.externalId}.log`), RUNNER_RESTARTED));
    }
    return results;
  }

  async #storedResults(run: Run): Promise<Map<string, JobResult>> {
    const results = new Map<string, JobResult>();
    for (const job of await this.#opts.store.listJobsByRun(run.id)) {
      if (job.status === 'completed') results.set(job.instanceKey, jobResultOf(job, join(this.#opts.logsDir, `${job.id}-${job.externalId}.log`)));
    }
    return results;
  }

  async #reportInvalidWorkflows(access: ForgeAccess, event: Trigger, loaded: LoadedWorkflows): Promise<void> {
    for (const file of loaded.invalidFiles) {
      const problems = loaded.problems.filter((p) => p.file === file);
      const target: ReportTarget = {
        forge: event.forge,
        repo: event.repo.fullName,
        sha: event.kind === 'push' ? event.sha : event.headSha,
        installationId: event.installationId,
        workflowName: file,
        jobName: 'invalid workflow',
        externalId: `invalid:${event.kind === 'push' ? event.sha : event.headSha}:${file}`,
      };
      try {
        const handle = await access.reporter.queued(target);
        await access.reporter.completed(handle, {
          conclusion: 'failure',
          output: {
            title: `${file} is not a valid workflow (${problems.length} problem${problems.length === 1 ? '' : 's'})`,
            summary: problems.map((p) => `- \`${p.file}:${p.line}:${p.column}\`: ${p.message}`).join('\n') || 'The file could not be parsed.',
            text: '',
          },
          annotations: problems.slice(0, 500).map((p) => ({ path: p.file, start_line: Math.max(1, p.line), end_line: Math.max(1, p.line), annotation_level: 'failure' as const, message: p.message })),
        });
      } catch (error) {
        rethrowTransient(error);
        this.#log.warn(`cannot report invalid workflow ${file} of ${event.repo.fullName}: ${messageOf(error)}`);
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Reporting helpers

  #jobState(run: Run, job: Job, status: JobStateLogLine['status'], end?: { conclusion: string; error?: string | null }): void {
    this.#opts.events?.onJobState?.({
      job: job.id,
      run: run.id,
      repo: run.repo,
      name: `${run.workflowName} / ${job.displayName}`,
      status,
      ...(end ? { conclusion: end.conclusion, error: end.error ?? null } : {}),
    });
  }

  #target(run: Run, job: Job): ReportTarget {
    return {
      forge: run.forge,
      repo: run.repo,
      sha: run.sha,
      installationId: run.installationId ?? undefined,
      workflowName: run.workflowName,
      jobName: job.displayName,
      externalId: job.externalId,
    };
  }

  #handle(run: Run, job: Job): ReportHandle {
    return { target: this.#target(run, job), ...(job.checkRunId !== null ? { checkRunId: job.checkRunId } : {}), ...(job.statusContext !== null ? { statusContext: job.statusContext } : {}) };
  }

  async #queue(access: ForgeAccess, run: Run, job: Job): Promise<Job> {
    const handle = await access.reporter.queued(this.#target(run, job));
    return this.#opts.store.updateJob(job.id, { checkRunId: handle.checkRunId ?? null, statusContext: handle.statusContext ?? null });
  }

  /** What the check of a fork PR's job says while it waits for a maintainer. */
  #gatedCompletion(access: ForgeAccess, event: PullRequestEvent): Completion {
    const github = access.forge === 'github';
    const output: CheckOutput = {
      title: github ? 'Waiting for a maintainer to approve this fork pull request' : 'Not run: pull requests from forks need a maintainer',
      summary: `This pull request comes from a fork by @${event.author}, who is not a member or collaborator of ${event.repo.fullName}. Its jobs run code from the fork, so they do not get a VM until someone with write access approves.`,
      text: github
        ? `A maintainer with write access must approve this run: click **Approve and run** above. The approval covers commit \`${event.headSha}\` only; new pushes need a new approval.`
        : 'Forgejo has no approval button: a maintainer can push the commit to a branch of this repository to run it.',
    };
    return { conclusion: 'action_required', output, ...(github ? { actions: [APPROVE_ACTION] } : {}) };
  }

  // ------------------------------------------------------------------------------------------
  // Execution

  async #execute(
    access: ForgeAccess,
    event: Trigger,
    payload: Record<string, unknown>,
    run: Run,
    pw: PlannedWorkflow,
    jobs: Map<string, Job>,
    replay: Map<string, JobResult>,
  ): Promise<void> {
    const github = this.#githubContext(access, event, payload, { id: run.id, runNumber: run.runNumber, attempt: run.attempt, workflowName: run.workflowName });
    const cloneUrl = event.repo.cloneUrl;
    const fetchRef = event.kind === 'push' ? event.ref : `refs/pull/${event.number}/head`;
    const branch = event.kind === 'push' ? (event.ref.startsWith('refs/heads/') ? event.ref : undefined) : `refs/heads/${event.headRef}`;
    const sha = github.sha;

    const base = { github, inputs: {}, vars: {} };
    const runSlot = await this.#enterConcurrency(run, pw.workflow.concurrency, base, this.#stopping.signal);
    // Read once per run; a store that cannot be read fails the jobs with its reason instead of
    // running them without the secrets they expect.
    let runSecrets: Record<string, string> | Error = {};
    try {
      runSecrets = (await this.#opts.secretsFor?.(event)) ?? {};
    } catch (error) {
      runSecrets = new Error(`cannot read the secrets of ${run.repo}: ${messageOf(error)}`);
    }
    const jobContext = {
      secrets: runSecrets,
      forge: { serverUrl: access.serverUrl, username: access.gitUsername, token: () => access.gitToken(run.installationId ?? undefined) },
      identity: {
        forge: run.forge,
        repo: run.repo,
        // Stable across re-run attempts, as GitHub's run id is: artifacts belong to the run.
        runId: `${run.deliveryId ?? run.id}:${run.workflowFile}`,
        runAttempt: run.attempt,
        ref: github.ref,
        ...(event.kind === 'pull_request' ? { baseRef: `refs/heads/${event.baseRef}` } : {}),
        defaultBranch: event.repo.defaultBranch ?? 'main',
        fork: event.kind === 'pull_request' && event.isFork,
      },
    };

    const runOne = async (pj: PlannedJob, needs: Record<string, NeedsEntry>, signal: AbortSignal): Promise<JobResult> => {
      const stored = replay.get(pj.instance.key);
      const job = jobs.get(pj.instance.key);
      if (!job) {
        if (stored) return stored;
        throw new Error(`job ${pj.instance.key} has neither a store record nor an earlier result`);
      }
      const jobSlot = await this.#enterConcurrency(run, pj.instance.job.concurrency, jobContexts(pj, needs, base), signal);
      const jobSignal = eitherSignal(signal, jobSlot.signal);
      try {
        return await this.#runJob(access, run, job, pj, needs, github, jobSignal.signal, { cloneUrl, fetchRef, branch, sha }, () => concurrencyReason(jobSlot.signal, runSlot.signal), jobContext);
      } finally {
        jobSignal.dispose();
        jobSlot.release();
      }
    };

    if (runSlot.signal.aborted) {
      // Stopped before the run started: its jobs stay queued, and the next start runs them.
      if (this.#stopping.signal.aborted) return;
      // Superseded while it waited: like GitHub, none of its jobs start, not even `if: always()`.
      const why = concurrencyReason(runSlot.signal) ?? 'forgevm stopped before the run started';
      for (const job of jobs.values()) await this.#complete(access, run, job, resultWithoutSteps('cancelled', '', why));
      return;
    }
    const runSignal = eitherSignal(this.#stopping.signal, runSlot.signal);
    try {
      const results = await this.#opts.runGraph(pw.jobs, runOne, {
        maxParallel: this.#opts.limits.maxJobs,
        signal: runSignal.signal,
        contexts: { github },
      });
      // Jobs the graph settled without running them (skipped by if:, needs failed, fail-fast,
      // superseded in their concurrency group).
      for (const [key, result] of results) {
        const job = jobs.get(key);
        if (!job) continue;
        const current = await this.#opts.store.getJob(job.id);
        if (!current || current.status === 'completed') continue;
        // Left as they are for the next start: queued ones run then, in-progress ones are concluded.
        if (this.#stopping.signal.aborted) continue;
        const reason = pw.jobs.find((j) => j.instance.key === key)?.decision;
        await this.#complete(access, run, current, withCancelReason(result, concurrencyReason(runSlot.signal)), reason && !reason.runs ? reason.reason : undefined);
      }
    } finally {
      runSignal.dispose();
      runSlot.release();
    }
  }

  /**
   * Enters the `concurrency:` group a run or job names, if any. A group that cannot be evaluated
   * is logged and left out: the work runs rather than wait on a guess.
   */
  async #enterConcurrency(run: Run, concurrency: Concurrency | undefined, contexts: Record<string, unknown>, cancelled: AbortSignal): Promise<ConcurrencySlot> {
    if (!concurrency) return NO_CONCURRENCY_GROUP;
    let name: string;
    let cancelInProgress: boolean;
    try {
      name = interpolate(concurrency.group, contexts);
      const cancel = typeof concurrency.cancelInProgress === 'string' ? evaluateValue(concurrency.cancelInProgress, contexts) : concurrency.cancelInProgress;
      cancelInProgress = cancel === true || cancel === 'true';
    } catch (error) {
      this.#log.warn(`run ${run.id} (${run.repo}): cannot evaluate concurrency group ${JSON.stringify(concurrency.group)}, running outside any group: ${messageOf(error)}`);
      return NO_CONCURRENCY_GROUP;
    }
    if (name === '') return NO_CONCURRENCY_GROUP;
    return this.#concurrency.enter(`${run.forge}:${run.repo}\0${name}`, name, cancelInProgress, cancelled);
  }

  async #runJob(
    access: ForgeAccess,
    run: Run,
    job: Job,
    pj: PlannedJob,
    needs: Record<string, NeedsEntry>,
    github: GithubContext,
    signal: AbortSignal,
    source: { cloneUrl: string; fetchRef: string; branch?: string; sha: string },
    /** Why the job was cancelled, when a concurrency group did it. */
    cancelReason: () => string | undefined,
    runContext: { secrets: Record<string, string> | Error; forge: ForgeGitCredential; identity: Omit<JobIdentity, 'jobId'> },
  ): Promise<JobResult> {
    const { store, limits } = this.#opts;
    const logPath = join(this.#opts.logsDir, `${job.id}-${job.externalId}.log`);
    let release: (() => void) | undefined;
    try {
      release = await limits.acquire(pj.instance.runsOn, signal);
    } catch {
      const result = resultWithoutSteps('cancelled', logPath, cancelReason() ?? 'the run was cancelled while this job waited for a runner slot');
      // Stopping: the job stays queued and runs after the next start.
      if (!this.#stopping.signal.aborted) await this.#complete(access, run, job, result);
      return result;
    }
    const log = new JobLog(logPath, this.#opts.logCapBytes);
    let tail: LiveTail | undefined;
    // Awaited before the completion is sent: a late "in progress" would otherwise land after it
    // (Forgejo then shows the commit as pending for good).
    let startReport: Promise<void> | undefined;
    try {
      const started = await store.transitionJob(job.id, 'queued', { status: 'in_progress', startedAt: new Date().toISOString() });
      if (!started) throw new Error(`job ${job.id} was no longer queued (another worker took it)`);
      this.#jobState(run, started, 'in_progress');
      const handle = this.#handle(run, started);
      let vmStarted = false;
      let workspace: WorkspaceSource;
      try {
        workspace = await fetchSource({
          cacheRoot: this.#opts.cacheRoot,
          forge: access.forge,
          repo: run.repo,
          cloneUrl: source.cloneUrl,
          sha: source.sha,
          ref: source.fetchRef,
          ...(source.branch ? { branch: source.branch } : {}),
          token: () => access.gitToken(run.installationId ?? undefined),
          username: access.gitUsername,
          signal,
        });
      } catch (error) {
        const result = signal.aborted
          ? resultWithoutSteps('cancelled', logPath, cancelReason() ?? `cancelled while fetching the commit (${messageOf(error)})`)
          : resultWithoutSteps('failure', logPath, messageOf(error));
        release();
        // Stopping before any VM ran: back to queued, so the next start runs it.
        if (this.#stopping.signal.aborted) await store.transitionJob(job.id, 'in_progress', { status: 'queued', startedAt: null });
        else await this.#complete(access, run, started, result);
        return result;
      }
      let secrets: Record<string, string>;
      try {
        if (runContext.secrets instanceof Error) throw runContext.secrets;
        secrets = secretsForJob(pj.instance, runContext.secrets, { github });
      } catch (error) {
        const result = resultWithoutSteps('failure', logPath, messageOf(error));
        release();
        await this.#complete(access, run, started, result);
        return result;
      }
      const result = await this.#opts.executeJob({
        secrets,
        forge: runContext.forge,
        identity: { ...runContext.identity, jobId: pj.instance.key },
        jobId: job.id,
        job: pj,
        needs,
        github: { ...github, job: pj.instance.job.id },
        workspace,
        repoName: run.repo.split('/')[1]!,
        log,
        signal,
        onVmStarted: () => {
          vmStarted = true;
          startReport = access.reporter.inProgress(handle, new Date().toISOString()).catch((e) => this.#log.warn(`cannot mark job ${job.id} in progress: ${messageOf(e)}`));
          tail = new LiveTail(log, access.reporter, handle, (e) => this.#log.warn(`cannot update the log tail of job ${job.id}: ${messageOf(e)}`), this.#opts.progressIntervalMs);
        },
      });
      // The VM is gone: its slot goes to the next job now, not after the report (which may wait
      // for a forge that is down).
      release();
      await tail?.stop();
      tail = undefined;
      await startReport;
      if (this.#stopping.signal.aborted && result.conclusion === 'cancelled') {
        // Interrupted by a shutdown, not cancelled by anyone: a job whose steps never started goes
        // back to the queue; one that ran stays in progress, and the next start concludes it
        // ("runner restarted"), reporting it to the forge then.
        if (!vmStarted) await store.transitionJob(job.id, 'in_progress', { status: 'queued', startedAt: null });
        this.#log.warn(`job ${job.id} (${run.repo} ${job.displayName}) interrupted by the shutdown; ${vmStarted ? 'the next start concludes it' : 'it runs after the next start'}`);
        return result;
      }
      const concluded = withCancelReason(result, cancelReason());
      await this.#complete(access, run, started, concluded);
      return concluded;
    } finally {
      await tail?.stop();
      log.close();
      release();
    }
  }

  async #complete(access: ForgeAccess, run: Run, job: Job, result: JobResult, skippedReason?: string): Promise<void> {
    const { store } = this.#opts;
    let annotations: Awaited<ReturnType<typeof annotationsFromLog>> = [];
    if (result.steps.length > 0) {
      try {
        const workspace = `*/work/${run.repo.split('/')[1]}`;
        annotations = [
          ...commandAnnotations(result.annotations ?? [], workspace, run.workflowFile),
          ...(await annotationsFromLog(result.logPath, result.steps.map((s) => s.log), workspace)),
        ];
      } catch (error) {
        this.#log.warn(`cannot read annotations from ${result.logPath}: ${messageOf(error)}`);
      }
    }
    // The report goes to the store with the completion (an outbox): a forge that is down, or a
    // stop before it gets through, leaves it there for the next start instead of losing it.
    const completedAt = new Date().toISOString();
    const completion: Completion = {
      conclusion: result.conclusion,
      output: buildCheckOutput(result, skippedReason ? { skippedReason } : {}),
      ...(annotations.length > 0 ? { annotations } : {}),
      completedAt,
    };
    const updated = await store.updateJob(job.id, {
      status: 'completed',
      conclusion: result.conclusion,
      result,
      error: result.error ?? null,
      completedAt,
      pendingReport: completion,
    });
    this.#jobState(run, updated, 'completed', { conclusion: result.conclusion, error: result.error ?? null });
    await this.#sendFinalReport(access, run, updated);
  }

  /**
   * Sends a completed job's stored final report (Job.pendingReport) and clears it once the forge
   * has it, or has refused it for good; a stop leaves it stored for the next start.
   */
  async #sendFinalReport(access: ForgeAccess, run: Run, job: Job): Promise<void> {
    const { store } = this.#opts;
    const completion = job.pendingReport;
    if (!completion) return;
    const sent = await this.#reportPersistently(`job ${job.id} (${run.repo} ${job.displayName}) as ${completion.conclusion}`, async () => {
      let current = (await store.getJob(job.id)) ?? job;
      if (current.checkRunId === null && current.statusContext === null) current = await this.#queue(access, run, current);
      await access.reporter.completed(this.#handle(run, current), completion);
    });
    if (sent !== 'interrupted') await store.updateJob(job.id, { pendingReport: null });
  }

  /**
   * Sends a final report, retrying while the forge is down (with the delivery backoff) until it
   * is through (`sent`), the forge refuses it or the give-up limit passes (`refused`), or forgevm
   * stops (`interrupted`).
   */
  async #reportPersistently(what: string, send: () => Promise<void>): Promise<'sent' | 'refused' | 'interrupted'> {
    const policy = this.#opts.retryPolicy ?? DEFAULT_RETRY_POLICY;
    const since = Date.now();
    for (let failures = 1; ; failures++) {
      try {
        await send();
        return 'sent';
      } catch (error) {
        const failure = classifyFailure(error);
        // A call cut off by the stop (aborted), or failing while it stops, is not a refusal.
        if (failure.kind === 'aborted' || (failure.kind === 'transient' && this.#stopping.signal.aborted)) {
          this.#log.warn(`cannot report ${what} yet: ${failure.reason}; forgevm is stopping, the next start sends it`);
          return 'interrupted';
        }
        const decision = failure.kind === 'transient' ? nextRetry(policy, { failures, failingSinceMs: since, ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}) }) : undefined;
        if (!decision?.retry) {
          this.#log.error(`cannot report ${what}: ${failure.reason}`);
          return 'refused';
        }
        this.#log.warn(`cannot report ${what} yet: ${failure.reason}; trying again in ${formatDuration(decision.delayMs)}`);
        if (!(await this.#sleepUnlessStopping(decision.delayMs))) {
          this.#log.warn(`cannot report ${what} yet: forgevm is stopping while the forge is unreachable (${failure.reason}); the next start sends it`);
          return 'interrupted';
        }
      }
    }
  }

  /** Waits `ms`; resolves false at once if forgevm is stopping. */
  #sleepUnlessStopping(ms: number): Promise<boolean> {
    const stopping = this.#stopping.signal;
    if (stopping.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onStop = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        stopping.removeEventListener('abort', onStop);
        resolve(true);
      }, ms);
      stopping.addEventListener('abort', onStop, { once: true });
    });
  }

  // ------------------------------------------------------------------------------------------
  // Re-runs and approvals

  async #triggerOf(run: Run): Promise<{ delivery: Delivery; event: Trigger } | undefined> {
    if (!run.deliveryId) return undefined;
    const delivery = await this.#opts.store.getDelivery(run.deliveryId);
    const event = delivery?.normalized;
    if (!delivery || !event || (event.kind !== 'push' && event.kind !== 'pull_request')) return undefined;
    return { delivery, event };
  }

  async #latestAttempt(run: Run): Promise<number> {
    const runs = await this.#opts.store.listRunsBySha(run.repo, run.sha);
    return Math.max(...runs.filter((r) => r.workflowFile === run.workflowFile && r.deliveryId === run.deliveryId).map((r) => r.attempt), run.attempt);
  }

  async #onCheckRun(access: ForgeAccess, cause: Delivery, event: CheckRunEvent): Promise<DispatchOutcome> {
    const { store } = this.#opts;
    const job = event.externalId ? await store.findJobByExternalId(event.externalId) : null;
    if (!job) return { status: 'ignored', reason: `check run ${event.checkRunId} is not one of ours (external_id ${event.externalId ?? 'none'})` };
    const run = (await store.getRun(job.runId))!;
    const trigger = await this.#triggerOf(run);
    if (!trigger) return { status: 'ignored', reason: `run ${run.id} has no stored push or pull_request delivery to re-run` };
    if (trigger.delivery.payloadDeletedAt) {
      this.#log.warn(`cannot re-run run ${run.id} (${run.repo}@${run.sha.slice(0, 12)}): ${PAYLOAD_DELETED}`);
      return { status: 'ignored', reason: `cannot re-run run ${run.id}: ${PAYLOAD_DELETED}` };
    }

    if (event.action === 'requested_action') {
      if (event.requestedActionId !== APPROVE_ACTION.identifier) return { status: 'ignored', reason: `unknown action ${event.requestedActionId}` };
      if (job.approval !== 'pending') return { status: 'ignored', reason: `job ${job.id} is not waiting for approval` };
      // The approval covers exactly the commit it was shown on.
      if (event.headSha !== run.sha) return { status: 'ignored', reason: `approval was for ${event.headSha.slice(0, 12)}, the run is for ${run.sha.slice(0, 12)}` };
      if (!(await access.canWrite(run.repo, event.actor, run.installationId ?? undefined))) {
        this.#log.warn(`approval of ${run.repo}@${run.sha.slice(0, 12)} by ${event.actor} ignored: they lack write access`);
        return { status: 'ignored', reason: `${event.actor} has no write access to ${run.repo}` };
      }
      const runs = (await store.listRunsByDelivery(run.deliveryId!)).filter((r) => r.sha === run.sha);
      for (const r of runs) for (const j of await store.listJobsByRun(r.id)) if (j.approval === 'pending') await store.updateJob(j.id, { approval: 'approved' });
      const attempt = (await this.#latestAttempt(run)) + 1;
      return { status: 'done', running: (await this.#startRuns(access, cause, trigger, { attempt, approved: true })).running };
    }

    // rerequested: run that one job again in a new attempt; the others' results are replayed.
    if (job.approval === 'pending' || job.approval === 'rejected') return { status: 'ignored', reason: `job ${job.id} needs approval, not a re-run` };
    const spec = job.spec as JobSpec;
    const attempt = (await this.#latestAttempt(run)) + 1;
    const approved = job.approval === 'approved';
    return { status: 'done', running: (await this.#startRuns(access, cause, trigger, { attempt, approved, onlyJob: spec })).running };
  }

  async #onCheckSuite(access: ForgeAccess, cause: Delivery, event: CheckSuiteEvent): Promise<DispatchOutcome> {
    const runs = await this.#opts.store.listRunsBySha(event.repo.fullName, event.headSha);
    const deliveries = [...new Set(runs.map((r) => r.deliveryId).filter((d): d is string => d !== null))];
    if (deliveries.length === 0) return { status: 'ignored', reason: `no runs of ours for ${event.repo.fullName}@${event.headSha.slice(0, 12)}` };
    const executions: Promise<void>[] = [];
    for (const deliveryId of deliveries) {
      const first = runs.find((r) => r.deliveryId === deliveryId)!;
      const trigger = await this.#triggerOf(first);
      if (!trigger) continue;
      if (trigger.delivery.payloadDeletedAt) {
        this.#log.warn(`cannot re-run the checks of ${event.repo.fullName}@${event.headSha.slice(0, 12)} from delivery ${deliveryId}: ${PAYLOAD_DELETED}`);
        continue;
      }
      const attempt = Math.max(...runs.filter((r) => r.deliveryId === deliveryId).map((r) => r.attempt)) + 1;
      const jobs = (await Promise.all(runs.filter((r) => r.deliveryId === deliveryId).map((r) => this.#opts.store.listJobsByRun(r.id)))).flat();
      const approved = jobs.some((j) => j.approval === 'approved');
      executions.push((await this.#startRuns(access, cause, trigger, { attempt, approved })).running);
    }
    return { status: 'done', running: Promise.all(executions).then(() => undefined) };
  }

  // ------------------------------------------------------------------------------------------
  // Restart recovery

  /**
   * After a crash or a stop: final reports the forge never confirmed are sent again; jobs that
   * were running are concluded `failure` ("runner restarted") and their VMs reaped; the
   * deliveries of runs with queued jobs go back to pending, and the delivery loop resumes them
   * (retrying while the forge is down, like any delivery).
   */
  async recoverAfterRestart(): Promise<void> {
    const { store } = this.#opts;
    await store.requeueStaleProcessing();
    // Listed before the interrupted jobs below are concluded, which stores reports of their own.
    const unreported = await store.listJobsWithPendingReports();
    const interrupted = await store.recoverAfterRestart();
    if (interrupted.length > 0 || (await store.listVms()).length > 0) await this.#opts.reapVms();
    for (const { job } of interrupted) {
      await store.removeVm(job.id);
      const run = await store.getRun(job.runId);
      if (run) this.#track(this.#concludeInterrupted(run, job));
    }
    if (unreported.length > 0) this.#log.info(`sending ${unreported.length} final job reports the forge did not confirm before the last stop`);
    for (const job of unreported) {
      const run = await store.getRun(job.runId);
      const access = run ? this.#opts.forges[run.forge] : undefined;
      if (run && access) this.#track(this.#sendFinalReport(access, run, job));
      else this.#log.warn(`cannot send the final report of job ${job.id}: its ${run ? `forge (${run.forge}) is not configured` : 'run is gone'}; it stays stored`);
    }

    const deliveries = new Set<string>();
    for (const job of await store.listJobsByStatus('queued')) {
      if (job.approval === 'pending' || job.approval === 'rejected') continue;
      const run = await store.getRun(job.runId);
      if (run?.deliveryId) deliveries.add(run.deliveryId);
    }
    for (const id of deliveries) {
      const delivery = await store.getDelivery(id);
      if (!delivery || delivery.status === 'pending' || delivery.status === 'processing') continue;
      await store.markDelivery(id, 'pending', null);
      this.#log.info(`delivery ${id} (${delivery.event} ${delivery.repo ?? ''}) requeued: it has jobs that never ran`);
    }
  }

  /**
   * A job the previous process left running: concluded `failure` ("runner restarted") like any
   * job, its report going through the outbox, so a forge that is down now still gets it.
   */
  async #concludeInterrupted(run: Run, job: Job): Promise<void> {
    const access = this.#opts.forges[run.forge];
    const result: JobResult = {
      conclusion: 'failure',
      steps: [],
      outputs: {},
      logPath: join(this.#opts.logsDir, `${job.id}-${job.externalId}.log`),
      startedAt: job.startedAt ?? job.createdAt,
      durationMs: job.startedAt ? Date.now() - Date.parse(job.startedAt) : 0,
      error: RUNNER_RESTARTED,
    };
    if (access) return this.#complete(access, run, job, result);
    // Its forge is no longer configured: nobody to report to.
    await this.#opts.store.updateJob(job.id, { status: 'completed', conclusion: 'failure', result, error: RUNNER_RESTARTED, completedAt: new Date().toISOString() });
    this.#jobState(run, job, 'completed', { conclusion: 'failure', error: RUNNER_RESTARTED });
  }
}
