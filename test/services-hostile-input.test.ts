/**
 * What a hostile guest can send to the cache and artifact services: garbage, lies about sizes
 * and ranges, path-like keys and names, other jobs' ids, tokens and URLs. Each gets a clear 4xx,
 * changes nothing it should not, and nothing is ever written outside the services' folder.
 */
import { readdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobBackendId, runBackendId, type JobIdentity } from '../src/services/job-identity.ts';
import { RunnerServices, type JobServices } from '../src/services/runner-services.ts';
import { identity, listenForJob, type JobPort } from './support/services-harness.ts';

const TWIRP = '/twirp/github.actions.results.api.v1.ArtifactService';

let root: string;
let services: RunnerServices;
const ports: JobPort[] = [];

interface Job {
  services: JobServices;
  port: JobPort;
  identity: JobIdentity;
  token: string;
  /** A request on this job's port, with its token unless `token` says otherwise. */
  call(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  json(path: string, body: unknown, init?: RequestInit & { token?: string | null }): Promise<Response>;
}

async function job(overrides: Partial<JobIdentity>): Promise<Job> {
  const id = identity(overrides);
  const jobServices = services.openJob(id);
  const port = await listenForJob(jobServices);
  ports.push(port);
  const token = port.env.ACTIONS_RUNTIME_TOKEN!;
  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const { token: override, ...rest } = init;
    const headers = new Headers(rest.headers);
    const bearer = override === undefined ? token : override;
    if (bearer !== null) headers.set('authorization', `Bearer ${bearer}`);
    return fetch(path.startsWith('http') ? path : `${port.origin}${path}`, { ...rest, headers, duplex: 'half' } as RequestInit);
  };
  const json = (path: string, body: unknown, init: RequestInit & { token?: string | null } = {}) =>
    call(path, { method: 'POST', ...init, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { services: jobServices, port, identity: id, token, call, json };
}

const ids = (j: Job) => ({ workflow_run_backend_id: runBackendId(j.identity), workflow_job_run_backend_id: jobBackendId(j.identity) });

/** A body streamed in chunks (no Content-Length): the server only learns its size by reading. */
function streamed(bytes: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new Uint8Array(bytes).fill(7));
      controller.close();
    },
  });
}

let a: Job; // octo/app, main, run 1
let b: Job; // octo/app, feature, run 2
let stranger: Job; // another repository

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fvm-hostile-'));
  services = await RunnerServices.open({ dir: join(root, 'services'), cacheMaxBytes: 1024 * 1024, artifactMaxBytes: 64 * 1024 });
  a = await job({ runId: '1', jobId: 'a' });
  b = await job({ runId: '2', jobId: 'b', ref: 'refs/heads/feature' });
  stranger = await job({ repo: 'evil/fork', runId: '3', jobId: 'x' });
});

afterAll(async () => {
  await Promise.all(ports.map((p) => p.close()));
  await services?.close();
  await rm(root, { recursive: true, force: true });
});

async function reserve(j: Job, key: string, cacheSize?: number): Promise<number> {
  const response = await j.json('/_apis/artifactcache/caches', { key, version: 'v1', cacheSize });
  expect(response.status, await response.clone().text()).toBe(201);
  return ((await response.json()) as { cacheId: number }).cacheId;
}

function patch(j: Job, id: number, range: string | undefined, body: BodyInit, headers: Record<string, string> = {}) {
  return j.call(`/_apis/artifactcache/caches/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', ...(range ? { 'content-range': range } : {}), ...headers },
    body,
  });
}

describe('garbage', () => {
  it('answers malformed JSON, wrong shapes and oversized bodies with a 400 or 413 that says why', async () => {
    let response = await a.json('/_apis/artifactcache/caches', '{"key": ');
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ message: 'the request body is not JSON' });
    response = await a.json('/_apis/artifactcache/caches', { key: 5, version: 'v' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/^invalid request: key: /);
    response = await a.json('/_apis/artifactcache/caches', { key: 'k', version: 'v', padding: 'x'.repeat(100 * 1024) });
    expect(response.status).toBe(413);

    response = await a.json(`${TWIRP}/CreateArtifact`, '[[[');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'invalid_argument', msg: 'the request body is not JSON' });
    response = await a.json(`${TWIRP}/Explode`, {});
    expect(response.status).toBe(404);
    response = await a.call('/_apis/pipelines/workflows/1/artifacts');
    expect(response.status).toBe(404);
    expect(await response.text()).toMatch(/upload-artifact@v3 .* use @v4 or later/);
    response = await a.call('/../../etc/passwd');
    expect(response.status).toBe(404);
  });

  it('refuses keys GitHub refuses, and too many lookup keys', async () => {
    for (const key of ['', 'a,b', 'k'.repeat(513)]) {
      const response = await a.json('/_apis/artifactcache/caches', { key, version: 'v1' });
      expect(response.status).toBe(400);
    }
    const keys = Array.from({ length: 11 }, (_, i) => `k${i}`).join(',');
    expect((await a.call(`/_apis/artifactcache/cache?keys=${keys}&version=v1`)).status).toBe(400);
  });
});

describe('tokens and other jobs', () => {
  it("needs the connection's own job's token: none, a forged one or another job's is refused", async () => {
    expect((await a.call('/_apis/artifactcache/cache?keys=k&version=v1', { token: null })).status).toBe(401);
    const [header, payload] = a.token.split('.');
    expect((await a.call('/_apis/artifactcache/cache?keys=k&version=v1', { token: `${header}.${payload}.forged` })).status).toBe(401);
    const response = await a.json(`${TWIRP}/ListArtifacts`, ids(b), { token: b.token });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: 'unauthenticated' });
  });

  it("cannot write into another job's cache upload, nor read another repository's archive", async () => {
    const id = await reserve(a, 'mine-only', 10);
    expect((await patch(b, id, 'bytes 0-9/*', 'x'.repeat(10))).status).toBe(404);
    expect((await b.json(`/_apis/artifactcache/caches/${id}`, { size: 10 })).status).toBe(404);
    expect((await patch(a, id, 'bytes 0-9/*', '0123456789')).status).toBe(204);
    expect((await a.json(`/_apis/artifactcache/caches/${id}`, { size: 10 })).status).toBe(204);

    const hit = (await (await a.call('/_apis/artifactcache/cache?keys=mine-only&version=v1')).json()) as { archiveLocation: string };
    expect(await (await a.call(hit.archiveLocation, { token: null })).text()).toBe('0123456789');
    // The same URL on another repository's connection: the signature is fine, the scope is not.
    const elsewhere = hit.archiveLocation.replace(a.port.origin, stranger.port.origin);
    expect((await stranger.call(elsewhere, { token: null })).status).toBe(404);
    // A URL for another archive id, or a tampered signature.
    expect((await a.call(hit.archiveLocation.replace(`/archives/${id}?`, `/archives/${id + 1}?`), { token: null })).status).toBe(403);
    expect((await a.call(hit.archiveLocation.replace(/sig=[^&]+/, 'sig=AAAA'), { token: null })).status).toBe(403);
  });

  it("cannot create, finalize or fetch artifacts in another run, nor use another job's upload URL", async () => {
    let response = await b.json(`${TWIRP}/CreateArtifact`, { ...ids(a), name: 'sneaky', version: 4 });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 'permission_denied' });
    response = await b.json(`${TWIRP}/CreateArtifact`, { ...ids(b), workflow_job_run_backend_id: ids(a).workflow_job_run_backend_id, name: 'sneaky', version: 4 });
    expect(response.status).toBe(403);

    response = await a.json(`${TWIRP}/CreateArtifact`, { ...ids(a), name: 'real', version: 4 });
    const { signed_upload_url: uploadUrl } = (await response.json()) as { signed_upload_url: string };
    const stolen = uploadUrl.replace(a.port.origin, b.port.origin);
    response = await b.call(`${stolen}&comp=block&blockid=AAAA`, { method: 'PUT', body: 'evil', token: null });
    expect(response.status).toBe(404);
    expect(response.headers.get('x-ms-error-code')).toBe('BlobNotFound');

    response = await a.call(`${uploadUrl}&comp=block&blockid=AAAA`, { method: 'PUT', body: 'real content', token: null });
    expect(response.status).toBe(201);
    response = await a.call(`${uploadUrl}&comp=blocklist`, { method: 'PUT', body: '<?xml version="1.0"?><BlockList><Latest>AAAA</Latest></BlockList>', token: null });
    expect(response.status).toBe(201);
    response = await a.json(`${TWIRP}/FinalizeArtifact`, { ...ids(a), name: 'real', size: '12' });
    expect(response.status).toBe(200);

    response = await b.json(`${TWIRP}/GetSignedArtifactURL`, { ...ids(b), name: 'real' });
    expect(response.status).toBe(404);
    response = await a.json(`${TWIRP}/GetSignedArtifactURL`, { ...ids(a), name: 'real' });
    const { signed_url: downloadUrl } = (await response.json()) as { signed_url: string };
    expect(await (await a.call(downloadUrl, { token: null })).text()).toBe('real content');
    expect((await b.call(downloadUrl.replace(a.port.origin, b.port.origin), { token: null })).status).toBe(404);
    response = await b.json(`${TWIRP}/DeleteArtifact`, { ...ids(a), name: 'real' });
    expect(response.status).toBe(403);
  });

  it('refuses finalizing with a size or digest other than what arrived', async () => {
    const response = await a.json(`${TWIRP}/CreateArtifact`, { ...ids(a), name: 'liar', version: 4 });
    const { signed_upload_url: url } = (await response.json()) as { signed_upload_url: string };
    await a.call(`${url}&comp=block&blockid=QQ==`, { method: 'PUT', body: 'abc', token: null });
    await a.call(`${url}&comp=blocklist`, { method: 'PUT', body: '<BlockList><Latest>QQ==</Latest></BlockList>', token: null });
    let finalize = await a.json(`${TWIRP}/FinalizeArtifact`, { ...ids(a), name: 'liar', size: '4' });
    expect(finalize.status).toBe(400);
    expect(((await finalize.json()) as { msg: string }).msg).toMatch(/the client counted 4 bytes, 3 arrived/);
    finalize = await a.json(`${TWIRP}/FinalizeArtifact`, { ...ids(a), name: 'liar', size: '3', hash: 'sha256:00' });
    expect(finalize.status).toBe(400);
    expect((await a.services.artifacts()).map((x) => x.name)).not.toContain('liar');
  });
});

describe('sizes and ranges', () => {
  it('refuses bad Content-Range headers and bodies that do not match them', async () => {
    const r = await job({ runId: '1', jobId: 'ranges' });
    const id = await reserve(r, 'ranges', 100);
    for (const range of [undefined, 'bytes 10-5/*', 'bytes=0-9', 'bytes 0-9/5', 'items 0-9/*']) {
      const response = await patch(r, id, range, 'x'.repeat(10));
      expect(response.status, range).toBe(400);
      expect(((await response.json()) as { message: string }).message).toMatch(/Content-Range/);
    }
    let response = await patch(r, id, 'bytes 0-9/*', 'x'.repeat(20));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/Content-Length 20 does not match/);
    response = await patch(r, id, 'bytes 0-9/*', streamed(20));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/longer than the 10 bytes/);
    response = await patch(r, id, 'bytes 0-19/*', streamed(5));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/ended after 5 of the 20 bytes/);
    response = await patch(r, id, 'bytes 95-104/*', 'x'.repeat(10));
    expect(response.status).toBe(413);

    // Bytes 10-19 never arrive: the commit says which.
    expect((await patch(r, id, 'bytes 0-9/*', 'x'.repeat(10))).status).toBe(204);
    expect((await patch(r, id, 'bytes 20-99/*', 'y'.repeat(80))).status).toBe(204);
    response = await r.json(`/_apis/artifactcache/caches/${id}`, { size: 100 });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/bytes 10-19 were never uploaded/);
    response = await r.json(`/_apis/artifactcache/caches/${id}`, { size: 90 });
    expect(response.status).toBe(400);
    expect((await r.call('/_apis/artifactcache/cache?keys=ranges&version=v1')).status).toBe(204);
    await r.services.close(); // its reservation goes with it
  });

  it('refuses a cache entry or an artifact over the configured sizes', async () => {
    let response = await a.json('/_apis/artifactcache/caches', { key: 'huge', version: 'v1', cacheSize: 2 * 1024 * 1024 });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/over the 1048576 B limit/);
    // Undeclared size: the cap applies to every chunk.
    const id = await reserve(a, 'undeclared');
    response = await patch(a, id, `bytes ${1024 * 1024}-${1024 * 1024 + 9}/*`, 'x'.repeat(10));
    expect(response.status).toBe(413);

    response = await a.json(`${TWIRP}/CreateArtifact`, { ...ids(a), name: 'big', version: 4 });
    const { signed_upload_url: url } = (await response.json()) as { signed_upload_url: string };
    response = await a.call(`${url}&comp=block&blockid=AAAA`, { method: 'PUT', body: 'z'.repeat(65 * 1024), token: null });
    expect(response.status).toBe(413);
    expect(response.headers.get('x-ms-error-code')).toBe('RequestBodyTooLarge');
    expect(await response.text()).toMatch(/<Message>the artifact is larger than the 65536 bytes this forgevm allows/);
    response = await a.call(`${url}&comp=block&blockid=AAAB`, { method: 'PUT', body: streamed(65 * 1024), token: null });
    expect(response.status).toBe(413);
    response = await a.call(`${url}&comp=blocklist`, { method: 'PUT', body: '<BlockList><Latest>AAAA</Latest></BlockList>', token: null });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-ms-error-code')).toBe('InvalidBlockList');
  });
});

describe('names that look like paths', () => {
  it('stores path-like keys as keys, refuses path-like artifact names, and writes only inside its folder', async () => {
    const key = '../../../../../../tmp/forgevm-evil';
    const id = await reserve(a, key, 4);
    expect((await patch(a, id, 'bytes 0-3/*', 'evil')).status).toBe(204);
    expect((await a.json(`/_apis/artifactcache/caches/${id}`, { size: 4 })).status).toBe(204);
    const hit = (await (await a.call(`/_apis/artifactcache/cache?keys=${encodeURIComponent(key)}&version=v1`)).json()) as { cacheKey: string };
    expect(hit.cacheKey).toBe(key);

    for (const name of ['../escape', 'a/b', 'c:\\x', 'line\nbreak']) {
      const response = await a.json(`${TWIRP}/CreateArtifact`, { ...ids(a), name, version: 4 });
      expect(response.status, name).toBe(400);
    }
    const response = await a.call(`/_blob/artifacts/..%2F..%2Fescape?se=9999999999&sp=w&sig=x`, { method: 'PUT', body: 'x', token: null });
    expect(response.status).toBe(403);

    // Every file under the root is the services' own: databases and numbered blobs.
    const files = await listFiles(root);
    const allowed = /^services\/(cache|artifacts)\/((cache|artifacts)\.db(-wal|-shm)?|blobs\/\d+|parts\/\d+\.(part|block-\d+))$/;
    expect(files.filter((f) => !f.startsWith('ws-') && !allowed.test(f))).toEqual([]);
    await expect(readdir('/tmp/forgevm-evil')).rejects.toThrow();
  });
});

describe('a job that ended', () => {
  it('takes no more requests, and its unfinished uploads are gone', async () => {
    const ending = await job({ runId: '9', jobId: 'ending' });
    const id = await reserve(ending, 'unfinished', 10);
    await patch(ending, id, 'bytes 0-4/*', 'hello');
    const before = await listFiles(join(root, 'services', 'cache', 'parts'));
    expect(before).toContain(`${id}.part`);
    await ending.services.close();
    await expect(ending.call('/_apis/artifactcache/cache?keys=k&version=v1')).rejects.toThrow();
    expect(await listFiles(join(root, 'services', 'cache', 'parts'))).not.toContain(`${id}.part`);
    // Its key is free again for the next job.
    expect(await reserve(a, 'unfinished', 10)).toBeGreaterThan(id);
  });
});

describe('uploads left hanging by a job that is still running', () => {
  it('are pruned: a cache reservation idle for an hour, an artifact never finalized for a day', async () => {
    const idle = await job({ runId: '10', jobId: 'idle' });
    const id = await reserve(idle, 'left-hanging', 10);
    await patch(idle, id, 'bytes 0-4/*', 'hello');
    const response = await idle.json(`${TWIRP}/CreateArtifact`, { ...ids(idle), name: 'never-finalized', version: 4 });
    const { signed_upload_url: url } = (await response.json()) as { signed_upload_url: string };
    await idle.call(`${url}&comp=block&blockid=AAAA`, { method: 'PUT', body: 'partial', token: null });
    const parts = async () => {
      const [cache, artifacts] = await Promise.all(['cache', 'artifacts'].map((s) => listFiles(join(root, 'services', s, 'parts'))));
      return { cache: cache!, artifacts: artifacts! };
    };

    let report = await services.prune(Date.now() + 30 * 60_000);
    expect(report.cache.abandonedReservations).toBe(0);
    report = await services.prune(Date.now() + 2 * 3_600_000);
    expect(report.cache.abandonedReservations).toBeGreaterThanOrEqual(1); // with what earlier tests left
    expect((await parts()).cache).not.toContain(`${id}.part`);
    expect((await parts()).artifacts.length).toBeGreaterThan(0);
    report = await services.prune(Date.now() + 25 * 3_600_000);
    expect(report.artifacts.abandonedUploads).toBeGreaterThanOrEqual(1);
    expect((await parts()).artifacts).toEqual([]);
  });
});

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path, base)));
    else out.push(relative(base, path));
  }
  return out;
}
