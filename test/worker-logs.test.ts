/**
 * The service log's structured lines from the worker side: one JSON line per job state change
 * (kind "job") and one per failed forge API call (kind "forge_api_error"), written by pino.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PushEvent } from '../src/forge/event-types.ts';
import { GithubClients, type ForgeLogger } from '../src/forge/github-client.ts';
import { createLogger, logForgeApiError, logJobState, type Logger } from '../src/log/logger.ts';
import { githubAccess } from '../src/scheduler/forge-access.ts';
import { Worker } from '../src/scheduler/worker.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { FakeEngine, testWorkerOptions } from './support/worker-fakes.ts';

const CI = `name: CI
on: [push]
jobs:
  build:
    runs-on: tiny
    steps:
      - run: make
`;

let github: FakeGithub;
let store: SqliteStore;
let stateDir: string;
let out: string[];
let logger: Logger;

beforeEach(async () => {
  github = await startFakeGithub();
  stateDir = mkdtempSync(join(tmpdir(), 'forgevm-worker-logs-'));
  store = new SqliteStore({ dir: stateDir });
  out = [];
  logger = createLogger({ level: 'debug', destination: { write: (chunk: string) => void out.push(chunk) } });
});
afterEach(async () => {
  await github.stop();
  await store.close();
});

/** Wired like src/scheduler/start-worker.ts. */
function worker(): Worker {
  const log: ForgeLogger = { info: (m) => logger.info(m), warn: (m) => logger.warn(m), error: (m) => logger.error(m) };
  const onApiError = (line: Parameters<typeof logForgeApiError>[1]) => logForgeApiError(logger, line);
  const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false }, log, onApiError });
  const engine = new FakeEngine({ build: [{ name: 'make', output: 'cc -o app main.c\n', exitCode: 0 }] });
  return new Worker(
    testWorkerOptions(
      { store, stateDir, forges: { github: githubAccess(clients) }, executeJob: engine.execute },
      { log, events: { onJobState: (line) => logJobState(logger, line) }, progressIntervalMs: 10_000 },
    ),
  );
}

function pushEvent(sha: string): PushEvent {
  const repo = { fullName: 'acme/app', owner: 'acme', name: 'app', cloneUrl: github.cloneUrl('acme/app') };
  return { kind: 'push', forge: 'github', repo, ref: 'refs/heads/main', before: '0'.repeat(40), sha, created: false, forced: false, changedFiles: ['src/main.c'], actor: 'alice', installationId: 5 };
}

async function runPush(id: string, sha: string): Promise<void> {
  const event = pushEvent(sha);
  await store.insertDelivery({ id, forge: 'github', event: 'push', action: null, normalized: event, payload: '{}' });
  const w = worker();
  while (await w.processNext());
  await w.idle();
}

function records(kind: string): Record<string, unknown>[] {
  return out
    .flatMap((chunk) => chunk.split('\n'))
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.kind === kind);
}

describe('worker structured logs', () => {
  it('writes one JSON line per job state change of a passing job', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    await runPush('d-logs-1', sha);

    const jobs = records('job');
    expect(jobs.map((j) => [j.status, j.conclusion])).toEqual([
      ['queued', undefined],
      ['in_progress', undefined],
      ['completed', 'success'],
    ]);
    for (const j of jobs) expect(j).toMatchObject({ name: 'CI / build', repo: 'acme/app', level: 30, job: jobs[0]!.job, run: jobs[0]!.run });
    expect(jobs[2]).toMatchObject({ error: null, msg: `job ${jobs[0]!.job} acme/app "CI / build": completed (success)` });
    expect(records('forge_api_error')).toEqual([]);
  });

  it('writes one forge_api_error line when GitHub refuses a check-run update, and the job still completes', async () => {
    const sha = github.repos.commit('acme/app', 'main', { '.forgevm/workflows/ci.yml': CI });
    github.failNext('PATCH', /\/check-runs\/\d+$/, 422, {}, { message: 'injected refusal' });
    await runPush('d-logs-2', sha);

    const errors = records('forge_api_error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      level: 50,
      forge: 'github',
      request: 'PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}',
      status: 422,
      repo: 'acme/app',
      willRetry: false,
    });
    expect(errors[0]!.message).toMatch(/injected refusal/);
    expect(records('job').map((j) => j.status)).toEqual(['queued', 'in_progress', 'completed']);
    expect(github.runsFor('acme/app').map((r) => [r.status, r.conclusion])).toEqual([['completed', 'success']]);
  });
});

describe('service log redaction', () => {
  it('censors secrets in a settings object, a config section, a config and request headers logged by mistake', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (chunk: string) => void lines.push(chunk) } });
    const github = { appId: 1, privateKey: 'PEM-SECRET', webhookSecret: 'HOOK-SECRET' };
    log.info({ privateKey: 'TOP-SECRET', token: 'TOKEN-SECRET' }, 'settings');
    log.info({ github }, 'section');
    log.info({ config: { github, forgejo: { url: 'https://f', token: 'FJ-TOKEN', webhookSecret: 'FJ-HOOK' } } }, 'config');
    log.info({ headers: { authorization: 'token GH-TOKEN' }, request: { headers: { authorization: 'Bearer X-TOKEN' } } }, 'request');
    const text = lines.join('');
    for (const secret of ['TOP-SECRET', 'TOKEN-SECRET', 'PEM-SECRET', 'HOOK-SECRET', 'FJ-TOKEN', 'FJ-HOOK', 'GH-TOKEN', 'X-TOKEN']) expect(text).not.toContain(secret);
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[2]!).config).toEqual({
      github: { appId: 1, privateKey: '[redacted]', webhookSecret: '[redacted]' },
      forgejo: { url: 'https://f', token: '[redacted]', webhookSecret: '[redacted]' },
    });
  });
});
