/**
 * `forgevm serve` (a real subprocess) under hostile webhook traffic and on a full disk: 32
 * unsigned 24 MB requests at once leave its peak RSS bounded (measured from /proc), a signed
 * push still gets in afterwards, and /healthz answers 503 with the reason while the state
 * folder's disk is full, then ok again once there is room.
 */
import { request as httpRequest } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { postGithubDelivery, waitFor } from './support/forge-e2e.ts';
import { freePort, startServeProcess, type ServeProcess } from './support/serve-process.ts';
import { githubExample } from './support/webhooks.ts';

const SECRET = 'hostile-webhook-secret';
const MB = 1024 * 1024;

let github: FakeGithub;
const processes: ServeProcess[] = [];
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  github = await startFakeGithub();
});

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  await github?.stop();
});

/** A serve without VMs to run (no image needed): the intake and the store are what is tested. */
async function serve(stateRoot: string): Promise<ServeProcess> {
  const p = await startServeProcess(
    { APP_ID: String(github.appId), PRIVATE_KEY: github.privateKey, WEBHOOK_SECRET: SECRET, GITHUB_API_URL: github.url, FORGEVM_STATE_DIR: stateRoot, LOG_LEVEL: 'info' },
    await freePort(),
  );
  processes.push(p);
  return p;
}

/** Resident and peak resident memory of a process, in MiB (VmRSS, VmHWM). */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rss: Math.round(kib('VmRSS') / 1024), peak: Math.round(kib('VmHWM') / 1024) };
}

/** One unsigned POST of `body`, answered or cut off: resolves with the status (0 when cut off). */
function unsignedPost(url: string, body: Buffer, id: number): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}/webhooks/github`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length), 'x-github-event': 'push', 'x-github-delivery': `hostile-${id}` },
    });
    let status = 0;
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => resolve(status));
    });
    req.on('error', () => setTimeout(() => resolve(status), 100));
    req.end(body);
  });
}

describe('forgevm serve under hostile load', () => {
  it('keeps its memory bounded while 32 unsigned 24 MB requests arrive at once', { timeout: 180_000 }, async () => {
    const stateRoot = await mkdtemp(join(tmpdir(), 'fvm-hostile-'));
    cleanup.push(() => rm(stateRoot, { recursive: true, force: true }));
    const server = await serve(stateRoot);
    const pid = server.child.pid!;
    const before = await memoryOf(pid);

    const body = Buffer.alloc(24 * MB, 'x');
    const statuses = await Promise.all(Array.from({ length: 32 }, (_, i) => unsignedPost(server.url, body, i)));
    const after = await memoryOf(pid);
    console.log(`[figures] 32 × 24 MB unsigned: RSS ${before.rss} MiB before, peak ${after.peak} MiB (was ${before.peak} MiB at start), ${after.rss} MiB after; answers ${JSON.stringify(countOf(statuses))}`);

    // Refused: 401 once read (no signature), 503 when the bytes in flight are at the bound.
    for (const status of statuses) expect([401, 503, 0]).toContain(status);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    // The budget (64 MiB of bodies) plus what the runtime holds; ~950 MB without a bound.
    expect(after.peak - before.peak).toBeLessThan(250);
    expect(server.output()).toMatch(/"delivery":"hostile-\d+","event":"push","outcome":"rejected","status":503/);

    // Still serving: a signed push is stored.
    const payload = githubExample('push', (e) => e.ref === 'refs/heads/master' && !!e.installation);
    expect((await postGithubDelivery(server.url, SECRET, 'push', 'after-the-storm', payload)).status).toBe(202);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('answers /healthz 503 with the reason while the disk is full, and ok once there is room again', { timeout: 120_000 }, async () => {
    // A small disk of its own (tmpfs, as root: CI and these machines run as root).
    const mountPoint = await mkdtemp(join(tmpdir(), 'fvm-fulldisk-'));
    cleanup.push(() => rm(mountPoint, { recursive: true, force: true }));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mountPoint]);
    cleanup.push(() => execa('umount', ['-l', mountPoint]));
    const stateRoot = join(mountPoint, 'state');
    await mkdir(stateRoot);
    const server = await serve(stateRoot);
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ ok: true, store: true });

    // Fill the disk.
    const filler = join(mountPoint, 'filler');
    await execa('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=200'], { reject: false });
    const full = await waitFor('healthz to report the full disk', async () => {
      const res = await fetch(`${server.url}/healthz`);
      return res.status === 503 ? ((await res.json()) as Record<string, unknown>) : undefined;
    }, 10_000);
    expect(full).toEqual({ ok: false, store: false, reason: expect.stringMatching(/^store: only \d+ B free in .*state, less than the 50\.0 MiB deliveries need; free some space$/) });
    expect(server.output()).toMatch(/"kind":"health".*health check failed: store: only/);

    await rm(filler);
    await waitFor('healthz ok again', async () => (await fetch(`${server.url}/healthz`)).status === 200, 10_000);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });
});

function countOf(values: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[String(v)] = (counts[String(v)] ?? 0) + 1;
  return counts;
}
