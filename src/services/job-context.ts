/**
 * What the routes know about the job a request came from: set by the app for every request,
 * from the connection the request arrived on (see runner-services.ts), never from the request.
 */
import type { HttpBindings } from '@hono/node-server';
import type { CacheAccess } from './cache/cache-store.ts';
import { cacheReadScopes, cacheWriteScope, jobBackendId, repoKey, runBackendId, runKey, type JobIdentity } from './job-identity.ts';

export interface JobContext {
  /** Unique per JobServices: owns the job's reservations and uploads. */
  id: string;
  identity: JobIdentity;
  /** Storage key of the run (artifacts). */
  run: string;
  runBackendId: string;
  jobBackendId: string;
  cache: CacheAccess;
  closed: boolean;
}

/** Hono's typing for the services app: Node bindings, and the job in `c.var.job`. */
export interface ServicesEnv {
  Bindings: Partial<HttpBindings>;
  Variables: { job: JobContext };
}

export function jobContext(id: string, identity: JobIdentity): JobContext {
  return {
    id,
    identity,
    run: runKey(identity),
    runBackendId: runBackendId(identity),
    jobBackendId: jobBackendId(identity),
    cache: { repo: repoKey(identity), readScopes: cacheReadScopes(identity), writeScope: cacheWriteScope(identity), owner: id },
    closed: false,
  };
}
