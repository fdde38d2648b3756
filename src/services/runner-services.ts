/**
 * The host services a job's steps reach from inside its VM: the actions/cache backend and the
 * upload-artifact/download-artifact backend. One RunnerServices per forgevm process; one
 * JobServices per job, opened by the worker with the job's identity.
 *
 * Nothing listens on a host port. The job's SSH tunnel (src/ssh/forward.ts) hands each
 * connection the guest opens to `JobServices.accept`, which feeds it to one in-process HTTP
 * server tagged with that job: whatever a guest sends, it can only act as its own job.
 *
 *   const services = await RunnerServices.open({ dir: `${stateDir}/services` });
 *   const job = services.openJob(identity);            // before the VM boots
 *   runJob(engine, { …, services: job });              // forwards a guest port, steps get job.env(port)
 *   const shown = await job.artifacts();               // for the check run
 *   await job.close();                                 // when the job ends
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { createAdaptorServer } from '@hono/node-server';
import type { Context } from 'hono';
import { silentLogger, type Logger } from '../log/logger.ts';
import { createServicesApp } from './app.ts';
import { ArtifactStore, type Artifact, type ArtifactPruneReport } from './artifacts/artifact-store.ts';
import { CacheStore, type CachePruneReport } from './cache/cache-store.ts';
import { DEFAULT_ARTIFACT_MAX_BYTES, DEFAULT_ARTIFACT_RETENTION_DAYS, DEFAULT_CACHE_MAX_BYTES, DEFAULT_CACHE_UNUSED_DAYS } from './defaults.ts';
import { jobContext, type JobContext } from './job-context.ts';
import { runKey, type JobIdentity } from './job-identity.ts';
import { mintRuntimeToken } from './runtime-token.ts';


/** Runtime tokens outlive the longest job (timeout-minutes ≤ one week); closing the job ends them sooner. */
const TOKEN_LIFETIME_S = 8 * 24 * 60 * 60;

export interface RunnerServicesOptions {
  /** The services' folder, e.g. `<stateDir>/services`: `cache/` and `artifacts/` go inside. */
  dir: string;
  /** Total size of the cache, and of its largest entry (cache.maxBytes). Default 10 GiB, GitHub's per-repository size. */
  cacheMaxBytes?: number;
  /** Cache entries not restored for this many days are pruned (cache.unusedDays); 0 keeps them. Default 7, as GitHub. */
  cacheUnusedDays?: number;
  /** Default and longest artifact retention (artifacts.retentionDays). Default 90, as GitHub. */
  artifactRetentionDays?: number;
  /** Largest artifact (artifacts.maxBytes). Default 10 GiB. */
  artifactMaxBytes?: number;
  log?: Logger;
  /** Clock for the stores (tests). */
  now?: () => number;
}

/** An artifact as the worker shows it (check run output). */
export interface ArtifactSummary {
  id: number;
  name: string;
  size: number;
  /** The job (its id within the run) that uploaded it. */
  jobId: string;
  /** `sha256:<hex>` of the stored file. */
  digest: string | undefined;
  createdAt: string;
  expiresAt: string;
}

export interface ServicesPruneReport {
  cache: CachePruneReport;
  artifacts: ArtifactPruneReport;
}

/** One job's door to the services. */
export interface JobServices {
  readonly identity: JobIdentity;
  /** Variables for the steps, once the guest-side port of the tunnel is known. */
  env(guestPort: number): Record<string, string>;
  /** Serve one connection the guest opened to the forwarded port. */
  accept(stream: Duplex): void;
  /** The run's artifacts, as this job's run sees them now. */
  artifacts(): Promise<ArtifactSummary[]>;
  /** Cut the job's connections and drop its unfinished uploads. Idempotent. */
  close(): Promise<void>;
}

export class RunnerServices {
  readonly cache: CacheStore;
  readonly artifactStore: ArtifactStore;
  #key = randomBytes(32);
  #server: Server;
  #jobs = new Set<JobServicesImpl>();
  #connections = new WeakMap<object, JobContext>();
  #log: Logger;
  #retentionDays: number;

  private constructor(cache: CacheStore, artifacts: ArtifactStore, options: RunnerServicesOptions) {
    this.cache = cache;
    this.artifactStore = artifacts;
    this.#log = options.log ?? silentLogger();
    this.#retentionDays = artifacts.retentionDays;
    const app = createServicesApp({
      cache,
      artifacts,
      key: this.#key,
      log: this.#log,
      jobOf: (c: Context) => {
        const socket = (c.env as { incoming?: { socket?: object } } | undefined)?.incoming?.socket;
        return socket ? this.#connections.get(socket) : undefined;
      },
    });
    // Never listens: connections come in through accept().
    this.#server = createAdaptorServer({ fetch: app.fetch }) as Server;
    this.#server.on('clientError', (_error, socket: Duplex) => socket.destroy());
  }

  static async open(options: RunnerServicesOptions): Promise<RunnerServices> {
    const [cache, artifacts] = await Promise.all([
      CacheStore.open({
        dir: join(options.dir, 'cache'),
        maxBytes: options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES,
        unusedDays: options.cacheUnusedDays ?? DEFAULT_CACHE_UNUSED_DAYS,
        now: options.now,
      }),
      ArtifactStore.open({
        dir: join(options.dir, 'artifacts'),
        retentionDays: options.artifactRetentionDays ?? DEFAULT_ARTIFACT_RETENTION_DAYS,
        maxBytes: options.artifactMaxBytes ?? DEFAULT_ARTIFACT_MAX_BYTES,
        now: options.now,
      }),
    ]);
    return new RunnerServices(cache, artifacts, options);
  }

  openJob(identity: JobIdentity): JobServices {
    const context = jobContext(randomUUID(), identity);
    const token = mintRuntimeToken(this.#key, {
      sub: context.id,
      runBackendId: context.runBackendId,
      jobBackendId: context.jobBackendId,
      exp: Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_S,
    });
    const job = new JobServicesImpl(context, token, this.#retentionDays, {
      serve: (stream) => {
        this.#connections.set(stream, context);
        this.#server.emit('connection', stream);
      },
      list: () => this.#summaries(context.run),
      closed: async () => {
        this.#jobs.delete(job);
        const [reservations, uploads] = [await this.cache.abandon(context.id), await this.artifactStore.abandon(context.id)];
        if (reservations || uploads) this.#log.info({ job: context.id, reservations, uploads }, 'dropped unfinished uploads of an ended job');
      },
    });
    this.#jobs.add(job);
    return job;
  }

  /** A run's artifacts, for the worker (after its jobs closed, too). */
  artifacts(run: Pick<JobIdentity, 'forge' | 'repo' | 'runId'>): ArtifactSummary[] {
    return this.#summaries(runKey(run));
  }

  /** Expired artifacts, unused cache entries, abandoned uploads, stray files. Run it at start and now and then. */
  async prune(now = Date.now()): Promise<ServicesPruneReport> {
    return { cache: await this.cache.prune(now), artifacts: await this.artifactStore.prune(now) };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#jobs].map((job) => job.close()));
    this.#server.close();
    this.cache.close();
    this.artifactStore.close();
  }

  #summaries(run: string): ArtifactSummary[] {
    return this.artifactStore.list(run).map(summary);
  }
}

interface JobHooks {
  serve(stream: Duplex): void;
  list(): ArtifactSummary[];
  closed(): Promise<void>;
}

class JobServicesImpl implements JobServices {
  #streams = new Set<Duplex>();
  #closing: Promise<void> | undefined;

  constructor(
    private context: JobContext,
    private token: string,
    private retentionDays: number,
    private hooks: JobHooks,
  ) {}

  get identity(): JobIdentity {
    return this.context.identity;
  }

  env(guestPort: number): Record<string, string> {
    const base = `http://127.0.0.1:${guestPort}/`;
    return {
      ACTIONS_CACHE_URL: base,
      ACTIONS_RESULTS_URL: base,
      ACTIONS_RUNTIME_URL: base,
      ACTIONS_RUNTIME_TOKEN: this.token,
      // @actions/cache ≥ 5 skips saving with a clear line when the job may only read.
      ACTIONS_CACHE_MODE: this.context.cache.writeScope ? 'write' : 'read',
      // @actions/artifact caps retention-days at this.
      GITHUB_RETENTION_DAYS: String(this.retentionDays),
    };
  }

  accept(stream: Duplex): void {
    if (this.context.closed) {
      stream.destroy();
      return;
    }
    this.#streams.add(stream);
    stream.once('close', () => this.#streams.delete(stream));
    stream.on('error', () => stream.destroy());
    this.hooks.serve(stream);
  }

  async artifacts(): Promise<ArtifactSummary[]> {
    return this.hooks.list();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.context.closed = true;
      for (const stream of this.#streams) stream.destroy();
      this.#streams.clear();
      await this.hooks.closed();
    })();
    return this.#closing;
  }
}

function summary(artifact: Artifact): ArtifactSummary {
  return {
    id: artifact.id,
    name: artifact.name,
    size: artifact.size,
    jobId: artifact.jobId,
    digest: artifact.digest,
    createdAt: new Date(artifact.createdAt).toISOString(),
    expiresAt: new Date(artifact.expiresAt).toISOString(),
  };
}
