/**
 * The npm clients GitHub's own actions are built on (@actions/cache for actions/cache and the
 * setup-* `cache:` inputs, @actions/artifact for upload-artifact/download-artifact), bundled
 * into a local JavaScript action exactly as those actions bundle them, and run by Node in a real
 * tiny VM against forgevm's services through the SSH tunnel: one job saves a cache entry and
 * uploads an artifact, the job that needs it restores and downloads them.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlannedJob } from '../src/job/run-planned-job.ts';
import type { JobResult } from '../src/job/result.ts';
import { JobLog } from '../src/log/job-log.ts';
import { RunnerServices } from '../src/services/runner-services.ts';
import { runJobGraph } from '../src/workflow/graph.ts';
import { parseWorkflow } from '../src/workflow/parse.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { bundleAction } from './support/bundle-action.ts';
import { gitRepo } from './support/forgevm-cli.ts';
import { testGithub } from './support/job-fixture.ts';
import { vmHarness, type VmHarness } from './support/vm-harness.ts';

/** The action's code: what actions/cache and upload/download-artifact do, through the same clients. */
const ACTION_SOURCE = `
import fs from 'node:fs';
import * as cache from 'actions-cache-6';
import { DefaultArtifactClient } from 'actions-artifact-6';
const out = (k, v) => fs.appendFileSync(process.env.GITHUB_OUTPUT, k + '=' + v + '\\n');
(async () => {
  const key = 'data-' + process.env.INPUT_KEY;
  const artifacts = new DefaultArtifactClient();
  if (process.env.INPUT_MODE === 'save') {
    const id = await cache.saveCache(['data'], key);
    console.log('saved cache ' + id);
    const up = await artifacts.uploadArtifact('report', ['data/report.txt'], 'data');
    console.log('uploaded artifact of ' + up.size + ' bytes');
  } else {
    const hit = await cache.restoreCache(['data'], 'missing-key', ['data-']);
    out('cache-hit', hit || '');
    const { artifact } = await artifacts.getArtifact('report');
    await artifacts.downloadArtifact(artifact.id, { path: 'downloaded' });
  }
})().catch((err) => { console.log('::error::' + err.message); process.exit(1); });
`;

const WORKFLOW = `on: push
jobs:
  produce:
    runs-on: tiny
    steps:
      - run: mkdir -p data && echo "cached $GITHUB_SHA" > data/cached.txt && echo "report body" > data/report.txt
      - uses: ./.github/actions/services
        with: { mode: save, key: "\${{ github.sha }}" }
  consume:
    needs: produce
    runs-on: tiny
    steps:
      - uses: ./.github/actions/services
        id: restore
        with: { mode: restore, key: unused }
      - run: |
          test "\${{ steps.restore.outputs.cache-hit }}" = "data-\${{ github.sha }}"
          test "$(cat data/cached.txt)" = "cached $GITHUB_SHA"
          test "$(cat downloaded/report.txt)" = "report body"
`;

let vm: VmHarness;
let services: RunnerServices;
let repo: { dir: string; sha: string };
let servicesDir: string;

beforeAll(async () => {
  vm = await vmHarness();
  repo = await gitRepo({
    '.forgevm/workflows/services.yml': WORKFLOW,
    '.github/actions/services/action.yml': 'name: services\ninputs:\n  mode: { required: true }\n  key: { required: true }\nruns:\n  using: node24\n  main: dist/index.js\n',
    '.github/actions/services/dist/index.js': await bundleAction(ACTION_SOURCE),
  });
  servicesDir = await mkdtemp(join(tmpdir(), 'fvm-services-'));
  services = await RunnerServices.open({ dir: servicesDir });
});

afterAll(async () => {
  await services?.close();
  for (const dir of [servicesDir, repo?.dir, vm?.stateRoot]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('actions/cache and upload/download-artifact clients in a VM', () => {
  it('save a cache entry and an artifact in one job, and restore and download them in the next', async () => {
    const { workflow } = parseWorkflow('.forgevm/workflows/services.yml', WORKFLOW);
    const github = testGithub(repo.sha);
    const [planned] = planWorkflows({ name: 'push', ref: github.ref, sha: repo.sha, payload: {} }, [workflow!], undefined, github);
    const logs: Record<string, string> = {};
    const results = await runJobGraph(
      planned!.jobs,
      async (job, needs, signal): Promise<JobResult> => {
        const jobServices = services.openJob({
          forge: 'local',
          repo: 'octo/demo',
          runId: github.run_id,
          runAttempt: 1,
          jobId: job.instance.key,
          ref: github.ref,
          defaultBranch: 'main',
          fork: false,
        });
        const log = new JobLog(join(vm.stateRoot, `${job.instance.key}.log`), 50 * 1024 * 1024);
        try {
          return await runPlannedJob(vm.engine, {
            id: `svc-${job.instance.key}`,
            job,
            needs,
            github,
            workspace: { repoDir: repo.dir, sha: repo.sha },
            repoName: 'demo',
            log,
            signal,
            defaultTimeoutMinutes: 10,
            services: jobServices,
          });
        } finally {
          log.close();
          await jobServices.close();
          logs[job.instance.key] = await readFile(log.path, 'utf8');
        }
      },
      { maxParallel: 1, contexts: { github } },
    );
    for (const [key, result] of results) expect(result.conclusion, `${key}:\n${logs[key]}`).toBe('success');
    expect(logs.produce).toMatch(/saved cache \d+/);
    expect(logs.produce).toContain('uploaded artifact of');
    const listed = services.artifacts({ forge: 'local', repo: 'octo/demo', runId: github.run_id });
    expect(listed.map((a) => a.name)).toEqual(['report']);
  });
});
