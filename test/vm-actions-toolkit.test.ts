/**
 * @actions/core, the toolkit nearly every JavaScript action is written with, bundled into local
 * actions as actions bundle it (1.x, what most published actions carry, and 3.x, the newest) and
 * run by Node in a real tiny VM: inputs as the toolkit reads them, outputs and environment
 * through the file commands, PATH, state from main to post, masking, groups, annotations with
 * their file and line, the job summary, and setFailed. And @actions/github's `context`, which
 * actions read the run from.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../src/job/result.ts';
import { runPlannedJob } from '../src/job/run-planned-job.ts';
import { JobLog } from '../src/log/job-log.ts';
import { parseWorkflow } from '../src/workflow/parse.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { bundleAction } from './support/bundle-action.ts';
import { gitRepo } from './support/forgevm-cli.ts';
import { testGithub } from './support/job-fixture.ts';
import { vmHarness, type VmHarness } from './support/vm-harness.ts';

const VERSIONS = { v1: 'actions-core-1', v3: 'actions-core-3' } as const;

const mainSource = (tag: string, module: string) => `
import * as core from '${module}';
(async () => {
  const who = core.getInput('who-name', { required: true });
  const loud = core.getBooleanInput('loud');
  const items = core.getMultilineInput('items');
  core.saveState('from-main', 'main saved ${tag} for ' + who);
  core.setSecret('tk-s3cr3t-${tag}');
  core.info('the token is tk-s3cr3t-${tag}');
  core.setOutput('greeting', 'hello ' + who + (loud ? '!' : '') + '\\nitems: ' + items.join(','));
  core.exportVariable('FROM_ACTION_${tag}', 'line one\\nline two');
  core.addPath('/opt/from-action-${tag}/bin');
  core.startGroup('details ${tag}');
  core.info('inside the group ${tag}');
  core.endGroup();
  core.notice('a notice from ${tag}', { file: 'src/app.js', startLine: 3 });
  core.warning('careful ${tag}', { file: 'src/app.js', startLine: 7, endLine: 8, title: 'Lint ${tag}' });
  await core.summary.addHeading('Toolkit report ${tag}').addTable([[{ data: 'check', header: true }, { data: 'result', header: true }], ['greeting', 'ok']]).write();
  if (core.getInput('fail') === 'true') core.setFailed('failed on purpose ${tag}');
})();
`;

const postSource = (module: string) => `
import * as core from '${module}';
core.info('post sees: ' + core.getState('from-main'));
`;

const CONTEXT_SOURCE = `
import * as core from 'actions-core-1';
import { context } from 'actions-github-6';
core.setOutput('context', JSON.stringify({
  eventName: context.eventName, sha: context.sha, ref: context.ref, workflow: context.workflow, action: context.action,
  actor: context.actor, job: context.job, runNumber: context.runNumber, runId: context.runId, apiUrl: context.apiUrl,
  serverUrl: context.serverUrl, graphqlUrl: context.graphqlUrl, repo: context.repo, payload: context.payload,
}));
`;

const ACTION_YML = `name: toolkit
inputs:
  who-name: { required: true }
  loud: { default: 'false' }
  items: { default: '' }
  fail: { default: 'false' }
outputs:
  greeting: { description: the greeting }
runs:
  using: node24
  main: dist/main.js
  post: dist/post.js
  post-if: always()
`;

const WORKFLOW = `on: push
jobs:
  toolkit:
    runs-on: tiny
    outputs:
      context: \${{ steps.context.outputs.context }}
    steps:
      - uses: ./.github/actions/toolkit-v1
        id: v1
        with:
          who-name: Mona
          loud: true
          items: |
            a
            b
      - uses: ./.github/actions/toolkit-v3
        id: v3
        with: { who-name: Hubot, loud: false, items: c }
      - name: Check what the actions left
        run: |
          test "\${{ steps.v1.outputs.greeting }}" = "$(printf 'hello Mona!\\nitems: a,b')"
          test "\${{ steps.v3.outputs.greeting }}" = "$(printf 'hello Hubot\\nitems: c')"
          test "$FROM_ACTION_v1" = "$(printf 'line one\\nline two')"
          test "$FROM_ACTION_v3" = "$(printf 'line one\\nline two')"
          case ":$PATH:" in *:/opt/from-action-v1/bin:*) ;; *) echo "no v1 entry in $PATH"; exit 1 ;; esac
          case ":$PATH:" in *:/opt/from-action-v3/bin:*) ;; *) echo "no v3 entry in $PATH"; exit 1 ;; esac
          echo "checked"
      - uses: ./.github/actions/toolkit-v3
        id: failing
        continue-on-error: true
        with: { who-name: Nobody, fail: 'true' }
      - run: test "\${{ steps.failing.outcome }}" = failure
      - uses: ./.github/actions/context
        id: context
`;

let vm: VmHarness;
let repo: { dir: string; sha: string };

beforeAll(async () => {
  vm = await vmHarness();
  const files: Record<string, string> = { '.forgevm/workflows/toolkit.yml': WORKFLOW };
  for (const [tag, module] of Object.entries(VERSIONS)) {
    files[`.github/actions/toolkit-${tag}/action.yml`] = ACTION_YML;
    files[`.github/actions/toolkit-${tag}/dist/main.js`] = await bundleAction(mainSource(tag, module));
    files[`.github/actions/toolkit-${tag}/dist/post.js`] = await bundleAction(postSource(module));
  }
  files['.github/actions/context/action.yml'] = 'name: context\noutputs:\n  context: { description: the run as @actions/github sees it }\nruns:\n  using: node24\n  main: index.js\n';
  files['.github/actions/context/index.js'] = await bundleAction(CONTEXT_SOURCE);
  repo = await gitRepo(files);
});

afterAll(async () => {
  for (const dir of [repo?.dir, vm?.stateRoot]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a JavaScript action written with @actions/core, in a VM', () => {
  it('gets its inputs, and its outputs, environment, PATH, state, masks, annotations and summary reach the job', async () => {
    const { workflow } = parseWorkflow('.forgevm/workflows/toolkit.yml', WORKFLOW);
    const github = testGithub(repo.sha);
    const [planned] = planWorkflows({ name: 'push', ref: github.ref, sha: repo.sha, payload: {} }, [workflow!], undefined, github);
    const job = planned!.jobs[0]!;
    const log = new JobLog(join(vm.stateRoot, 'toolkit.log'), 50 * 1024 * 1024);
    let result: JobResult;
    try {
      result = await runPlannedJob(vm.engine, {
        id: 'toolkit',
        job,
        needs: {},
        github,
        workspace: { repoDir: repo.dir, sha: repo.sha },
        repoName: 'demo',
        log,
        signal: new AbortController().signal,
        defaultTimeoutMinutes: 10,
      });
    } finally {
      log.close();
    }
    const text = await readFile(log.path, 'utf8');
    expect(result.conclusion, text).toBe('success');
    const failing = result.steps.find((s) => s.id === 'failing')!;
    expect([failing.outcome, failing.conclusion]).toEqual(['failure', 'success']);
    expect(text).toContain('checked');

    for (const tag of ['v1', 'v3']) {
      expect(text).toContain(`the token is ***`);
      expect(text).not.toContain(`tk-s3cr3t-${tag}`);
      expect(text).toContain(`inside the group ${tag}`);
      expect(result.summary).toContain(`<h1>Toolkit report ${tag}</h1>`);
      expect(result.annotations).toContainEqual(expect.objectContaining({ level: 'notice', message: `a notice from ${tag}`, file: 'src/app.js', line: 3 }));
      expect(result.annotations).toContainEqual(expect.objectContaining({ level: 'warning', message: `careful ${tag}`, title: `Lint ${tag}`, file: 'src/app.js', line: 7, endLine: 8 }));
    }
    expect(result.summary).toContain('<th>check</th>');
    expect(result.annotations).toContainEqual(expect.objectContaining({ level: 'failure', message: 'failed on purpose v3' }));
    expect(JSON.parse(result.outputs.context ?? '{}')).toEqual({
      eventName: 'push',
      sha: repo.sha,
      ref: 'refs/heads/main',
      workflow: github.workflow,
      action: 'context',
      actor: github.actor,
      job: 'toolkit',
      runNumber: 1,
      runId: Number(github.run_id),
      apiUrl: 'https://api.github.com',
      serverUrl: 'https://github.com',
      graphqlUrl: 'https://api.github.com/graphql',
      repo: { owner: 'local', repo: 'repo' },
      payload: {},
    });
    // Posts run last first, each with the state its own main saved.
    const posts = [...text.matchAll(/post sees: (.*)/g)].map((m) => m[1]);
    expect(posts).toEqual(['main saved v3 for Nobody', 'main saved v3 for Hubot', 'main saved v1 for Mona']);
  });
});
