/**
 * The slice of Azure Blob Storage's REST API that the artifact clients use on their signed URLs:
 *
 *   PUT  …?comp=block&blockid=<base64>   Put Block: BlockBlobClient.uploadStream stages 8 MiB
 *                                         blocks, up to 5 at once, even for tiny artifacts
 *   PUT  …?comp=blocklist                 Put Block List: the XML list of block ids, in order
 *   PUT  … (x-ms-blob-type: BlockBlob)    Put Blob: single-shot upload (not used by these
 *                                         clients today; served so a future one still works)
 *   GET  …                                download-artifact fetches with a plain GET, expects 200,
 *                                         unzips when Content-Type is a zip (else saves the file
 *                                         under Content-Disposition's name, @actions/artifact ≥ 5)
 *
 * The SDK parses the account, container and blob from the path because the host is an IP
 * (`/<account>/<container>/<blob>`), so the path has three segments. Success is 201 with the
 * usual x-ms-* headers; errors are Azure's XML with x-ms-error-code, which the SDK turns into
 * a RestError carrying our message.
 */
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { readCappedBody } from '../../forge/body.ts';
import type { Logger } from '../../log/logger.ts';
import { declaredLength, dropUnreadBody, fileResponse, incomingOf, requestStream, storageId } from '../http-io.ts';
import type { ServicesEnv } from '../job-context.ts';
import { refuse, type Refusal } from '../outcome.ts';
import { signedQuery, verifySignedQuery } from '../signed-url.ts';
import type { Artifact, ArtifactStore } from './artifact-store.ts';

export const BLOB_PATH = '/_blob/artifacts';

/** Signed URLs are used right after they are issued; a job's whole upload fits well inside this. */
const URL_TTL_MS = 6 * 60 * 60 * 1000;
/** 50,000 block ids of ≤ 64 bytes, base64, in XML. */
const MAX_BLOCK_LIST_BYTES = 8 * 1024 * 1024;
const AZURE_VERSION = '2025-01-05';
/** Put Blob stages its body as this one block. */
const SINGLE_SHOT_BLOCK = 'forgevm-put-blob';

const AZURE_CODES: Record<Refusal['status'], string> = {
  400: 'InvalidInput',
  401: 'AuthenticationFailed',
  403: 'AuthenticationFailed',
  404: 'BlobNotFound',
  409: 'InvalidBlobOrBlock',
  413: 'RequestBodyTooLarge',
  429: 'ServerBusy',
};

const resource = (id: number) => `artifact:${id}`;

export function artifactUploadUrl(key: Buffer, origin: string, id: number): string {
  return `${origin}${BLOB_PATH}/${id}?${signedQuery(key, resource(id), 'w', Date.now() + URL_TTL_MS)}`;
}

export function artifactDownloadUrl(key: Buffer, origin: string, artifact: Artifact): string {
  return `${origin}${BLOB_PATH}/${artifact.id}?${signedQuery(key, resource(artifact.id), 'r', Date.now() + URL_TTL_MS)}`;
}

export interface BlobRoutesDeps {
  store: ArtifactStore;
  key: Buffer;
  log: Logger;
}

export function blobRoutes(deps: BlobRoutesDeps): Hono<ServicesEnv> {
  const { store, key, log } = deps;
  const app = new Hono<ServicesEnv>();

  const refused = (c: Context<ServicesEnv>, refusal: Refusal, code = AZURE_CODES[refusal.status]) => {
    dropUnreadBody(c);
    log.info({ job: c.var.job.id, path: c.req.path, status: refusal.status, reason: refusal.message }, 'blob request refused');
    const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${escapeXml(refusal.message)}</Message></Error>`;
    return c.body(xml, refusal.status as ContentfulStatusCode, { ...azureHeaders(), 'Content-Type': 'application/xml', 'x-ms-error-code': code });
  };
  const created = (c: Context<ServicesEnv>, extra: Record<string, string> = {}) =>
    c.body(null, 201, { ...azureHeaders(), 'x-ms-request-server-encrypted': 'true', ...extra });

  app.put('/:id', async (c) => {
    const id = storageId(c.req.param('id'));
    if (id === undefined || !verifySignedQuery(key, resource(id), 'w', new URL(c.req.url))) {
      return refused(c, refuse(403, 'this upload URL is not valid (expired, or not issued for this artifact)'));
    }
    const job = c.var.job;
    const comp = c.req.query('comp');
    if (comp === 'block') {
      const staged = await store.stageBlock(job, id, c.req.query('blockid') ?? '', requestStream(c), declaredLength(c));
      return staged.ok ? created(c) : refused(c, staged);
    }
    if (comp === 'blocklist') {
      const body = await readCappedBody(c.req.raw, MAX_BLOCK_LIST_BYTES, incomingOf(c));
      if (!body.ok) return refused(c, refuse(413, `the block list is over ${MAX_BLOCK_LIST_BYTES} bytes`));
      const blockIds = parseBlockList(body.body.toString('utf8'));
      if (!blockIds) return refused(c, refuse(400, 'the block list is not <BlockList> XML'), 'InvalidXmlDocument');
      const committed = await store.commitBlocks(job, id, blockIds, c.req.header('x-ms-blob-content-type'));
      if (!committed.ok) return refused(c, committed, committed.status === 400 ? 'InvalidBlockList' : undefined);
      return created(c, { ETag: `"${randomUUID()}"`, 'Last-Modified': new Date().toUTCString() });
    }
    if (comp === undefined && c.req.header('x-ms-blob-type') === 'BlockBlob') {
      const staged = await store.stageBlock(job, id, SINGLE_SHOT_BLOCK, requestStream(c), declaredLength(c));
      if (!staged.ok) return refused(c, staged);
      const committed = await store.commitBlocks(job, id, [SINGLE_SHOT_BLOCK], c.req.header('x-ms-blob-content-type'));
      if (!committed.ok) return refused(c, committed);
      return created(c, { ETag: `"${randomUUID()}"`, 'Last-Modified': new Date().toUTCString() });
    }
    return refused(c, refuse(400, `unsupported blob operation (comp=${comp ?? 'none'}): forgevm serves Put Block, Put Block List and Put Blob`), 'UnsupportedQueryParameter');
  });

  // GET and HEAD: download a finalized artifact of the job's run.
  app.get('/:id', async (c) => {
    const id = storageId(c.req.param('id'));
    if (id === undefined || !verifySignedQuery(key, resource(id), 'r', new URL(c.req.url))) {
      return refused(c, refuse(403, 'this download URL is not valid (expired, or not issued for this artifact)'));
    }
    const found = store.blob(c.var.job.run, id);
    const response = found && (await fileResponse(c, found.path, { ...azureHeaders(), ...downloadHeaders(found.artifact) }));
    return response ?? refused(c, refuse(404, `artifact ${id} is gone (expired or deleted), or not of this run`));
  });

  return app;
}

/** Content type and file name for a download: a zip unless the uploader said otherwise. */
function downloadHeaders(artifact: Artifact): Record<string, string> {
  // @actions/artifact 2.x–4.x say only "zip" (as the blob's content type); ≥ 5 send a MIME type.
  const type = !artifact.contentType || artifact.contentType === 'zip' ? 'application/zip' : artifact.contentType;
  const fileName = type === 'application/zip' && !artifact.name.toLowerCase().endsWith('.zip') ? `${artifact.name}.zip` : artifact.name;
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return {
    'Content-Type': type,
    'Content-Disposition': `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
    'x-ms-blob-type': 'BlockBlob',
  };
}

function azureHeaders(): Record<string, string> {
  return { 'x-ms-request-id': randomUUID(), 'x-ms-version': AZURE_VERSION, Date: new Date().toUTCString() };
}

/** Block ids of a <BlockList> in order; <Committed>/<Uncommitted>/<Latest> all name staged blocks here. */
export function parseBlockList(xml: string): string[] | undefined {
  if (!/<BlockList>[^]*<\/BlockList>/.test(xml)) return undefined;
  return [...xml.matchAll(/<(Latest|Committed|Uncommitted)>([^<]*)<\/\1>/g)].map((m) => m[2]!.trim());
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
