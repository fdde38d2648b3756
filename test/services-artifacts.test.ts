/**
 * upload-artifact / download-artifact inside forgevm: the real @actions/artifact releases 2.x
 * (upload/download-artifact v4) and 6.x (v5 and later) upload in one job and list and download
 * in another job of the same run, through forgevm's artifact service; other runs see nothing,
 * names are unique per run, and artifacts expire.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobIdentity } from '../src/services/job-identity.ts';
import { RunnerServices } from '../src/services/runner-services.ts';
import { identity, listenForJob, runClient, type JobPort } from './support/services-harness.ts';

const DAY = 86_400_000;

let root: string;
let services: RunnerServices;
let clock = Date.now();
const ports: JobPort[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fvm-artifacts-'));
  services = await RunnerServices.open({ dir: join(root, 'services'), artifactRetentionDays: 30, now: () => clock });
});

afterAll(async () => {
  await Promise.all(ports.map((p) => p.close()));
  await services?.close();
  await rm(root, { recursive: true, force: true });
});

async function job(overrides: Partial<JobIdentity>) {
  const services_ = services.openJob(identity(overrides));
  const port = await listenForJob(services_);
  ports.push(port);
  const workspace = await mkdtemp(join(root, 'ws-'));
  const client = (pkg: string, operation: string, args: unknown) => runClient(pkg, operation, args, port.env, workspace);
  return {
    services: services_,
    workspace,
    async write(files: Record<string, string>) {
      for (const [name, content] of Object.entries(files)) {
        await mkdir(join(workspace, name, '..'), { recursive: true });
        await writeFile(join(workspace, name), content);
      }
    },
    upload: (pkg: string, name: string, files: string[], options: object = {}) =>
      client(pkg, 'upload', { name, files: files.map((f) => join(workspace, f)), root: workspace, options }),
    list: (pkg: string) => client(pkg, 'list', {}),
    download: (pkg: string, name: string, path: string) => client(pkg, 'download', { name, path: join(workspace, path) }),
    delete: (pkg: string, name: string) => client(pkg, 'delete', { name }),
    read: (path: string) => readFile(join(workspace, path), 'utf8'),
  };
}

describe('within one run', () => {
  it.each([
    ['actions-artifact-2', 'actions-artifact-6'],
    ['actions-artifact-6', 'actions-artifact-2'],
  ])('a job uploads with %s, a later job lists and downloads with %s', async (uploader, downloader) => {
    const runId = `run-${uploader}`;
    const build = await job({ runId, jobId: 'build' });
    await build.write({ 'dist/app.js': 'console.log("hi")\n', 'dist/lib/util.js': 'export {}\n' });
    const uploaded = await build.upload(uploader, 'dist', ['dist/app.js', 'dist/lib/util.js']);
    expect(uploaded.ok, uploaded.output).toBe(true);
    expect(uploaded.result).toMatchObject({ id: expect.any(Number), size: expect.any(Number), digest: expect.stringMatching(/^[0-9a-f]{64}$/) });

    const test = await job({ runId, jobId: 'test' });
    const listed = await test.list(downloader);
    expect(listed.result).toEqual([{ name: 'dist', size: (uploaded.result as { size: number }).size, id: (uploaded.result as { id: number }).id, digest: `sha256:${(uploaded.result as { digest: string }).digest}` }]);
    const downloaded = await test.download(downloader, 'dist', 'got');
    expect(downloaded, downloaded.output).toMatchObject({ ok: true, result: { digestMismatch: false } });
    expect(await test.read('got/dist/app.js')).toBe('console.log("hi")\n');
    expect(await test.read('got/dist/lib/util.js')).toBe('export {}\n');

    // The worker's view, for the check run.
    const shown = await test.services.artifacts();
    expect(shown).toMatchObject([{ name: 'dist', size: (uploaded.result as { size: number }).size, jobId: 'build' }]);
  });

  it('uploads a single file unzipped (6.x skipArchive) and downloads it under its name', async () => {
    const build = await job({ runId: 'raw', jobId: 'build' });
    await build.write({ 'report.json': '{"passed":3}' });
    const uploaded = await build.upload('actions-artifact-6', 'ignored', ['report.json'], { skipArchive: true });
    expect(uploaded.ok, uploaded.output).toBe(true);
    const test = await job({ runId: 'raw', jobId: 'test' });
    const downloaded = await test.download('actions-artifact-6', 'report.json', 'got');
    expect(downloaded.ok, downloaded.output).toBe(true);
    expect(await readdir(join(test.workspace, 'got'))).toEqual(['report.json']);
    expect(await test.read('got/report.json')).toBe('{"passed":3}');
  });

  it('refuses a second artifact of the same name, and takes it after a delete (overwrite)', async () => {
    const build = await job({ runId: 'names', jobId: 'build' });
    await build.write({ 'out.txt': 'one' });
    expect((await build.upload('actions-artifact-2', 'out', ['out.txt'])).ok).toBe(true);
    const other = await job({ runId: 'names', jobId: 'other' });
    await other.write({ 'out.txt': 'two' });
    const clash = await other.upload('actions-artifact-6', 'out', ['out.txt']);
    expect(clash.ok).toBe(false);
    expect(clash.error).toMatch(/409.*an artifact named "out" already exists in this run \(uploaded by job build\)/);

    expect((await other.delete('actions-artifact-6', 'out')).ok).toBe(true);
    expect((await other.upload('actions-artifact-6', 'out', ['out.txt'])).ok).toBe(true);
    const reader = await job({ runId: 'names', jobId: 'reader' });
    await reader.download('actions-artifact-6', 'out', 'got');
    expect(await reader.read('got/out.txt')).toBe('two');
  });

  it("lets a re-run replace an earlier attempt's artifact and still see the others", async () => {
    const first = await job({ runId: 'rerun', runAttempt: 1, jobId: 'build' });
    await first.write({ 'a.txt': 'attempt 1', 'b.txt': 'kept' });
    expect((await first.upload('actions-artifact-6', 'a', ['a.txt'])).ok).toBe(true);
    expect((await first.upload('actions-artifact-6', 'b', ['b.txt'])).ok).toBe(true);
    const second = await job({ runId: 'rerun', runAttempt: 2, jobId: 'build' });
    await second.write({ 'a.txt': 'attempt 2' });
    expect((await second.upload('actions-artifact-6', 'a', ['a.txt'])).ok).toBe(true);
    await second.download('actions-artifact-6', 'a', 'got-a');
    await second.download('actions-artifact-6', 'b', 'got-b');
    expect(await second.read('got-a/a.txt')).toBe('attempt 2');
    expect(await second.read('got-b/b.txt')).toBe('kept');
  });
});

describe('across runs', () => {
  it("another run sees none of this run's artifacts", async () => {
    const build = await job({ runId: 'mine', jobId: 'build' });
    await build.write({ 'secret.txt': 'run mine only' });
    expect((await build.upload('actions-artifact-6', 'private', ['secret.txt'])).ok).toBe(true);

    const stranger = await job({ runId: 'theirs', jobId: 'build' });
    expect((await stranger.list('actions-artifact-6')).result).toEqual([]);
    const attempt = await stranger.download('actions-artifact-2', 'private', 'got');
    expect(attempt.ok).toBe(false);
    expect(attempt.error).toMatch(/Artifact not found for name: private/);
    const otherRepo = await job({ runId: 'mine', repo: 'octo/other', jobId: 'build' });
    expect((await otherRepo.list('actions-artifact-6')).result).toEqual([]);
  });
});

describe('retention', () => {
  it("keeps artifacts for the configured days or the client's retention-days, whichever is shorter, then prunes them", async () => {
    const build = await job({ runId: 'old', jobId: 'build' });
    await build.write({ 'short.txt': 'a day', 'long.txt': 'the default' , 'wish.txt': 'a year' });
    expect((await build.upload('actions-artifact-6', 'short', ['short.txt'], { retentionDays: 1 })).ok).toBe(true);
    expect((await build.upload('actions-artifact-2', 'long', ['long.txt'])).ok).toBe(true);
    const wish = await build.upload('actions-artifact-6', 'wish', ['wish.txt'], { retentionDays: 365 });
    expect(wish.ok).toBe(true);
    expect(wish.output).toMatch(/Retention days cannot be greater than the maximum allowed retention set within the repository\. Using 30 instead/);

    const expiry = Object.fromEntries((await build.services.artifacts()).map((a) => [a.name, Date.parse(a.expiresAt) - clock]));
    expect(expiry.short).toBeGreaterThan(0.9 * DAY);
    expect(expiry.short).toBeLessThanOrEqual(1.01 * DAY);
    expect(expiry.long).toBeCloseTo(30 * DAY, -5);
    expect(expiry.wish).toBeLessThanOrEqual(30 * DAY + 1000);

    clock += 2 * DAY;
    expect((await build.services.artifacts()).map((a) => a.name).sort()).toEqual(['long', 'wish']);
    const later = await job({ runId: 'old', jobId: 'later' });
    expect((await later.download('actions-artifact-6', 'short', 'got')).ok).toBe(false);
    const pruned = await services.prune(clock);
    expect(pruned.artifacts.expired).toBe(1);

    clock += 29 * DAY;
    expect((await services.prune(clock)).artifacts.expired).toBeGreaterThanOrEqual(2);
    expect(services.artifacts({ forge: 'github', repo: 'octo/app', runId: 'old' })).toEqual([]);
  });
});
