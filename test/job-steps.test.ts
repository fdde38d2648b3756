import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSteps, type StepsInput, type StepsOutcome } from '../src/job/steps.ts';
import { graphqlUrl } from '../src/job/runner-env.ts';
import { JobLog } from '../src/log/job-log.ts';
import type { JobDef, Workflow } from '../src/workflow/model.ts';
import { LocalGuest } from './support/local-guest.ts';
import { githubContext, instanceOf, jobDef, workflowOf, type JobSpec } from './support/job-model.ts';

let root: string;
let guest: LocalGuest;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'forgevm-steps-'));
  await mkdir(join(root, 'work', 'demo'), { recursive: true });
  guest = new LocalGuest(root, { termAfterMs: 300, killAfterMs: 300 });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

interface Ran {
  outcome: StepsOutcome;
  log: string;
}

async function run(spec: JobSpec | JobDef, opts: { workflow?: Partial<Workflow>; signal?: AbortSignal; capBytes?: number; input?: Partial<StepsInput> } = {}): Promise<Ran> {
  const job = 'pos' in spec && 'steps' in spec && Array.isArray(spec.steps) && spec.steps.every((s) => 'index' in s) ? (spec as JobDef) : jobDef(spec as JobSpec);
  const workflow = workflowOf([job], opts.workflow);
  const logPath = join(root, 'job.log');
  const log = new JobLog(logPath, opts.capBytes ?? 1_000_000);
  try {
    const outcome = await runSteps(
      guest,
      log,
      {
        instance: instanceOf(job, workflow, { node: 20 }),
        github: githubContext(),
        needs: { prep: { result: 'success', outputs: { version: '1.2.3' } } },
        inputs: {},
        vars: { GREETING: 'hi' },
        workspace: join(root, 'work', 'demo'),
        tempDir: join(root, 'temp'),
        defaultTimeoutMinutes: 360,
        ...opts.input,
      },
      opts.signal ?? new AbortController().signal,
    );
    return { outcome, log: readFileSync(logPath, 'utf8') };
  } finally {
    log.close();
  }
}

describe('environment', () => {
  it('layers workflow < job < step env, evaluates each level, and keeps GITHUB_* fixed', async () => {
    const { outcome, log } = await run(
      {
        env: { LEVEL: 'job', JOB_ONLY: 'node ${{ matrix.node }} after ${{ needs.prep.outputs.version }}', CI: 'overridden' },
        steps: [
          {
            env: { LEVEL: 'step', FROM_ENV: '${{ env.JOB_ONLY }}', GITHUB_SHA: 'spoofed' },
            run: [
              'test "$LEVEL" = step',
              'test "$WF_ONLY" = "wf main hi"',
              'test "$JOB_ONLY" = "node 20 after 1.2.3"',
              'test "$FROM_ENV" = "node 20 after 1.2.3"',
              'test "$CI" = overridden',
              'test "$GITHUB_SHA" = 0123456789abcdef0123456789abcdef01234567',
              'test "$GITHUB_ACTIONS" = true && test "$FORGEVM" = true',
              'test "$GITHUB_WORKSPACE" = "$PWD"',
              'test "$GITHUB_REPOSITORY" = octo/demo && test "$GITHUB_REPOSITORY_OWNER" = octo',
              'test "$GITHUB_REF_NAME" = main && test "$GITHUB_REF_TYPE" = branch',
              'test "$GITHUB_JOB" = build && test "$GITHUB_RUN_ID" = 42 && test "$GITHUB_RUN_NUMBER" = 7',
              'test "$RUNNER_OS" = Linux && test "$RUNNER_ARCH" = X64 && test -d "$RUNNER_TEMP"',
              'test "$GITHUB_WORKFLOW_SHA" = "$GITHUB_SHA" && test "$GITHUB_GRAPHQL_URL" = https://api.github.com/graphql',
              'test "$(cat "$GITHUB_EVENT_PATH")" = \'{"ref":"refs/heads/main","head_commit":{"message":"hello \\"world\\"; $(rm -rf /)"}}\'',
              'for f in "$GITHUB_ENV" "$GITHUB_OUTPUT" "$GITHUB_PATH" "$GITHUB_STEP_SUMMARY"; do test -f "$f"; done',
              'echo all-env-ok',
            ].join('\n'),
          },
        ],
      },
      { workflow: { env: { LEVEL: 'workflow', WF_ONLY: 'wf ${{ github.ref_name }} ${{ vars.GREETING }}' } } },
    );
    expect(log).toContain('all-env-ok');
    expect(outcome.conclusion).toBe('success');
  });

  it('names the GraphQL endpoint beside GitHub\'s and GitHub Enterprise\'s REST API, and none for Forgejo', () => {
    expect(graphqlUrl('https://api.github.com')).toBe('https://api.github.com/graphql');
    expect(graphqlUrl('https://ghe.example.com/api/v3/')).toBe('https://ghe.example.com/api/graphql');
    expect(graphqlUrl('https://codeberg.org/api/v1')).toBe('');
  });

  it('passes env as data: values with quotes and $() reach the script unchanged', async () => {
    const { outcome } = await run({
      steps: [{ env: { MSG: '${{ github.event.head_commit.message }}' }, run: 'test "$MSG" = \'hello "world"; $(rm -rf /)\'' }],
    });
    expect(outcome.conclusion).toBe('success');
  });

  it('applies GITHUB_ENV (one-line and multi-line) and GITHUB_PATH to later steps and the env context', async () => {
    const { outcome, log } = await run({
      env: { OVERRIDE_ME: 'job' },
      steps: [
        {
          run: [
            'echo "SIMPLE=a=b c" >> "$GITHUB_ENV"',
            'printf "MULTI<<EOF_1\\nline one\\nline two\\nEOF_1\\n" >> "$GITHUB_ENV"',
            'echo "OVERRIDE_ME=from-file" >> "$GITHUB_ENV"',
            'mkdir -p "$RUNNER_TEMP/bin1" "$RUNNER_TEMP/bin2"',
            'printf "#!/bin/sh\\necho tool1\\n" > "$RUNNER_TEMP/bin1/mytool"; chmod +x "$RUNNER_TEMP/bin1/mytool"',
            'printf "#!/bin/sh\\necho tool2\\n" > "$RUNNER_TEMP/bin2/mytool"; chmod +x "$RUNNER_TEMP/bin2/mytool"',
            'echo "$RUNNER_TEMP/bin1" >> "$GITHUB_PATH"',
            'echo "$RUNNER_TEMP/bin2" >> "$GITHUB_PATH"',
          ].join('\n'),
        },
        {
          env: { FROM_CONTEXT: '${{ env.SIMPLE }}|${{ env.OVERRIDE_ME }}' },
          run: [
            'test "$SIMPLE" = "a=b c"',
            'test "$MULTI" = "$(printf "line one\\nline two")"',
            'test "$OVERRIDE_ME" = from-file',
            'test "$FROM_CONTEXT" = "a=b c|from-file"',
            'test "$(mytool)" = tool2', // the last GITHUB_PATH entry comes first
            'case "$PATH" in *"$RUNNER_TEMP/bin2:$RUNNER_TEMP/bin1:"*) ;; *) exit 3;; esac',
            'command -v sh >/dev/null', // the base PATH is still there
            'echo env-files-ok',
          ].join('\n'),
        },
      ],
    });
    expect(log).toContain('env-files-ok');
    expect(outcome.conclusion).toBe('success');
  });

  it('fails the step clearly when a multi-line value has no closing delimiter', async () => {
    const { outcome, log } = await run({
      steps: [{ id: 'bad', run: 'printf "BROKEN<<END\\nvalue\\n" >> "$GITHUB_ENV"' }, { run: 'echo should-not-run' }],
    });
    expect(outcome.steps[0]).toMatchObject({ outcome: 'failure', conclusion: 'failure', exitCode: 0 });
    expect(outcome.steps[1]?.conclusion).toBe('skipped');
    expect(log).toMatch(/GITHUB_ENV: the value of BROKEN never ends: no line matching the delimiter "END"/);
    expect(log).not.toContain('should-not-run\n');
    expect(outcome.conclusion).toBe('failure');
  });
});

describe('errors', () => {
  it('fails the job with one line when job env cannot be evaluated', async () => {
    const { outcome } = await run({ env: { BAD: "${{ fromJSON('{') }}" }, steps: [{ run: 'true' }] });
    expect(outcome.conclusion).toBe('failure');
    expect(outcome.steps).toEqual([]);
    expect(outcome.error).toMatch(/^jobs\.build\.env\.BAD: evaluating/);
  });

  it('rejects an invalid name written to GITHUB_ENV', async () => {
    const { outcome, log } = await run({ steps: [{ run: 'echo "1BAD=x" >> "$GITHUB_ENV"' }] });
    expect(outcome.conclusion).toBe('failure');
    expect(log).toContain('GITHUB_ENV: "1BAD" is not a valid environment variable name');
  });

  it('fails the step, not the whole executor, when the guest connection breaks', async () => {
    const exec = guest.exec.bind(guest);
    guest.exec = async (argv, options) => {
      if (argv.some((a) => a.endsWith('.sh'))) throw new Error('SSH connection lost');
      return exec(argv, options);
    };
    const { outcome, log } = await run({ steps: [{ run: 'true' }, { if: 'always()', run: 'true' }] });
    expect(outcome.steps.map((s) => s.conclusion)).toEqual(['failure', 'failure']);
    expect(log).toContain('✘ true: SSH connection lost');
  });
});

describe('outputs', () => {
  it('exposes GITHUB_OUTPUT as steps.<id>.outputs and evaluates job outputs at the end', async () => {
    const { outcome } = await run({
      outputs: { version: '${{ steps.make.outputs.version }}', notes: '${{ steps.make.outputs.notes }}', state: '${{ steps.make.outcome }}' },
      steps: [
        { id: 'make', run: 'echo "version=2.0.1" >> "$GITHUB_OUTPUT"\nprintf "notes<<X\\nfirst\\nsecond\\nX\\n" >> "$GITHUB_OUTPUT"' },
        { env: { V: '${{ steps.make.outputs.version }}' }, run: 'test "$V" = 2.0.1\ntest "${{ steps.make.conclusion }}" = success' },
      ],
    });
    expect(outcome.conclusion).toBe('success');
    expect(outcome.outputs).toEqual({ version: '2.0.1', notes: 'first\nsecond', state: 'success' });
  });

  it('collects GITHUB_STEP_SUMMARY into the job summary', async () => {
    const { outcome } = await run({ steps: [{ run: 'echo "## Tests" >> "$GITHUB_STEP_SUMMARY"' }, { run: 'printf "ok" >> "$GITHUB_STEP_SUMMARY"' }] });
    expect(outcome.summary).toBe('## Tests\nok\n');
  });
});

describe('conditions and continue-on-error', () => {
  it('skips after a failure unless failure() or always(), and separates outcome from conclusion', async () => {
    const { outcome } = await run({
      steps: [
        { id: 'soft', run: 'exit 4', continueOnError: true },
        { id: 'after_soft', run: 'test "${{ steps.soft.outcome }}/${{ steps.soft.conclusion }}" = failure/success' },
        { id: 'hard', run: 'exit 2' },
        { id: 'normal', run: 'echo no' },
        { id: 'on_failure', if: 'failure()', run: 'echo handling' },
        { id: 'on_success', if: "success() || matrix.node == 20 && false", run: 'echo no' },
        { id: 'plain_if', if: "${{ matrix.node == 20 }}", run: 'echo no' }, // implicit success() &&
        { id: 'always', if: 'always()', run: 'test "${{ job.status }}" = failure' },
        { id: 'cancel_only', if: 'cancelled()', run: 'echo no' },
      ],
    });
    const byId = Object.fromEntries(outcome.steps.map((s) => [s.id, [s.outcome, s.conclusion, s.exitCode]]));
    expect(byId).toEqual({
      soft: ['failure', 'success', 4],
      after_soft: ['success', 'success', 0],
      hard: ['failure', 'failure', 2],
      normal: ['skipped', 'skipped', null],
      on_failure: ['success', 'success', 0],
      on_success: ['skipped', 'skipped', null],
      plain_if: ['skipped', 'skipped', null],
      always: ['success', 'success', 0],
      cancel_only: ['skipped', 'skipped', null],
    });
    expect(outcome.conclusion).toBe('failure');
  });

  it('evaluates continue-on-error expressions with the matrix', async () => {
    const { outcome } = await run({ steps: [{ run: 'exit 1', continueOnError: '${{ matrix.node == 20 }}' }] });
    expect(outcome.conclusion).toBe('success');
    expect(outcome.steps[0]).toMatchObject({ outcome: 'failure', conclusion: 'success' });
  });

  it('fails the step when its condition cannot be evaluated', async () => {
    const { outcome, log } = await run({ steps: [{ if: "github.ref ==", run: 'echo x' }] });
    expect(outcome.conclusion).toBe('failure');
    expect(log).toMatch(/✘ echo x: if: invalid condition/);
  });
});

describe('hashFiles()', () => {
  const ws = (): string => join(root, 'work', 'demo');
  /** GitHub's algorithm, computed independently: SHA-256 over the files' binary SHA-256 digests. */
  const expected = (...rel: string[]): string => {
    const all = createHash('sha256');
    for (const file of rel.map((r) => join(ws(), r)).sort()) all.update(createHash('sha256').update(readFileSync(file)).digest());
    return all.digest('hex');
  };
  beforeEach(() => {
    const files: Record<string, string> = {
      'package.json': '{"name":"demo"}\n',
      'x.txt': 'not json\n',
      'sub/b.json': '{"b":1}\n',
      'sub/deep/c.json': '{"c":2}\n',
      '.hidden/d.json': '{"d":3}\n',
      'a.json/e.json': 'dir named like a file\n',
    };
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(ws(), rel, '..'), { recursive: true });
      writeFileSync(join(ws(), rel), content);
    }
  });

  it('hashes the sorted matches of a ** pattern by GitHub\'s algorithm, in run:, env: and if:', async () => {
    const all = expected('package.json', 'sub/b.json', 'sub/deep/c.json', '.hidden/d.json', 'a.json/e.json');
    const { outcome, log } = await run({
      steps: [
        {
          env: { H: "${{ hashFiles('**/*.json') }}" },
          run: `test "$H" = ${all}\ntest "\${{ hashFiles('**/*.json') }}" = ${all}\necho hashed-ok`,
        },
        { id: 'yes', if: `hashFiles('**/*.json') == '${all}'`, run: 'echo if-true' },
        { id: 'no', if: "hashFiles('**/*.none') != ''", run: 'echo if-false' },
      ],
    });
    expect(outcome.conclusion).toBe('success');
    expect(log).toContain('hashed-ok');
    expect(outcome.steps.map((s) => s.outcome)).toEqual(['success', 'success', 'skipped']);
  });

  it('gives an empty string when nothing matches, and ignores directories and paths outside the workspace', async () => {
    const { outcome } = await run({
      steps: [{ run: `test -z "\${{ hashFiles('**/*.none', '/etc/hostname', '../other/*') }}"\ntest -z "\${{ hashFiles('sub/deep') }}" && exit 1 || true` }],
    });
    expect(outcome.conclusion).toBe('success');
  });

  it('excludes with !, treats a directory as its files, and matches several patterns and ? sets', async () => {
    const { outcome } = await run({
      outputs: {
        negated: "${{ hashFiles('**/*.json', '!sub/deep/**', '!.hidden') }}",
        directory: "${{ hashFiles('sub') }}",
        several: "${{ hashFiles('x.txt', 'package.json') }}",
        question: "${{ hashFiles('?.txt', 'sub/[a-c].json') }}",
        reincluded: "${{ hashFiles('sub/**', '!sub/**/*.json', 'sub/deep/c.json') }}",
      },
      steps: [{ run: 'true' }],
    });
    expect(outcome.outputs).toEqual({
      negated: expected('package.json', 'sub/b.json', 'a.json/e.json'),
      directory: expected('sub/b.json', 'sub/deep/c.json'),
      several: expected('x.txt', 'package.json'),
      question: expected('x.txt', 'sub/b.json'),
      reincluded: expected('sub/deep/c.json'),
    });
  });

  it('evaluates expression arguments first, sees files of earlier steps, and follows symbolic links', async () => {
    symlinkSync(join(ws(), 'sub'), join(ws(), 'linked'));
    const before = expected('package.json', 'a.json/e.json'); // a.json is a folder: its files count
    const { outcome } = await run({
      outputs: { linked: "${{ hashFiles('linked/b.json') }}", json: "${{ hashFiles('*.json') }}" },
      steps: [
        { run: `test "\${{ hashFiles(format('{0}/*.json', 'sub'), matrix.node == 20 && 'x.txt' || 'none') }}" = ${expected('sub/b.json', 'x.txt')}` },
        { run: `test "\${{ hashFiles('*.json') }}" = ${before}\necho new > new.json` },
        { run: `test "\${{ hashFiles('*.json') }}" != ${before}` },
      ],
    });
    expect(outcome.conclusion).toBe('success');
    expect(outcome.outputs).toEqual({ linked: expected('sub/b.json'), json: expected('package.json', 'a.json/e.json', 'new.json') });
  });

  it('fails the step clearly when an argument cannot be evaluated before the step', async () => {
    const { outcome, log } = await run({ steps: [{ run: "echo ${{ hashFiles(fromJSON('{')) }}" }] });
    expect(outcome.conclusion).toBe('failure');
    expect(log).toMatch(/an argument of hashFiles\(\) could not be evaluated before the step/);
  });
});

describe('shells and working directory', () => {
  it('uses GitHub shell templates: bash -e by default, bash with pipefail, sh -e, custom argv', async () => {
    const { outcome } = await run({
      steps: [
        { id: 'default', run: 'false | true\necho default-ok' },
        { id: 'bash', shell: 'bash', run: 'false | true' },
        { id: 'sh', shell: 'sh', run: 'test -z "$BASH_VERSION"\nfalse\necho unreachable' },
        { id: 'custom', shell: 'bash -x {0}', run: 'echo custom-ok' },
      ],
    });
    const byId = Object.fromEntries(outcome.steps.map((s) => [s.id, s.outcome]));
    expect(byId).toEqual({ default: 'success', bash: 'failure', sh: 'skipped', custom: 'skipped' });
    const argvs = guest.calls.filter((c) => c.argv.some((a) => a.endsWith('.sh'))).map((c) => c.argv.slice(0, -1));
    expect(argvs).toEqual([
      ['bash', '-e'],
      ['bash', '--noprofile', '--norc', '-eo', 'pipefail'],
    ]);
  });

  it('runs sh and custom shells, with the shell from step, then job, then workflow defaults', async () => {
    const { outcome, log } = await run(
      {
        defaults: { shell: 'sh' },
        steps: [
          { run: 'test -z "$BASH_VERSION" && echo sh-ok' },
          { shell: 'bash -x {0}', run: 'echo "custom $BASH_VERSION"' },
          { shell: 'bash', run: 'shopt -qo pipefail && echo pipefail-on' },
        ],
      },
      { workflow: { defaults: { shell: 'bash' } } },
    );
    expect(outcome.conclusion).toBe('success');
    expect(log).toContain('sh-ok');
    expect(log).toMatch(/\+ echo 'custom /); // bash -x traced the script
    expect(log).toContain('pipefail-on');
    const scriptCalls = guest.calls.filter((c) => c.argv.some((a) => a.endsWith('.sh')));
    expect(scriptCalls.map((c) => c.argv[0])).toEqual(['sh', 'bash', 'bash']);
    expect(scriptCalls[1]?.argv.slice(0, 2)).toEqual(['bash', '-x']);
  });

  it('applies working-directory relative to the workspace, step over job over workflow', async () => {
    const ws = join(root, 'work', 'demo');
    await mkdir(join(ws, 'a', 'b'), { recursive: true });
    await mkdir(join(ws, 'c'), { recursive: true });
    const { outcome } = await run(
      {
        defaults: { workingDirectory: 'a' },
        steps: [
          { run: 'test "$PWD" = "$GITHUB_WORKSPACE/a"' },
          { workingDirectory: 'a/b', run: 'test "$PWD" = "$GITHUB_WORKSPACE/a/b"' },
          { workingDirectory: '${{ runner.temp }}', run: 'test "$PWD" = "$RUNNER_TEMP"' },
        ],
      },
      { workflow: { defaults: { workingDirectory: 'c' } } },
    );
    expect(outcome.conclusion).toBe('success');
    const { outcome: wfOnly } = await run({ steps: [{ run: 'test "$PWD" = "$GITHUB_WORKSPACE/c"' }] }, { workflow: { defaults: { workingDirectory: 'c' } } });
    expect(wfOnly.conclusion).toBe('success');
  });

  it('fails clearly when the working directory does not exist', async () => {
    const { outcome, log } = await run({ steps: [{ workingDirectory: 'missing', run: 'echo x' }] });
    expect(outcome.conclusion).toBe('failure');
    expect(log).toMatch(/working-directory .*\/work\/demo\/missing does not exist in the guest/);
  });

  it('rejects an unknown shell keyword with the supported list', async () => {
    const { outcome, log } = await run({ steps: [{ shell: 'fish', run: 'echo x' }] });
    expect(outcome.conclusion).toBe('failure');
    expect(log).toContain('shell "fish" is not supported');
  });
});

describe('timeouts and cancellation', () => {
  it('times a step out, marks it timedOut, and lets always() steps run', async () => {
    const { outcome, log } = await run({
      steps: [
        { id: 'slow', timeoutMinutes: 0.01, run: 'echo started; sleep 20; echo never' },
        { id: 'next', run: 'echo no' },
        { id: 'cleanup', if: 'always()', run: 'echo cleanup-ran' },
      ],
    });
    expect(outcome.steps[0]).toMatchObject({ id: 'slow', outcome: 'failure', conclusion: 'failure', timedOut: true });
    expect(outcome.steps[0]!.durationMs).toBeLessThan(5000);
    expect(outcome.steps[1]?.conclusion).toBe('skipped');
    expect(outcome.steps[2]?.conclusion).toBe('success');
    expect(log).toMatch(/✘ echo started; sleep 20; echo never timed out \(\d/);
    expect(log).toContain('cleanup-ran');
    expect(outcome.conclusion).toBe('failure');
  });

  it('times the job out: running step cancelled, always() and cancelled() steps run, conclusion timed_out', async () => {
    const { outcome, log } = await run({
      timeoutMinutes: '${{ 0.01 }}',
      steps: [
        { id: 'slow', run: 'sleep 20' },
        { id: 'skipped', run: 'echo no' },
        { id: 'cleanup', if: 'cancelled()', run: 'echo cleanup-after-timeout' },
      ],
    });
    expect(outcome.conclusion).toBe('timed_out');
    expect(outcome.steps.map((s) => s.conclusion)).toEqual(['cancelled', 'skipped', 'success']);
    expect(log).toContain('job timed out after 0.01 minutes');
    expect(log).toContain('cleanup-after-timeout');
  });

  it('cancels through the signal: conclusion cancelled, always() steps still run', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 400);
    const { outcome, log } = await run(
      { steps: [{ run: 'sleep 20' }, { run: 'echo no' }, { if: 'always()', run: 'echo always-ran' }] },
      { signal: controller.signal },
    );
    expect(outcome.conclusion).toBe('cancelled');
    expect(outcome.steps.map((s) => s.conclusion)).toEqual(['cancelled', 'skipped', 'success']);
    expect(log).toContain('always-ran');
  });

  it('rejects a non-positive timeout clearly', async () => {
    const { outcome } = await run({ timeoutMinutes: 0, steps: [{ run: 'true' }] });
    expect(outcome.conclusion).toBe('failure');
    expect(outcome.error).toMatch(/timeout-minutes: expected a positive number of minutes, got 0/);
  });
});

describe('log', () => {
  it('writes a header and a result line per step and records byte ranges', async () => {
    const { outcome, log } = await run({ steps: [{ name: 'Say ${{ matrix.node }}', run: 'echo out; echo err >&2' }, { run: 'exit 2' }] });
    expect(outcome.steps[0]?.name).toBe('Say 20');
    const first = outcome.steps[0]!.log;
    const bytes = readFileSync(join(root, 'job.log'));
    const part = bytes.subarray(first.start, first.end).toString('utf8');
    expect(part).toMatch(/^▶ Say 20\n(out\nerr\n|err\nout\n)✔ Say 20 \(\d+\.\ds\)\n$/);
    const second = outcome.steps[1]!.log;
    expect(second.start).toBe(first.end);
    expect(bytes.subarray(second.start, second.end).toString('utf8')).toMatch(/^▶ exit 2\n✘ exit 2 failed with exit code 2 \(\d+\.\ds\)\n$/);
    expect(log.endsWith(bytes.subarray(second.start).toString('utf8'))).toBe(true);
  });

  it('fails the step and the job when the log cap is reached, and stops running steps', async () => {
    const { outcome } = await run({ steps: [{ run: 'while true; do echo spam spam spam; done' }, { if: 'always()', run: 'echo later' }] }, { capBytes: 4000 });
    expect(outcome.conclusion).toBe('failure');
    expect(outcome.error).toMatch(/job log reached its cap of 4000 bytes/);
    expect(outcome.steps.map((s) => s.conclusion)).toEqual(['failure', 'skipped']);
  });
});

describe('actions/checkout', () => {
  it('copies the repository to path:, evaluates with: and notes the inputs it needs nothing for', async () => {
    const ws = join(root, 'work', 'demo');
    writeFileSync(join(ws, 'README.md'), 'hello\n');
    const { outcome, log } = await run({
      steps: [
        { uses: 'actions/checkout@v4', with: { path: 'src/${{ matrix.node }}', 'persist-credentials': 'false', ref: '${{ github.sha }}' } },
        { run: 'test "$(cat src/20/README.md)" = hello && test -f README.md' },
      ],
    });
    expect(outcome.conclusion, log).toBe('success');
    expect(log).toContain('octo/demo is checked out at');
    expect(log).toContain('copied the repository to $GITHUB_WORKSPACE/src/20');
    expect(log).toContain('checkout inputs not needed here: persist-credentials');
  });

  it('fails clearly for another repository, another ref, submodules it cannot fetch, or a path outside', async () => {
    writeFileSync(join(root, 'work', 'demo', '.gitmodules'), '[submodule "x"]\n');
    const { outcome, log } = await run({
      steps: [
        { uses: 'actions/checkout@v4', with: { repository: 'someone/else' }, continueOnError: true },
        { uses: 'actions/checkout@v4', with: { ref: 'refs/heads/other' }, continueOnError: true },
        { uses: 'actions/checkout@v4', with: { submodules: 'recursive' }, continueOnError: true },
        { uses: 'actions/checkout@v4', with: { path: '../outside' }, continueOnError: true },
      ],
    });
    expect(outcome.steps.map((s) => s.outcome)).toEqual(['failure', 'failure', 'failure', 'failure']);
    expect(log).toContain('actions/checkout of another repository (someone/else) is not supported');
    expect(log).toContain('actions/checkout of ref "refs/heads/other" is not supported');
    expect(log).toContain('actions/checkout with submodules is not supported');
    expect(log).toContain('must stay inside the workspace');
  });

  it('fails the job at set-up, before any step, when a remote action cannot be loaded', async () => {
    const { outcome, log } = await run({ steps: [{ run: 'echo first' }, { uses: 'actions/setup-node@v4' }] });
    expect(outcome.conclusion).toBe('failure');
    expect(outcome.steps.map((s) => s.outcome)).toEqual(['skipped', 'skipped']);
    expect(outcome.error).toContain('cannot run "uses: actions/setup-node@v4"');
    expect(log).toContain('✘ set up job:');
    expect(log).not.toContain('first\n');
  });
});

describe('file command parsing (GitHub runner rules)', () => {
  it('reads NAME=value and NAME<<DELIM forms, whichever of = and << comes first', async () => {
    const { parseKeyValueFile } = await import('../src/job/env-files.ts');
    const text = 'A=1\n\nB=x<<y\nC<<EOF\nfirst\r\nsecond=2\nEOF\nD<<=\nd-value\n=\nEMPTY<<E\nE\nF=\r\n';
    expect(parseKeyValueFile(text, 'GITHUB_OUTPUT')).toEqual([
      ['A', '1'],
      ['B', 'x<<y'],
      ['C', 'first\r\nsecond=2'],
      ['D', 'd-value'],
      ['EMPTY', ''],
      ['F', ''],
    ]);
  });

  it('rejects lines without a name, with no form, or a heredoc that never ends', async () => {
    const { parseKeyValueFile } = await import('../src/job/env-files.ts');
    expect(() => parseKeyValueFile('=value\n', 'GITHUB_ENV')).toThrow(/the name before "=" is empty/);
    expect(() => parseKeyValueFile('just text\n', 'GITHUB_ENV')).toThrow(/expected NAME=value or NAME<<DELIMITER/);
    expect(() => parseKeyValueFile('X<<\nv\n', 'GITHUB_ENV')).toThrow(/needs both a name and a delimiter/);
    expect(() => parseKeyValueFile('X<<END\nv\nEND-ish\n', 'GITHUB_ENV')).toThrow(/no line matching the delimiter "END"/);
    expect(() => parseKeyValueFile('X<<END\nv', 'GITHUB_ENV')).toThrow(/ends without the delimiter "END"/);
  });

  it('orders GITHUB_PATH entries like the runner: last added first, re-added entries move up', async () => {
    const { addPathEntries, composePath, parsePathFile } = await import('../src/job/env-files.ts');
    const prepend = addPathEntries(addPathEntries([], parsePathFile('/a\n\n/b\n')), ['/a', '/c']);
    expect(composePath(prepend, '/usr/bin:/bin')).toBe('/c:/a:/b:/usr/bin:/bin');
  });

  it('splits custom shells into argv without a shell, keeping quoted parts together', async () => {
    const { commandFor, resolveShell, splitCommandLine } = await import('../src/job/step-script.ts');
    expect(commandFor(resolveShell('pwsh', true), '/t/s.ps1')).toEqual(['pwsh', '-command', ". '/t/s.ps1'"]);
    expect(commandFor(resolveShell('perl -w "{0}"', true), '/t/x')).toEqual(['perl', '-w', '/t/x']);
    expect(commandFor(resolveShell(undefined, false), '/t/s.sh')).toEqual(['sh', '-e', '/t/s.sh']);
    expect(splitCommandLine('a  "b c" d\\"e "f\\"g"')).toEqual(['a', 'b c', 'd"e', 'f"g']);
    expect(() => resolveShell('bash "{0}', true)).toThrow(/unmatched double quote/);
  });
});
