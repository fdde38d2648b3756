/**
 * Actions as a job gets them: a remote `owner/repo@tag` fetched from a real git host and copied
 * into the guest, a local `./path` read from the workspace, both run by the real step executor
 * on this host (LocalGuest, the host's Node.js); broken ones fail with one clear line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionFetcher } from '../src/actions/fetch.ts';
import { actionLoader } from '../src/job/action-loader.ts';
import { runSteps, type StepsOutcome } from '../src/job/steps.ts';
import { JobLog } from '../src/log/job-log.ts';
import { startActionsHost, type ActionsHost } from './support/actions-host.ts';
import { LocalGuest } from './support/local-guest.ts';
import { githubContext, instanceOf, jobDef, workflowOf, type StepSpec } from './support/job-model.ts';

let host: ActionsHost;
let root: string;

const JS_ACTION = `name: Hello
inputs:
  who:
    default: \${{ github.actor }}
outputs:
  greeting:
    description: what it said
runs:
  using: node24
  pre: pre.js
  main: dist/main.js
  post: post.js
`;

beforeAll(async () => {
  host = await startActionsHost();
  const sha = host.repos.commit('acme/hello', 'main', {
    'action.yml': JS_ACTION,
    'pre.js': "require('fs').appendFileSync(process.env.GITHUB_STATE, 'started=yes\\n'); console.log('> pre');\n",
    'dist/main.js':
      "const fs = require('fs'); const g = 'hello ' + process.env.INPUT_WHO; console.log('> ' + g + ' ' + process.env.STATE_started + ' ' + require('./helper.js')); fs.appendFileSync(process.env.GITHUB_OUTPUT, 'greeting=' + g + '\\n');\n",
    'dist/helper.js': "module.exports = 'with its own files';\n",
    'post.js': "console.log('> post ' + process.env.STATE_started);\n",
    'composite/action.yml': 'name: Twice\nruns:\n  using: composite\n  steps:\n    - uses: acme/hello@v1\n      with: { who: nested }\n    - run: echo "> composite done"\n      shell: bash\n',
  });
  execFileSync('git', ['tag', 'v1', sha], { cwd: host.repos.bareDir('acme/hello') });
  host.repos.commit('acme/broken', 'main', { 'action.yml': 'name: Broken\nruns:\n  using: node99\n  main: x.js\n' });
  execFileSync('git', ['tag', 'v1', 'main'], { cwd: host.repos.bareDir('acme/broken') });
  root = mkdtempSync(join(tmpdir(), 'forgevm-loader-'));
});
afterAll(async () => {
  await host.stop();
  rmSync(root, { recursive: true, force: true });
});

async function run(name: string, steps: StepSpec[], files: Record<string, string> = {}): Promise<{ outcome: StepsOutcome; log: string }> {
  const dir = join(root, name);
  const workspace = join(dir, 'work', 'demo');
  mkdirSync(workspace, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(workspace, path, '..'), { recursive: true });
    writeFileSync(join(workspace, path), text);
  }
  const guest = new LocalGuest(dir, { termAfterMs: 200, killAfterMs: 200 });
  const job = jobDef({ steps });
  const log = new JobLog(join(dir, 'job.log'), 1_000_000);
  try {
    const outcome = await runSteps(
      guest,
      log,
      {
        instance: instanceOf(job, workflowOf([job])),
        github: githubContext(),
        needs: {},
        inputs: {},
        vars: {},
        workspace,
        tempDir: join(dir, 'temp'),
        defaultTimeoutMinutes: 5,
        actions: actionLoader({
          guest,
          workspace,
          actionsDir: join(dir, 'temp', '_actions'),
          fetcher: new ActionFetcher({ cacheRoot: join(root, 'cache'), actionsUrl: host.url }),
          node: async () => process.execPath,
          log: (line) => log.meta(line),
        }),
      },
      new AbortController().signal,
    );
    return { outcome, log: readFileSync(join(dir, 'job.log'), 'utf8') };
  } finally {
    log.close();
  }
}

const said = (log: string) => log.split('\n').filter((l) => l.startsWith('> ')).map((l) => l.slice(2));

describe('actions a job uses', () => {
  it('fetches owner/repo@tag, copies the whole tree into the guest, and runs pre, main and post with an input default', async () => {
    const { outcome, log } = await run('remote', [{ uses: 'acme/hello@v1', id: 'hi' }, { run: 'echo "> ${{ steps.hi.outputs.greeting }}"' }]);
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['pre', 'hello octocat yes with its own files', 'hello octocat', 'post yes']);
    expect(log).toMatch(/acme\/hello@v1 is acme\/hello@[0-9a-f]{12}/);
  });

  it('runs a remote composite action whose steps use another remote action, fetched at set-up', async () => {
    const { outcome, log } = await run('composite', [{ uses: 'acme/hello/composite@v1' }]);
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['pre', 'hello nested yes with its own files', 'composite done', 'post yes']);
  });

  it('reads a local action from the workspace when its step runs', async () => {
    const { outcome, log } = await run('local', [{ uses: './.github/actions/local', with: { n: '3' } }], {
      '.github/actions/local/action.yml': 'name: Local\ninputs:\n  n: { required: true }\nruns:\n  using: node20\n  main: index.js\n',
      '.github/actions/local/index.js': "console.log('> local ' + process.env.INPUT_N);\n",
    });
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['local 3']);
  });

  it('fails clearly: unknown tag at set-up, invalid metadata, a missing local action, a Docker action', async () => {
    const unknown = await run('unknown', [{ uses: 'acme/hello@v9' }]);
    expect(unknown.outcome.conclusion).toBe('failure');
    expect(unknown.outcome.error).toMatch(/acme\/hello@v9/);

    const broken = await run('broken', [{ uses: 'acme/broken@v1' }]);
    expect(broken.outcome.error).toMatch(/acme\/broken@v1: invalid action metadata: .*action\.yml:3:\d+: .*node99/);

    const missing = await run('missing', [{ uses: './nowhere', continueOnError: true }, { uses: './docker' }], { 'docker/Dockerfile': 'FROM scratch\n' });
    expect(missing.log).toContain('./nowhere: no action.yml or action.yaml in');
    expect(missing.log).toContain('./docker is a Docker container action');
    expect(missing.outcome.steps.map((s) => s.outcome)).toEqual(['failure', 'failure']);
  });
});
