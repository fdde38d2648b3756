/**
 * `forgevm serve` (a real subprocess) while GitHub is down: pushes that arrive during the outage
 * are retried with backoff and all get their check runs once GitHub is back, none twice; a
 * SIGTERM while a call hangs exits within seconds, leaves the delivery pending and the job
 * running in a VM to the next start, which finishes both.
 * A job that finishes while GitHub is down keeps its report in the store across a stop, and the
 * next start sends it. A push GitHub sent while forgevm was stopped runs after the next start,
 * which asks GitHub to redeliver it.
 *
 * Jobs are skipped by `if:` (cheap) except those that must be running in a real VM.
 */
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStateRoot, stateDir } from '../src/vm/state-dir.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { postGithubDelivery, waitFor } from './support/forge-e2e.ts';
import { freePort, startServeProcess, withServeOutput, type ServeProcess } from './support/serve-process.ts';
import { qemuProcessesUnder, vmHarness, type VmHarness } from './support/vm-harness.ts';
import { githubExample } from './support/webhooks.ts';

const SECRET = 'outage-webhook-secret';

/** One job, skipped by its `if:` on a push: a check run created and concluded, no VM. */
const CHEAP = `name: CI
on: push
jobs:
  build:
    if: github.event_name == 'pull_request'
    runs-on: tiny
    steps:
      - run: make
`;

const SLOW = `name: Slow
on: push
jobs:
  soak:
    runs-on: tiny
    steps:
      - run: |
          echo "soaking"
          sleep 900
`;

/** Fails after long enough for the test to take GitHub down while it runs. */
const DOOMED = `name: Doomed
on: push
jobs:
  doomed:
    runs-on: tiny
    steps:
      - run: |
          echo "outage-report-marker: about to fail"
          sleep 20
          exit 3
`;

let h: VmHarness;
let github: FakeGithub;
let env: Record<string, string>;
const processes: ServeProcess[] = [];

beforeAll(async () => {
  h = await vmHarness();
  await copyFile(stateDir(defaultStateRoot()).accelCache, join(h.stateRoot, 'accel.json'));
  github = await startFakeGithub();
  // Short retries, so an outage of a few seconds is retried several times within the test.
  const config = join(h.stateRoot, 'forgevm.yml');
  await writeFile(config, 'deliveryRetry:\n  baseSeconds: 0.5\n  maxSeconds: 2\n  giveUpHours: 1\n');
  env = {
    APP_ID: String(github.appId),
    PRIVATE_KEY: github.privateKey,
    WEBHOOK_SECRET: SECRET,
    GITHUB_API_URL: github.url,
    FORGEVM_STATE_DIR: h.stateRoot,
    FORGEVM_CONFIG: config,
    LOG_LEVEL: 'info',
  };
}, 600_000);

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await github?.stop();
  if (h) await rm(h.stateRoot, { recursive: true, force: true });
});

async function serve(): Promise<ServeProcess> {
  const p = await startServeProcess(env, await freePort());
  processes.push(p);
  return p;
}

function pushPayload(repo: string, sha: string): Record<string, unknown> {
  const payload = githubExample('push', (e) => e.ref === 'refs/heads/master' && !!e.installation);
  const repository = payload.repository as Record<string, unknown>;
  repository.full_name = repo;
  repository.name = repo.split('/')[1];
  repository.clone_url = github.cloneUrl(repo);
  payload.after = sha;
  (payload.head_commit as Record<string, unknown>).id = sha;
  return payload;
}

/** The deliveries table as the server left it (read-only, beside the running server). */
function deliveries(): Array<{ id: string; status: string; failures: number; last_error: string | null }> {
  const db = new Database(join(h.stateRoot, 'forgevm.db'), { readonly: true });
  try {
    return db.prepare('SELECT id, status, failures, last_error FROM deliveries ORDER BY seq').all() as never;
  } finally {
    db.close();
  }
}

function jobs(): Array<{ display_name: string; status: string; conclusion: string | null; pending_report: string | null }> {
  const db = new Database(join(h.stateRoot, 'forgevm.db'), { readonly: true });
  try {
    return db.prepare('SELECT display_name, status, conclusion, pending_report FROM jobs ORDER BY id').all() as never;
  } finally {
    db.close();
  }
}

describe('forgevm serve while GitHub is down', () => {
  it('loses no push while GitHub refuses connections, then answers 502, then comes back', { timeout: 240_000 }, async () => {
    const repos = ['Codertocat/outage-a', 'Codertocat/outage-b', 'Codertocat/outage-c', 'Codertocat/outage-d'];
    const pushes = Array.from({ length: 8 }, (_, i) => {
      const repo = repos[i % repos.length]!;
      return { repo, sha: github.repos.commit(repo, 'master', { '.forgevm/workflows/ci.yml': CHEAP, [`change-${i}.txt`]: `${i}\n` }, `change ${i}`), id: `outage-push-${i}` };
    });
    const server = await serve();

    await github.goDown('refuse');
    for (const push of pushes) {
      const answer = await postGithubDelivery(server.url, SECRET, 'push', push.id, pushPayload(push.repo, push.sha));
      expect(answer.status, answer.body).toBe(202);
    }
    // Every delivery fails at least once, and is set aside for a retry rather than failed.
    await waitFor('every delivery to fail once with the connection refused', () => deliveries().every((d) => d.failures >= 1 && /ECONNREFUSED/.test(d.last_error ?? '')), 60_000).catch(withServeOutput(server));
    expect(deliveries().map((d) => d.status).filter((s) => s !== 'pending' && s !== 'processing')).toEqual([]);
    await github.comeBack();
    await github.goDown('502');
    await waitFor('a delivery to fail with 502', () => deliveries().some((d) => /Server Error/.test(d.last_error ?? '')), 60_000).catch(withServeOutput(server));
    await github.comeBack();
    const back = performance.now();

    await waitFor(
      'a concluded check run for every push',
      () => pushes.every((p) => github.runsFor(p.repo).some((r) => r.head_sha === p.sha && r.status === 'completed')),
      120_000,
    ).catch(withServeOutput(server));
    const recoveredMs = Math.round(performance.now() - back);

    for (const push of pushes) {
      const runs = github.runsFor(push.repo).filter((r) => r.head_sha === push.sha);
      expect(runs.map((r) => [r.name, r.status, r.conclusion]), push.id).toEqual([['CI / build', 'completed', 'skipped']]);
    }
    expect(github.validationErrors).toEqual([]);
    const stored = deliveries();
    expect(stored.map((d) => d.status)).toEqual(pushes.map(() => 'done'));
    expect(Math.min(...stored.map((d) => d.failures))).toBeGreaterThanOrEqual(1);
    const log = server.output();
    expect(log).toMatch(/failed for a passing reason: network error reaching (the forge|127\.0\.0\.1:\d+): connect ECONNREFUSED 127\.0\.0\.1:\d+; attempt 2 in /);
    expect(log).not.toMatch(/with id UNKNOWN/);
    console.log(`[figures] ${pushes.length} pushes during the outage, 0 lost; all concluded ${recoveredMs} ms after GitHub came back`);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('exits within 10 s of SIGTERM while a GitHub call hangs, leaves the delivery pending and the VM job to the next start', { timeout: 400_000 }, async () => {
    const vmRepo = 'Codertocat/outage-vm';
    const slowSha = github.repos.commit(vmRepo, 'master', { '.forgevm/workflows/slow.yml': SLOW }, 'slow job');
    const cheapRepo = 'Codertocat/outage-late';
    const cheapSha = github.repos.commit(cheapRepo, 'master', { '.forgevm/workflows/ci.yml': CHEAP }, 'cheap job');
    const first = await serve();

    expect((await postGithubDelivery(first.url, SECRET, 'push', 'sigterm-vm', pushPayload(vmRepo, slowSha))).status).toBe(202);
    const vmRun = await waitFor('the VM job in progress', () => github.runsFor(vmRepo).find((r) => r.status === 'in_progress'), 300_000).catch(withServeOutput(first));

    // GitHub stalls: the late push's first call hangs in flight, as calls to an overloaded API do.
    await github.goDown('stall');
    const stalledAt = github.requests.length;
    expect((await postGithubDelivery(first.url, SECRET, 'push', 'sigterm-late', pushPayload(cheapRepo, cheapSha))).status).toBe(202);
    await waitFor('a call for the late push in flight', () => github.requests.slice(stalledAt).some((r) => r.path.includes('outage-late')), 30_000).catch(withServeOutput(first));
    const signalled = performance.now();
    first.child.kill('SIGTERM');
    const code = await first.exited;
    const exitMs = Math.round(performance.now() - signalled);
    expect(code, first.output()).toBe(0);
    expect(exitMs).toBeLessThan(10_000);
    console.log(`[figures] exit ${exitMs} ms after SIGTERM, with a GitHub call in flight and a job running in a VM`);

    // The delivery went back to pending, not failed; the VM job is left in progress for the next start.
    expect(deliveries().find((d) => d.id === 'sigterm-late')).toMatchObject({ status: 'pending' });
    expect(jobs().find((j) => j.display_name === 'soak')).toMatchObject({ status: 'in_progress' });
    expect(first.output()).toMatch(/delivery sigterm-late \(push Codertocat\/outage-late\) left pending: forgevm is stopping \(GitHub API call aborted: forgevm is stopping\)/);
    expect(first.output()).toMatch(/job \d+ \(Codertocat\/outage-vm soak\) interrupted by the shutdown; the next start concludes it|still winding down when the stop grace ended/);
    await waitFor('QEMU gone with the server', async () => (await qemuProcessesUnder(h.stateRoot)).length === 0, 15_000);

    // A delivery received two months ago: the restarted server's delivery retention (30 days) deletes it.
    const db = new Database(join(h.stateRoot, 'forgevm.db'));
    const longAgo = new Date(Date.now() - 60 * 86_400_000).toISOString();
    db.prepare(`INSERT INTO deliveries (id, forge, event, normalized, payload, received_at, status, updated_at) VALUES ('ancient', 'github', 'ping', '{"kind":"ping"}', '{}', ?, 'ignored', ?)`).run(longAgo, longAgo);
    db.close();

    await github.comeBack();
    const second = await serve();
    await waitFor('the late push concluded', () => github.runsFor(cheapRepo).find((r) => r.head_sha === cheapSha && r.status === 'completed'), 60_000).catch(withServeOutput(second));
    const concluded = await waitFor('the interrupted VM job concluded', () => github.completedRun(vmRun.id), 60_000).catch(withServeOutput(second));
    expect(concluded.conclusion).toBe('failure');
    expect(`${concluded.output.title}\n${concluded.output.text}`).toMatch(/runner restarted/);
    expect(github.runsFor(vmRepo)).toHaveLength(1);
    expect(github.runsFor(cheapRepo).map((r) => [r.name, r.conclusion])).toEqual([['CI / build', 'skipped']]);
    expect(deliveries().find((d) => d.id === 'sigterm-late')).toMatchObject({ status: 'done' });
    expect(deliveries().map((d) => d.id)).not.toContain('ancient');
    expect(second.output()).toContain('pruned deliveries older than 30 days: 1 deleted, 0 kept without their payload');
    expect(github.validationErrors).toEqual([]);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('keeps the report of a job that finished while GitHub was down across a stop (its call cut off), and sends it once after the restart', { timeout: 400_000 }, async () => {
    const repo = 'Codertocat/outage-report';
    const sha = github.repos.commit(repo, 'master', { '.forgevm/workflows/doomed.yml': DOOMED }, 'doomed job');
    const first = await serve();
    expect((await postGithubDelivery(first.url, SECRET, 'push', 'report-outbox', pushPayload(repo, sha))).status).toBe(202);
    const run = await waitFor('the job in progress', () => github.runsFor(repo).find((r) => r.status === 'in_progress'), 300_000).catch(withServeOutput(first));

    await github.goDown('refuse');
    await waitFor('the job to finish', () => jobs().find((j) => j.display_name === 'doomed')?.status === 'completed', 120_000).catch(withServeOutput(first));
    await waitFor('a report attempt refused', () => /cannot report job \d+ \(Codertocat\/outage-report doomed\) as failure yet: .*ECONNREFUSED/.test(first.output()), 30_000).catch(withServeOutput(first));
    // Then GitHub takes calls and answers none: the stop cuts the report call off in flight.
    const stalledAt = github.requests.length;
    await github.goDown('stall');
    await waitFor('a report call in flight', () => github.requests.slice(stalledAt).some((r) => r.auth === 'stalled' && /check-runs/.test(r.path)), 30_000).catch(withServeOutput(first));
    first.child.kill('SIGTERM');
    expect(await first.exited, first.output()).toBe(0);

    // Stopped with GitHub still down: the check is still in progress there, the report is on disk.
    expect(github.runsFor(repo).map((r) => r.status)).toEqual(['in_progress']);
    const stored = jobs().find((j) => j.display_name === 'doomed')!;
    expect(stored).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(JSON.parse(stored.pending_report ?? 'null')).toMatchObject({ conclusion: 'failure', output: { text: expect.stringContaining('outage-report-marker') } });

    await github.comeBack();
    const second = await serve();
    const concluded = await waitFor('the stored report sent', () => github.completedRun(run.id), 60_000).catch(withServeOutput(second));
    expect(concluded.conclusion).toBe('failure');
    expect(concluded.output.text).toContain('outage-report-marker: about to fail');
    expect(github.runsFor(repo)).toHaveLength(1);
    await waitFor('the stored report cleared', () => jobs().find((j) => j.display_name === 'doomed')?.pending_report === null, 10_000).catch(withServeOutput(second));
    expect(second.output()).toContain('sending 1 final job reports the forge did not confirm before the last stop');
    expect(github.validationErrors).toEqual([]);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('runs a push that GitHub sent while forgevm was stopped: the next start asks GitHub to redeliver it', { timeout: 120_000 }, async () => {
    const repo = 'Codertocat/outage-missed';
    const sha = github.repos.commit(repo, 'master', { '.forgevm/workflows/ci.yml': CHEAP }, 'pushed while forgevm was stopped');
    const port = await freePort();
    github.webhookTarget = { url: `http://127.0.0.1:${port}/webhooks/github`, secret: SECRET };
    expect((await github.deliver('push', pushPayload(repo, sha), 'sent-while-stopped')).status).toBe('failed to connect to host');

    const server = await startServeProcess(env, port);
    processes.push(server);
    await waitFor('a concluded check run for the missed push', () => github.runsFor(repo).find((r) => r.head_sha === sha && r.status === 'completed'), 60_000).catch(withServeOutput(server));
    expect(github.attemptsOf('sent-while-stopped').map((a) => [a.redelivery, a.status_code])).toEqual([
      [false, 0],
      [true, 202],
    ]);
    expect(github.runsFor(repo).map((r) => [r.name, r.conclusion])).toEqual([['CI / build', 'skipped']]);
    expect(server.output()).toMatch(/GitHub delivery sent-while-stopped \(push, [^)]*\) never reached forgevm \(last answer: \\"failed to connect to host\\", 0\); asked GitHub to redeliver it/);
    expect(github.validationErrors).toEqual([]);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });
});
