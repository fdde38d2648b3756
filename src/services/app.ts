/**
 * The HTTP app behind a job's forwarded port: the cache protocol, the artifact service and the
 * blob transfers of both. Every request belongs to the job whose connection it arrived on
 * (`jobOf`, from runner-services.ts); the API calls must also carry that job's runtime token,
 * and the blob transfers a signed URL. A request that fails either check does nothing.
 */
import { Hono, type Context } from 'hono';
import type { Logger } from '../log/logger.ts';
import { artifactRoutes, ARTIFACT_SERVICE_PATH } from './artifacts/artifact-routes.ts';
import type { ArtifactStore } from './artifacts/artifact-store.ts';
import { BLOB_PATH, blobRoutes } from './artifacts/blob-routes.ts';
import { CACHE_API_PREFIX, cacheRoutes } from './cache/cache-routes.ts';
import type { CacheStore } from './cache/cache-store.ts';
import { dropUnreadBody } from './http-io.ts';
import type { JobContext, ServicesEnv } from './job-context.ts';
import { verifyRuntimeToken } from './runtime-token.ts';

export interface ServicesAppDeps {
  cache: CacheStore;
  artifacts: ArtifactStore;
  /** Signs runtime tokens and blob URLs. */
  key: Buffer;
  log: Logger;
  /** The open job a request's connection belongs to. */
  jobOf: (c: Context) => JobContext | undefined;
}

/** Requests that carry a signed URL instead of the runtime token (the clients send no credentials there). */
const SIGNED_URL_PATHS = [`${CACHE_API_PREFIX}/archives/`, `${BLOB_PATH}/`];

export function createServicesApp(deps: ServicesAppDeps): Hono<ServicesEnv> {
  const { key, log } = deps;
  const app = new Hono<ServicesEnv>();

  const deny = (c: Context, status: 401 | 403 | 404, message: string) => {
    dropUnreadBody(c);
    // `message` for the cache client, `code`/`msg` for Twirp's.
    return c.json({ message, code: status === 404 ? 'bad_route' : status === 401 ? 'unauthenticated' : 'permission_denied', msg: message }, status);
  };

  app.use('*', async (c, next) => {
    const job = deps.jobOf(c);
    if (!job || job.closed) return deny(c, 403, 'this connection belongs to no running job');
    c.set('job', job);
    if (!SIGNED_URL_PATHS.some((prefix) => c.req.path.startsWith(prefix))) {
      const token = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1];
      if (!token || verifyRuntimeToken(key, token) !== job.id) {
        log.info({ job: job.id, path: c.req.path }, 'services request without this job\'s runtime token');
        return deny(c, 401, "the request does not carry this job's ACTIONS_RUNTIME_TOKEN");
      }
    }
    await next();
  });

  app.route(CACHE_API_PREFIX, cacheRoutes({ store: deps.cache, key, log }));
  app.route(ARTIFACT_SERVICE_PATH, artifactRoutes({ store: deps.artifacts, key, log }));
  app.route(BLOB_PATH, blobRoutes({ store: deps.artifacts, key, log }));

  // upload-artifact@v3 and download-artifact@v3 (the retired artifact API, under ACTIONS_RUNTIME_URL).
  app.all('/_apis/pipelines/*', (c) =>
    deny(c, 404, 'actions/upload-artifact@v3 and download-artifact@v3 use an artifact API that GitHub retired and forgevm does not serve: use @v4 or later'),
  );
  app.notFound((c) => deny(c, 404, `forgevm's services have nothing at ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    log.error({ err: error, path: c.req.path }, 'services request failed');
    dropUnreadBody(c);
    return c.json({ message: `internal error in forgevm's services: ${error.message}`, code: 'internal', msg: error.message }, 500);
  });
  return app;
}
