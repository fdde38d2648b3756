/**
 * `forgevm serve` killed with SIGKILL while a job runs in a real VM, then started again on the
 * same state folder: no QEMU outlives the server, the job is concluded (not run twice, not left
 * in progress), its check run is not duplicated, and the job folder is swept.
 */
import { copyFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultStateRoot, stateDir } from '../src/vm/state-dir.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { postGithubDelivery, waitFor } from './support/forge-e2e.ts';
import { freePort, startServeProcess, withServeOutput, type ServeProcess } from './support/serve-process.ts';
import { jobFolders, qemuProcessesUnder, vmHarness, type VmHarness } from './support/vm-harness.ts';
import { githubExample } from './support/webhooks.ts';

const SECRET = 'restart-webhook-secret';
const REPO = 'Codertocat/Hello-World';

const CI = `name: Slow
on: push
jobs:
  soak:
    runs-on: tiny
    steps:
      - name: Soak
        run: |
          echo "soaking"
          sleep 900
`;

let h: VmHarness;
let github: FakeGithub;
const processes: ServeProcess[] = [];
let env: Record<string, string>;

beforeAll(async () => {
  h = await vmHarness();
  // The harness probed the accelerator for this very state folder: let the subprocess reuse the verdict.
  await copyFile(stateDir(defaultStateRoot()).accelCache, join(h.stateRoot, 'accel.json'));
  github = await startFakeGithub();
  env = {
    APP_ID: String(github.appId),
    PRIVATE_KEY: github.privateKey,
    WEBHOOK_SECRET: SECRET,
    GITHUB_API_URL: github.url,
    FORGEVM_STATE_DIR: h.stateRoot,
    LOG_LEVEL: 'info',
  };
});

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await github?.stop();
  // `images` in there is a symlink to the shared images: rm removes the link, never its target.
  if (h) await rm(h.stateRoot, { recursive: true, force: true });
});

describe('forgevm serve killed mid-job and started again', () => {
  it('concludes the interrupted job as failed, kills its VM, sweeps its folder and duplicates no check run', { timeout: 400_000 }, async () => {
    const sha = github.repos.commit(REPO, 'master', { '.forgevm/workflows/slow.yml': CI }, 'Add a slow job');
    const first = await startServeProcess(env, await freePort());
    processes.push(first);

    const payload = githubExample('push', (e) => e.ref === 'refs/heads/master' && !!e.installation);
    (payload.repository as Record<string, unknown>).clone_url = github.cloneUrl(REPO);
    payload.after = sha;
    (payload.head_commit as Record<string, unknown>).id = sha;
    const answer = await postGithubDelivery(first.url, SECRET, 'push', 'restart-push-1', payload);
    expect(answer.status, answer.body).toBeLessThan(300);

    // The check run goes in_progress when the VM is up and the steps start.
    const run = await waitFor(
      'the check run in progress',
      () => github.runsFor(REPO).find((r) => r.head_sha === sha && r.status === 'in_progress'),
      240_000,
    ).catch(withServeOutput(first));
    expect(run.name).toBe('Slow / soak');
    expect(await qemuProcessesUnder(h.stateRoot)).toHaveLength(1);
    const folders = await jobFolders(h.stateRoot);
    expect(folders).toHaveLength(1);

    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    // QEMU runs under a parent-death signal: it must not outlive the server.
    await waitFor('QEMU gone after the server was killed', async () => (await qemuProcessesUnder(h.stateRoot)).length === 0, 15_000);
    // The crash left the job folder behind, and the check run still says in_progress.
    expect(await jobFolders(h.stateRoot)).toEqual(folders);
    expect(github.runsFor(REPO).find((r) => r.id === run.id)?.status).toBe('in_progress');

    // A job log from two months ago: the restarted server's log retention (30 days) deletes it.
    const logs = stateDir(h.stateRoot).logs;
    const ancient = join(logs, '1-ancient.log');
    await writeFile(ancient, 'an old job\n');
    const twoMonthsAgo = new Date(Date.now() - 60 * 86_400_000);
    await utimes(ancient, twoMonthsAgo, twoMonthsAgo);

    const second = await startServeProcess(env, await freePort());
    processes.push(second);
    const concluded = await waitFor('the interrupted check run concluded', () => github.completedRun(run.id), 60_000).catch(withServeOutput(second));
    expect(concluded.conclusion).toBe('failure');
    expect(`${concluded.output.title}\n${concluded.output.text}`).toMatch(/runner restarted/);

    // One check run per job (external_id), nothing run again, the folder swept, no VM started.
    const runs = github.runsFor(REPO).filter((r) => r.head_sha === sha);
    expect(runs.map((r) => r.external_id)).toEqual([run.external_id]);
    expect(await jobFolders(h.stateRoot)).toEqual([]);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
    expect(github.validationErrors).toEqual([]);
    expect(await readdir(logs)).not.toContain('1-ancient.log');
    expect((await readdir(logs)).length).toBeGreaterThan(0); // the interrupted job's own log stays
    expect(second.output()).toContain('deleted 1 job logs older than 30 days');

    // And the restarted server stops cleanly on SIGTERM.
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
