/**
 * `uses:` steps in the step executor, on this host (LocalGuest, the host's Node.js): JavaScript
 * actions with their pre/main/post stages, inputs, state and outputs; composite actions with
 * their own scope; secrets masked. The actions are small scripts written here; the runtime hands
 * them over as an already-loaded action (loading is tested with the loader).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ActionManifest } from '../src/actions/manifest.ts';
import type { ActionRuntime, LoadedAction } from '../src/job/action-runtime.ts';
import { runSteps, type StepsOutcome } from '../src/job/steps.ts';
import { JobLog } from '../src/log/job-log.ts';
import { LocalGuest } from './support/local-guest.ts';
import { githubContext, instanceOf, jobDef, step, workflowOf, type StepSpec } from './support/job-model.ts';

let root: string;
let actions: Record<string, LoadedAction>;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'forgevm-actions-'));
  mkdirSync(join(root, 'work', 'demo'), { recursive: true });
  actions = {};
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A JavaScript action: each stage is a small script (CommonJS) written to the action folder. */
function jsAction(uses: string, stages: { main: string; pre?: string; post?: string }, extra: Partial<ActionManifest> & { preIf?: string; postIf?: string } = {}): void {
  const dir = join(root, 'actions', uses.replace(/[^A-Za-z0-9]+/g, '_'));
  mkdirSync(dir, { recursive: true });
  const prelude = "const fs = require('fs'); const out = (k, v) => fs.appendFileSync(process.env.GITHUB_OUTPUT, `${k}=${v}\\n`); const state = (k, v) => fs.appendFileSync(process.env.GITHUB_STATE, `${k}=${v}\\n`);\n";
  for (const [stage, code] of Object.entries(stages)) if (code !== undefined) writeFileSync(join(dir, `${stage}.js`), prelude + code);
  const { preIf, postIf, ...rest } = extra;
  actions[uses] = {
    dir,
    ...(uses.startsWith('./') ? {} : { repository: uses.split('@')[0], ref: uses.split('@')[1] }),
    definition: {
      file: `${uses}/action.yml`,
      name: uses,
      inputs: {},
      outputs: {},
      ...rest,
      runs: {
        using: 'node20',
        main: 'main.js',
        ...(stages.pre !== undefined ? { pre: 'pre.js' } : {}),
        ...(stages.post !== undefined ? { post: 'post.js' } : {}),
        preIf: preIf ?? 'always()',
        postIf: postIf ?? 'always()',
      },
    },
  };
}

function compositeAction(uses: string, steps: StepSpec[], extra: Partial<ActionManifest> = {}): void {
  const dir = join(root, 'actions', uses.replace(/[^A-Za-z0-9]+/g, '_'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'data.txt'), 'from the action folder\n');
  actions[uses] = {
    dir,
    definition: { file: `${uses}/action.yml`, name: uses, inputs: {}, outputs: {}, ...extra, runs: { using: 'composite', steps: steps.map((s, i) => step(s, i)) } },
  };
}

const runtime = (): ActionRuntime => ({
  load: async (uses) => {
    const action = actions[uses];
    if (!action) throw new Error(`unknown action ${uses}`);
    return action;
  },
  node: async () => process.execPath,
  serviceEnv: () => ({ ACTIONS_CACHE_URL: 'http://127.0.0.1:1/', ACTIONS_RUNTIME_TOKEN: 'job-token' }),
});

async function run(steps: StepSpec[], secrets: Record<string, string> = {}): Promise<{ outcome: StepsOutcome; log: string }> {
  const job = jobDef({ steps });
  const log = new JobLog(join(root, 'job.log'), 1_000_000);
  try {
    const outcome = await runSteps(
      new LocalGuest(root, { termAfterMs: 200, killAfterMs: 200 }),
      log,
      {
        instance: instanceOf(job, workflowOf([job]), { node: 20 }),
        github: githubContext(),
        needs: {},
        inputs: {},
        vars: {},
        secrets,
        workspace: join(root, 'work', 'demo'),
        tempDir: join(root, 'temp'),
        defaultTimeoutMinutes: 5,
        actions: runtime(),
      },
      new AbortController().signal,
    );
    return { outcome, log: readFileSync(join(root, 'job.log'), 'utf8') };
  } finally {
    log.close();
  }
}

/** The lines a test's actions print with `say`, in order. */
const said = (log: string) => log.split('\n').filter((l) => l.startsWith('> ')).map((l) => l.slice(2));

describe('JavaScript actions', () => {
  it('gets with: (evaluated) over action.yml defaults (expressions too) as INPUT_* named like the runner', async () => {
    jsAction(
      'octo/inputs@v1',
      { main: "for (const k of ['INPUT_GREETING', 'INPUT_WHO_IS_IT', 'INPUT_DRY-RUN', 'INPUT_REPO']) console.log('> ' + k + '=' + process.env[k]);" },
      {
        inputs: {
          greeting: { required: true },
          'who is it': { required: false, default: 'nobody' },
          'dry-run': { required: false, default: 'false' },
          repo: { required: false, default: '${{ github.repository }}' },
        },
      },
    );
    const { outcome, log } = await run([{ uses: 'octo/inputs@v1', with: { Greeting: 'hi ${{ matrix.node }}', 'who is it': 'me' } }]);
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['INPUT_GREETING=hi 20', 'INPUT_WHO_IS_IT=me', 'INPUT_DRY-RUN=false', 'INPUT_REPO=octo/demo']);
  });

  it('warns about unexpected and missing required inputs, as the runner does', async () => {
    jsAction('octo/strict@v1', { main: '' }, { inputs: { token: { required: true } } });
    const { log } = await run([{ uses: 'octo/strict@v1', with: { tokn: 'x' } }]);
    expect(log).toContain('unexpected input(s) "tokn" for octo/strict@v1; valid inputs are "token"');
    expect(log).toContain('input required and not supplied: token');
  });

  it('runs every pre first in step order, main stages in place, posts last in reverse order, with state carried over', async () => {
    for (const name of ['a', 'b']) {
      jsAction(`octo/${name}@v1`, {
        pre: `console.log('> pre ${name}'); state('from_pre', '${name}-pre');`,
        // Names as @actions/core users write them: a hyphen is fine, a space cannot be passed.
        main: `console.log('> main ${name} sees ' + process.env.STATE_from_pre); state('from-main', '${name}-main'); state('has space', 'x'); out('x', '${name}');`,
        post: `console.log('> post ${name} sees ' + process.env.STATE_from_pre + ' ' + process.env['STATE_from-main']);`,
      });
    }
    const { outcome, log } = await run([
      { uses: 'octo/a@v1', id: 'a' },
      { run: 'echo "> run sees ${{ steps.a.outputs.x }}"' },
      { uses: 'octo/b@v1' },
    ]);
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['pre a', 'pre b', 'main a sees a-pre', 'run sees a', 'main b sees b-pre', 'post b sees b-pre b-main', 'post a sees a-pre a-main']);
    expect(log).toContain('⚠ state "has space" saved by');
    expect(outcome.steps.map((s) => s.name)).toEqual([
      'Pre Run octo/a@v1',
      'Pre Run octo/b@v1',
      'Run octo/a@v1',
      'echo "> run sees ${{ steps.a.outputs.x }}"',
      'Run octo/b@v1',
      'Post Run octo/b@v1',
      'Post Run octo/a@v1',
    ]);
  });

  it('runs post after a failure (post-if defaults to always()), skips it by post-if, and a failing post fails the job', async () => {
    jsAction('octo/cleanup@v1', { main: '', post: "console.log('> cleanup ran')" });
    jsAction('octo/only-on-success@v1', { main: '', post: "console.log('> should not run')" }, { postIf: 'success()' });
    const failed = await run([{ uses: 'octo/cleanup@v1' }, { uses: 'octo/only-on-success@v1' }, { run: 'exit 3' }]);
    expect(failed.outcome.conclusion).toBe('failure');
    expect(said(failed.log)).toEqual(['cleanup ran']);
    expect(failed.outcome.steps.at(-2)).toMatchObject({ name: 'Post Run octo/only-on-success@v1', outcome: 'skipped' });

    jsAction('octo/bad-post@v1', { main: '', post: 'process.exit(5)' });
    const badPost = await run([{ uses: 'octo/bad-post@v1' }, { run: 'true' }]);
    expect(badPost.outcome.steps.map((s) => s.outcome)).toEqual(['success', 'success', 'failure']);
    expect(badPost.outcome.conclusion).toBe('failure');
  });

  it('skips pre by pre-if, and never runs pre for local actions (GitHub cannot know them before the step)', async () => {
    jsAction('octo/no-pre@v1', { pre: "console.log('> pre ran')", main: "console.log('> main ran')" }, { preIf: 'false' });
    jsAction('./local-js', { pre: "console.log('> local pre ran')", main: "console.log('> local main ran')" });
    const { outcome, log } = await run([{ uses: 'octo/no-pre@v1' }, { uses: './local-js' }]);
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['main ran', 'local main ran']);
    expect(outcome.steps[0]).toMatchObject({ name: 'Pre Run octo/no-pre@v1', outcome: 'skipped' });
  });

  it('gives actions the services env and GITHUB_ACTION_* names, and run: steps neither', async () => {
    jsAction('octo/env@v2', { main: "console.log('> ' + [process.env.ACTIONS_CACHE_URL, process.env.GITHUB_ACTION_REPOSITORY, process.env.GITHUB_ACTION_REF, process.env.GITHUB_ACTION_PATH ? 'path' : 'none'].join(' '))" });
    const { log } = await run([{ uses: 'octo/env@v2' }, { run: 'echo "> run ${ACTIONS_CACHE_URL:-none} ${ACTIONS_RUNTIME_TOKEN:-none}"' }]);
    expect(said(log)).toEqual(['http://127.0.0.1:1/ octo/env v2 path', 'run none none']);
  });

  it('acts on workflow commands from the action: outputs, annotations, masks', async () => {
    jsAction('octo/commands@v1', {
      main: "console.log('::add-mask::s3cr3t'); console.log('value s3cr3t'); console.log('::error file=src/a.ts,line=2::broken s3cr3t'); console.log('::set-output name=legacy::yes');",
    });
    const { outcome, log } = await run([{ uses: 'octo/commands@v1', id: 'c' }, { run: 'echo "> ${{ steps.c.outputs.legacy }}"' }]);
    expect(outcome.conclusion, log).toBe('success');
    expect(log).not.toContain('s3cr3t');
    expect(log).toContain('value ***');
    expect(said(log)).toEqual(['yes']);
    expect(outcome.annotations).toEqual([{ level: 'failure', message: 'broken ***', file: 'src/a.ts', line: 2 }]);
  });

  it('fails a Docker container action clearly', async () => {
    actions['octo/docker@v1'] = { dir: join(root, 'x'), definition: { file: 'action.yml', name: 'docker thing', inputs: {}, outputs: {}, runs: { using: 'docker', image: 'Dockerfile' } } };
    const { outcome, log } = await run([{ uses: 'octo/docker@v1' }]);
    expect(outcome.conclusion).toBe('failure');
    expect(log).toContain('is a Docker container action, which forgevm does not run');
  });
});

describe('composite actions', () => {
  it('run their steps in a scope of their own: inputs, step outputs, action path, env, and outputs back', async () => {
    compositeAction(
      './greet',
      [
        { id: 'make', run: 'echo "word=${{ inputs.who }}-$LEVEL" >> "$GITHUB_OUTPUT"', shell: 'bash' },
        { run: 'echo "> ${{ steps.make.outputs.word }} $(cat "$GITHUB_ACTION_PATH/data.txt") ${{ github.action_path != \'\' }}"', shell: 'bash' },
        { run: 'echo "> never"', shell: 'bash', if: "inputs.who == 'nobody'" },
        { run: 'echo "FROM_COMPOSITE=set" >> "$GITHUB_ENV"', shell: 'bash' },
      ],
      { inputs: { who: { required: false, default: 'world' } }, outputs: { greeting: { value: 'hello ${{ steps.make.outputs.word }}' } } },
    );
    const { outcome, log } = await run([
      { uses: './greet', id: 'g', env: { LEVEL: 'step' } },
      { run: 'echo "> ${{ steps.g.outputs.greeting }} $FROM_COMPOSITE ${{ steps.make.outputs.word }}"' },
    ]);
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['world-step from the action folder true', 'hello world-step set ']);
    expect(outcome.steps).toHaveLength(2);
  });

  it('fail when a nested step fails, skip the rest of their steps, and nest other actions with their posts', async () => {
    jsAction('octo/inner@v1', { main: "console.log('> inner main')", post: "console.log('> inner post')" });
    compositeAction('./outer', [
      { uses: 'octo/inner@v1' },
      { run: 'exit 4', shell: 'bash' },
      { run: 'echo "> not reached"', shell: 'bash' },
      { run: 'echo "> composite cleanup"', shell: 'bash', if: 'failure()' },
    ]);
    const { outcome, log } = await run([{ uses: './outer' }, { run: 'echo "> job continues"' }, { run: 'echo "> job cleanup"', if: 'always()' }]);
    expect(outcome.conclusion).toBe('failure');
    expect(said(log)).toEqual(['inner main', 'composite cleanup', 'job cleanup', 'inner post']);
    expect(outcome.steps.map((s) => s.outcome)).toEqual(['failure', 'skipped', 'success', 'success']);
  });

  it('do not see secrets, which stay masked everywhere', async () => {
    compositeAction('./peek', [{ run: 'echo "> composite sees [${{ secrets.TOKEN }}]"', shell: 'bash' }]);
    const { outcome, log } = await run([{ uses: './peek' }, { run: 'echo "> job sees ${{ secrets.TOKEN }}"' }], { TOKEN: 'tok-123456' });
    expect(outcome.conclusion, log).toBe('success');
    expect(said(log)).toEqual(['composite sees []', 'job sees ***']);
    expect(log).not.toContain('tok-123456');
  });

  it('stop at ten levels of nesting', async () => {
    compositeAction('./loop', [{ uses: './loop' }]);
    const { outcome, log } = await run([{ uses: './loop' }]);
    expect(outcome.conclusion).toBe('failure');
    expect(log).toContain('composite actions nest deeper than 10 levels');
  });
});
