/**
 * GitHub's artifact backend as @actions/artifact 2.x–6.x calls it (upload-artifact and
 * download-artifact v4 and later): Twirp, JSON flavour, at
 * `<ACTIONS_RESULTS_URL origin>/twirp/github.actions.results.api.v1.ArtifactService/<Method>`.
 * Requests use the proto field names (snake_case); int64 and wrapper values come as strings,
 * timestamps as RFC 3339. Errors are Twirp's `{code, msg}`: the client retries 429 and 5xx,
 * and fails at once on any other 4xx, showing `msg`.
 *
 * The run and job backend ids the client sends (read from its token) must be the connection's
 * job's own: for the methods that write, the job's; for reading and deleting, any job of the run.
 */
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { Logger } from '../../log/logger.ts';
import { readJson } from '../http-io.ts';
import type { JobContext, ServicesEnv } from '../job-context.ts';
import { refuse, type Outcome, type Refusal } from '../outcome.ts';
import type { Artifact, ArtifactStore } from './artifact-store.ts';
import { artifactDownloadUrl, artifactUploadUrl } from './blob-routes.ts';

export const ARTIFACT_SERVICE_PATH = '/twirp/github.actions.results.api.v1.ArtifactService';

const TWIRP_CODES: Record<Refusal['status'], string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  409: 'already_exists',
  413: 'out_of_range',
  429: 'resource_exhausted',
};

const int64 = z.union([z.string().regex(/^\d{1,15}$/, 'must be a whole number'), z.number().int().min(0)]).transform(Number);
const ids = {
  workflow_run_backend_id: z.string(),
  workflow_job_run_backend_id: z.string(),
};
const createRequest = z.object({
  ...ids,
  name: z.string(),
  expires_at: z.string().nullish(),
  version: z.number().int().nullish(),
  mime_type: z.string().nullish(),
});
const finalizeRequest = z.object({ ...ids, name: z.string(), size: int64, hash: z.string().nullish() });
const listRequest = z.object({ ...ids, name_filter: z.string().nullish(), id_filter: int64.nullish() });
const byNameRequest = z.object({ ...ids, name: z.string() });

export interface ArtifactRoutesDeps {
  store: ArtifactStore;
  key: Buffer;
  log: Logger;
}

export function artifactRoutes(deps: ArtifactRoutesDeps): Hono<ServicesEnv> {
  const { store, key, log } = deps;
  const app = new Hono<ServicesEnv>();

  const refused = (c: Context<ServicesEnv>, refusal: Refusal) => {
    log.info({ job: c.var.job.id, path: c.req.path, status: refusal.status, reason: refusal.message }, 'artifact request refused');
    return c.json({ code: TWIRP_CODES[refusal.status], msg: refusal.message }, refusal.status as ContentfulStatusCode);
  };
  const origin = (c: Context) => new URL(c.req.url).origin;

  /**
   * One Twirp method: the body checked against its schema, and its backend ids against the
   * connection's job (`job`: this very job; `run`: any job of its run).
   */
  const method = <S extends z.ZodType<BackendIds>>(
    name: string,
    schema: S,
    scope: 'job' | 'run',
    handle: (c: Context<ServicesEnv>, body: z.output<S>, job: JobContext) => Promise<Response> | Response,
  ) =>
    app.post(`/${name}`, async (c) => {
      const body = await readJson(c, schema);
      if (!body.ok) return refused(c, body);
      const job = c.var.job;
      const allowed = scope === 'job' ? ownJob(job, body.value) : ownRun(job, body.value);
      if (!allowed.ok) return refused(c, allowed);
      return handle(c, body.value, job);
    });

  method('CreateArtifact', createRequest, 'job', async (c, body, job) => {
    let expiresAt: number | undefined;
    if (body.expires_at) {
      expiresAt = Date.parse(body.expires_at);
      if (Number.isNaN(expiresAt)) return refused(c, refuse(400, 'expires_at is not an RFC 3339 time'));
    }
    const created = await store.create(job, body.name, { expiresAt, contentType: body.mime_type ?? undefined });
    if (!created.ok) return refused(c, created);
    return c.json({ ok: true, signed_upload_url: artifactUploadUrl(key, origin(c), created.id) });
  });

  method('FinalizeArtifact', finalizeRequest, 'job', (c, body, job) => {
    const finalized = store.finalize(job, body.name, body.size, body.hash ?? undefined);
    if (!finalized.ok) return refused(c, finalized);
    log.info({ job: job.id, artifact: body.name, size: body.size }, 'artifact uploaded');
    return c.json({ ok: true, artifact_id: String(finalized.id) });
  });

  method('ListArtifacts', listRequest, 'run', (c, body, job) => {
    const found = store.list(job.run, { name: body.name_filter ?? undefined, id: body.id_filter ?? undefined });
    return c.json({ artifacts: found.map((artifact) => describe(job, artifact)) });
  });

  method('GetSignedArtifactURL', byNameRequest, 'run', (c, body, job) => {
    const artifact = store.find(job.run, body.name);
    if (!artifact) return refused(c, refuse(404, `no artifact named "${body.name}" in this run (expired, deleted, or never finalized)`));
    return c.json({ signed_url: artifactDownloadUrl(key, origin(c), artifact) });
  });

  method('DeleteArtifact', byNameRequest, 'run', async (c, body, job) => {
    const deleted = await store.delete(job.run, body.name);
    if (!deleted.ok) return refused(c, deleted);
    log.info({ job: job.id, artifact: body.name }, 'artifact deleted');
    return c.json({ ok: true, artifact_id: String(deleted.id) });
  });

  app.post('/:method', (c) => refused(c, refuse(404, `ArtifactService has no method ${c.req.param('method')} here`)));

  return app;
}

type BackendIds = { workflow_run_backend_id: string; workflow_job_run_backend_id: string };

function ownRun(job: JobContext, ids: BackendIds): Outcome {
  if (ids.workflow_run_backend_id !== job.runBackendId) return refuse(403, "the workflow run id in the request is not this job's run");
  return { ok: true };
}

function ownJob(job: JobContext, ids: BackendIds): Outcome {
  const run = ownRun(job, ids);
  if (!run.ok) return run;
  if (ids.workflow_job_run_backend_id !== job.jobBackendId) return refuse(403, 'the job id in the request is not this job');
  return { ok: true };
}

function describe(job: JobContext, artifact: Artifact) {
  return {
    workflow_run_backend_id: job.runBackendId,
    workflow_job_run_backend_id: artifact.jobBackendId,
    database_id: String(artifact.id),
    name: artifact.name,
    size: String(artifact.size),
    created_at: new Date(artifact.createdAt).toISOString(),
    ...(artifact.digest ? { digest: artifact.digest } : {}),
  };
}
