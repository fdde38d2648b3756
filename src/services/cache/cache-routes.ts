/**
 * The cache protocol @actions/cache 4.x–6.x speaks when ACTIONS_CACHE_URL is set and
 * ACTIONS_CACHE_SERVICE_V2 is not ("v1", under `<ACTIONS_CACHE_URL>_apis/artifactcache/`):
 *
 *   GET   cache?keys=k1,k2&version=v   hit: 200 {cacheKey, scope, archiveLocation, …}; miss: 204
 *   GET   caches?key=k                 entries with that key, any version (debug diagnostics)
 *   POST  caches {key, version, cacheSize}          → 201 {cacheId}; 409 if it exists
 *   PATCH caches/{id}  Content-Range: bytes a-b/*   → 204 (chunks of ≤ 32 MiB, 4 in parallel)
 *   POST  caches/{id} {size}                        → 204
 *
 * The client downloads `archiveLocation` with a plain GET and no credentials (it uses the Azure
 * SDK only for hosts under .blob.core.windows.net), with a 5 s socket idle timeout, and checks
 * the body against Content-Length. The archive URL is signed and served by `archives/{id}`.
 * Errors are JSON `{message}`: the client shows it, and turns a 409 on reserve into an info
 * line ("another job may be creating this cache") rather than a failure.
 */
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { declaredLength, dropUnreadBody, fileResponse, readJson, requestStream, storageId } from '../http-io.ts';
import type { ServicesEnv } from '../job-context.ts';
import type { Refusal } from '../outcome.ts';
import { signedQuery, verifySignedQuery } from '../signed-url.ts';
import type { CacheEntry, CacheStore } from './cache-store.ts';
import type { Logger } from '../../log/logger.ts';

export const CACHE_API_PREFIX = '/_apis/artifactcache';

/** How long an archive URL from a lookup stays valid: the download follows at once. */
const ARCHIVE_URL_TTL_MS = 6 * 60 * 60 * 1000;

const reserveBody = z.object({
  key: z.string(),
  version: z.string(),
  cacheSize: z.number().int().min(0).nullish(),
});
const commitBody = z.object({ size: z.number().int().min(0) });

export interface CacheRoutesDeps {
  store: CacheStore;
  /** Signs archive URLs. */
  key: Buffer;
  log: Logger;
}

export function cacheRoutes(deps: CacheRoutesDeps): Hono<ServicesEnv> {
  const { store, key, log } = deps;
  const app = new Hono<ServicesEnv>();

  const refused = (c: Context<ServicesEnv>, refusal: Refusal) => {
    log.info({ job: c.var.job.id, path: c.req.path, status: refusal.status, reason: refusal.message }, 'cache request refused');
    return c.json({ message: refusal.message }, refusal.status as ContentfulStatusCode);
  };

  const archiveResource = (id: number) => `cache-archive:${id}`;

  const describe = (c: Context<ServicesEnv>, entry: CacheEntry) => ({
    cacheKey: entry.key,
    scope: entry.scope,
    cacheVersion: entry.version,
    creationTime: new Date(entry.createdAt).toISOString(),
    archiveLocation: `${new URL(c.req.url).origin}${CACHE_API_PREFIX}/archives/${entry.id}?${signedQuery(key, archiveResource(entry.id), 'r', Date.now() + ARCHIVE_URL_TTL_MS)}`,
  });

  app.get('/cache', (c) => {
    const keys = (c.req.query('keys') ?? '').split(',');
    const outcome = store.lookup(c.var.job.cache, keys, c.req.query('version') ?? '');
    if (!outcome.ok) return refused(c, outcome);
    if (!outcome.entry) return c.body(null, 204);
    log.info({ job: c.var.job.id, key: outcome.entry.key, scope: outcome.entry.scope }, 'cache hit');
    return c.json(describe(c, outcome.entry));
  });

  app.get('/caches', (c) => {
    const entries = store.list(c.var.job.cache, c.req.query('key') ?? '');
    return c.json({ totalCount: entries.length, artifactCaches: entries.map((entry) => describe(c, entry)) });
  });

  app.post('/caches', async (c) => {
    const body = await readJson(c, reserveBody);
    if (!body.ok) return refused(c, body);
    const outcome = await store.reserve(c.var.job.cache, body.value.key, body.value.version, body.value.cacheSize ?? undefined);
    if (!outcome.ok) return refused(c, outcome);
    return c.json({ cacheId: outcome.id }, 201);
  });

  app.patch('/caches/:id', async (c) => {
    const id = storageId(c.req.param('id'));
    const range = parseContentRange(c.req.header('content-range'));
    const refuseUnread = (refusal: Refusal) => {
      dropUnreadBody(c);
      return refused(c, refusal);
    };
    if (id === undefined) return refuseUnread({ ok: false, status: 404, message: `no cache upload ${c.req.param('id')}` });
    if (!range) return refuseUnread({ ok: false, status: 400, message: 'Content-Range must be "bytes <first>-<last>/*" with first ≤ last' });
    const length = declaredLength(c);
    if (length !== undefined && length !== range.last - range.first + 1) {
      return refuseUnread({ ok: false, status: 400, message: `Content-Length ${length} does not match Content-Range bytes ${range.first}-${range.last}` });
    }
    const outcome = await store.writeChunk(c.var.job.cache, id, range.first, range.last, requestStream(c));
    if (!outcome.ok) return refuseUnread(outcome);
    return c.body(null, 204);
  });

  app.post('/caches/:id', async (c) => {
    const id = storageId(c.req.param('id'));
    if (id === undefined) return refused(c, { ok: false, status: 404, message: `no cache upload ${c.req.param('id')}` });
    const body = await readJson(c, commitBody);
    if (!body.ok) return refused(c, body);
    const outcome = await store.commit(c.var.job.cache, id, body.value.size);
    if (!outcome.ok) return refused(c, outcome);
    log.info({ job: c.var.job.id, id, size: body.value.size, evicted: outcome.evicted }, 'cache saved');
    return c.body(null, 204);
  });

  // GET and HEAD: the archive behind a lookup's archiveLocation.
  app.get('/archives/:id', async (c) => {
    const id = storageId(c.req.param('id'));
    const url = new URL(c.req.url);
    if (id === undefined || !verifySignedQuery(key, archiveResource(id), 'r', url)) {
      return refused(c, { ok: false, status: 403, message: 'this archive URL is not valid (expired, or not issued for this archive)' });
    }
    const archive = store.archive(c.var.job.cache, id);
    const response = archive && (await fileResponse(c, archive.path, { 'Content-Type': 'application/octet-stream' }));
    return response ?? refused(c, { ok: false, status: 404, message: `cache archive ${id} is gone (evicted, or not readable by this job)` });
  });

  return app;
}

/** `bytes <first>-<last>/<total or *>`, inclusive, as the client sends it. */
export function parseContentRange(header: string | undefined): { first: number; last: number } | undefined {
  const match = /^bytes (\d{1,15})-(\d{1,15})\/(\*|\d{1,15})$/.exec((header ?? '').trim());
  if (!match) return undefined;
  const first = Number(match[1]);
  const last = Number(match[2]);
  if (first > last) return undefined;
  if (match[3] !== '*' && last >= Number(match[3])) return undefined;
  return { first, last };
}
