/**
 * `forgevm run` as a user runs it: a subprocess in a git repository, real `tiny` VMs (four in
 * all), live step output, the summary table, exit codes, and what it says when the input is
 * wrong. Also: a `forgevm run` killed with SIGKILL mid-step leaves no QEMU behind, and the next
 * forgevm start sweeps its job folder.
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliStateRoot, forgevm, gitRepo, readRunReport, removeStateRoot, summaryRow } from './support/forgevm-cli.ts';
import { jobFolders, qemuProcessesUnder } from './support/vm-harness.ts';

const HELLO = readFileSync(join(import.meta.dirname, '..', 'workflows', 'hello.yml'), 'utf8');

const TWO_JOBS = `name: Two jobs
on: push
jobs:
  broken:
    runs-on: tiny
    steps:
      - run: echo "before the failure"
      - name: Compile
        run: |
          echo "compiler says no" >&2
          exit 3
      - name: Never runs
        run: echo unreachable
  fine:
    runs-on: tiny
    steps:
      - run: echo "fine ran"
`;

const DISPATCH = `name: Dispatch
on:
  workflow_dispatch:
    inputs:
      name:
        description: who to greet
        required: true
jobs:
  greet:
    runs-on: ubuntu-24.04
    steps:
      - name: Inputs arrive
        env:
          NAME: \${{ inputs.name }}
          FROM_EVENT: \${{ github.event.inputs.name }}
        run: |
          test "$NAME" = "Ada Lovelace"
          test "$FROM_EVENT" = "Ada Lovelace"
          test "$GITHUB_EVENT_NAME" = workflow_dispatch
          grep -q '"Ada Lovelace"' "$GITHUB_EVENT_PATH"
          echo "greeting $NAME"
      - id: kinds
        run: echo 'list=["x","y"]' >> "$GITHUB_OUTPUT"
    outputs:
      kinds: \${{ steps.kinds.outputs.list }}
  # Its matrix reads needs: planned as a placeholder, expanded after greet (and --image must
  # reach the expanded instances too).
  fan:
    needs: greet
    runs-on: ubuntu-24.04
    strategy:
      matrix:
        kind: \${{ fromJSON(needs.greet.outputs.kinds) }}
    steps:
      - run: echo "fan \${{ matrix.kind }} for \${{ inputs.name }}"
`;

const WINDOWS = `on: push
jobs:
  build:
    runs-on: windows-11
    steps:
      - run: echo never
`;

const INVALID = `on: push
jobs:
  build:
    runs-on: tiny
    needs: nothere
    steps:
      - run: echo hi
        bogus: 1
`;

const CALLS_MISSING = `on: push
jobs:
  build:
    uses: ./ci/missing.yml
`;

const REUSABLE_ONLY = `on:
  workflow_call:
jobs:
  build:
    runs-on: tiny
    steps:
      - run: echo never on its own
`;

const SLEEPER = `on: push
jobs:
  sleeper:
    runs-on: tiny
    steps:
      - name: Sleep
        run: |
          echo "going to sleep"
          sleep 600
`;

const SECRETS = `on: push
jobs:
  uses-secrets:
    runs-on: tiny
    steps:
      - name: Secrets arrive, and the log masks them
        env:
          FROM_ENV: \${{ secrets.DEPLOY_TOKEN }}
          FROM_FILE: \${{ secrets.db_password }}
        run: |
          test "$FROM_ENV" = "env-secret-4242" && test "$FROM_FILE" = "file-secret-1717"
          echo "token=$FROM_ENV password=$FROM_FILE"
`;

let stateRoot: string;
let repo: { dir: string; sha: string };
const run = (...args: string[]) => forgevm(['run', ...args], { cwd: repo.dir, stateRoot });
const logFiles = () => readdir(join(stateRoot, 'logs')).catch(() => [] as string[]);

beforeAll(async () => {
  stateRoot = await cliStateRoot();
  repo = await gitRepo({
    'README.md': 'a project to build\n',
    'workflows/hello.yml': HELLO,
    'workflows/two.yml': TWO_JOBS,
    'workflows/dispatch.yml': DISPATCH,
    'workflows/windows.yml': WINDOWS,
    'workflows/invalid.yml': INVALID,
    'workflows/sleeper.yml': SLEEPER,
    'workflows/calls-missing.yml': CALLS_MISSING,
    'workflows/reusable-only.yml': REUSABLE_ONLY,
    'workflows/secrets.yml': SECRETS,
  });
});

afterAll(async () => {
  if (stateRoot) await removeStateRoot(stateRoot);
  if (repo) await rm(repo.dir, { recursive: true, force: true });
});

async function expectNothingLeft() {
  expect(await qemuProcessesUnder(stateRoot)).toEqual([]);
  expect(await jobFolders(stateRoot)).toEqual([]);
}

describe('forgevm run', () => {
  it('runs hello.yml in a VM: step headers, step output and a summary table, exit 0', async () => {
    const result = await run('--workflow', 'workflows/hello.yml');
    expect(result.exitCode, result.all).toBe(0);
    const out = result.stdout;
    expect(out).toContain('▶ Greet\n');
    expect(out).toMatch(/^Hello from \S+, kernel \S+$/m);
    expect(out).toContain(`Building local/${repo.dir.split('/').pop()} at ${repo.sha.slice(0, 12)} on main\n`);
    expect(out).toContain(`HEAD is ${repo.sha.slice(0, 7)}: fixtures\n`);
    expect(out).toMatch(/^✔ Greet \(\d+\.\ds\)$/m);
    // Output lines come through one per line, not double-spaced.
    expect(out).not.toContain('▶ Greet\n\n');
    expect(out).toMatch(/^JOB\s+RESULT\s+TIME\s+DETAIL$/m);
    expect(summaryRow(out, 'hello')).toEqual(['hello', 'success', expect.stringMatching(/^\d+\.\ds$/)]);
    await expectNothingLeft();
  });

  it('--job picks one job; a failing job exits 1 and the summary names the step and its exit code', async () => {
    const json = join(stateRoot, 'two.json');
    const result = await run('--workflow', 'workflows/two.yml', '--job', 'broken', '--json', json);
    expect(result.exitCode, result.all).toBe(1);
    expect(result.stdout).toContain('before the failure\n');
    expect(result.stdout).toContain('compiler says no\n');
    expect(result.stdout).not.toContain('unreachable');
    expect(summaryRow(result.stdout, 'broken')).toEqual(['broken', 'failure', expect.stringMatching(/s$/), 'step "Compile" failed (exit 3)']);
    expect(summaryRow(result.stdout, 'fine')).toBeUndefined();
    expect(result.stdout).not.toContain('fine ran');
    const report = await readRunReport(json);
    expect(report.conclusion).toBe('failure');
    expect(report.jobs.map((j) => [j.key, j.conclusion])).toEqual([['broken', 'failure']]);
    expect(report.jobs[0]!.steps.map((s) => [s.name, s.conclusion, s.exitCode])).toEqual([
      ['echo "before the failure"', 'success', 0],
      ['Compile', 'failure', 3],
      ['Never runs', 'skipped', null],
    ]);
    await expectNothingLeft();
  });

  it('--job with an id that is not there says so without booting', async () => {
    const before = await logFiles();
    const result = await run('--workflow', 'workflows/two.yml', '--job', 'nosuch');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('forgevm: no job "nosuch" in the selected workflows: check the id under jobs:');
    expect(await logFiles()).toEqual(before);
  });

  it('--image tiny runs ubuntu-24.04 jobs on tiny, matrix instances expanded from needs too; --event workflow_dispatch --input reaches inputs', async () => {
    const result = await run('--workflow', 'workflows/dispatch.yml', '--image', 'tiny', '--event', 'workflow_dispatch', '--input', 'name=Ada Lovelace');
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('── greet on tiny\n');
    expect(result.stdout).toContain('greeting Ada Lovelace\n');
    expect(summaryRow(result.stdout, 'greet')?.slice(0, 2)).toEqual(['greet', 'success']);
    for (const kind of ['x', 'y']) {
      expect(result.stdout).toContain(`── fan (${kind}) on tiny\n`);
      expect(result.stdout).toContain(`fan ${kind} for Ada Lovelace\n`);
      expect(summaryRow(result.stdout, `fan (${kind})`)?.slice(0, 2)).toEqual([`fan (${kind})`, 'success']);
    }
    expect(summaryRow(result.stdout, 'fan')).toBeUndefined();
    await expectNothingLeft();
  });

  it('--event push on a workflow_dispatch-only workflow runs nothing and says why', async () => {
    const before = await logFiles();
    const result = await run('--workflow', 'workflows/dispatch.yml', '--event', 'push');
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/^skipped workflow Dispatch: .*push/m);
    expect(result.stderr).toContain('forgevm: nothing to run');
    expect(await logFiles()).toEqual(before);
  });

  it('an unknown image label, in runs-on or --image, gives one line with the cause and the fix before any job starts', async () => {
    const line = (label: string) =>
      new RegExp(`unknown image label "${label}": runs-on must name an image in the catalog \\(tiny[^)]*\\); add it under images: in the config or pick one of these$`, 'm');
    for (const [args, label] of [
      [['--workflow', 'workflows/windows.yml'], 'windows-11'],
      [['--workflow', 'workflows/hello.yml', '--image', 'no-such-image'], 'no-such-image'],
    ] as const) {
      const started = Date.now();
      const before = await logFiles();
      const result = await run(...args);
      expect(result.exitCode, result.all).toBe(1);
      // Refused before any job starts: one line on stderr, no job log, no summary.
      expect(result.stderr).toMatch(new RegExp(`^forgevm: ${line(label).source}`, 'm'));
      expect(result.stdout).not.toContain('── ');
      expect(await logFiles()).toEqual(before);
      expect(Date.now() - started).toBeLessThan(30_000);
      await expectNothingLeft();
    }
  });

  it('a workflow with validation problems prints file:line:column: message and boots nothing', async () => {
    const before = await logFiles();
    const result = await run('--workflow', 'workflows/invalid.yml');
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('workflows/invalid.yml:3:3: jobs.build.needs: unknown job "nothere"\n');
    expect(result.stderr).toMatch(/^workflows\/invalid\.yml:8:9: unknown key "bogus" in jobs\.build\.steps\[0\]$/m);
    expect(result.stdout).not.toContain('── ');
    expect(await logFiles()).toEqual(before);
    await expectNothingLeft();
  });
});

describe('forgevm run with secrets', () => {
  it('takes --secret from the environment and --secret-file lines, and masks both in the output', async () => {
    const file = join(stateRoot, 'secrets.env');
    await writeFile(file, '# local secrets\nDB_PASSWORD=file-secret-1717\n');
    const result = await forgevm(['run', '--workflow', 'workflows/secrets.yml', '--secret', 'DEPLOY_TOKEN', '--secret-file', file], {
      cwd: repo.dir,
      stateRoot,
      env: { DEPLOY_TOKEN: 'env-secret-4242' },
    });
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('token=*** password=***');
    expect(result.all).not.toContain('env-secret-4242');
    expect(result.all).not.toContain('file-secret-1717');
    await expectNothingLeft();
  });

  it('refuses a secret value on the command line, or a --secret with no such variable, before booting', async () => {
    const before = await logFiles();
    const inline = await run('--workflow', 'workflows/secrets.yml', '--secret', 'DEPLOY_TOKEN=oops');
    expect(inline.exitCode).toBe(1);
    expect(inline.stderr).toContain('--secret DEPLOY_TOKEN: give only the name, and the value in the environment');
    const missing = await run('--workflow', 'workflows/secrets.yml', '--secret', 'NOT_SET_ANYWHERE');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('--secret NOT_SET_ANYWHERE: the environment has no variable NOT_SET_ANYWHERE');
    expect(await logFiles()).toEqual(before);
  });
});

describe('forgevm run with reusable workflows (nothing boots)', () => {
  it('refuses a call to a workflow file that is not in the repository, with file:line:column', async () => {
    const result = await run('--workflow', 'workflows/calls-missing.yml');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('workflows/calls-missing.yml:4:11: jobs.build.uses: ./ci/missing.yml: no such file in the repository (at the commit being built); the path is relative to the repository root');
    expect(result.stdout).not.toContain('── ');
  });
  it('does not run a workflow that only runs when called, and says why', async () => {
    const result = await run('--workflow', 'workflows/reusable-only.yml');
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('skipped workflow workflows/reusable-only.yml: it runs when another workflow calls it (on: workflow_call)');
    expect(result.stderr).toMatch(/nothing to run/);
    await expectNothingLeft();
  });
});

describe('forgevm run killed with SIGKILL mid-step', () => {
  it('leaves no QEMU behind, and the next forgevm start sweeps the job folder', async () => {
    const child = run('--workflow', 'workflows/sleeper.yml');
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes('going to sleep\n')) resolve();
      });
      void child.then((r) => reject(new Error(`forgevm run ended before the step started:\n${r.all}`)));
    });
    expect((await qemuProcessesUnder(stateRoot)).length).toBe(1);
    expect(await jobFolders(stateRoot)).toHaveLength(1);
    child.kill('SIGKILL');
    const killed = await child;
    expect(killed.signal).toBe('SIGKILL');
    // QEMU runs under a parent-death signal: it goes with forgevm, give the kernel a moment.
    for (let i = 0; i < 50 && (await qemuProcessesUnder(stateRoot)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await qemuProcessesUnder(stateRoot)).toEqual([]);
    // The folder stays until a forgevm starts again: any run does the sweep first.
    expect(await jobFolders(stateRoot)).toHaveLength(1);
    const next = await run('--workflow', 'workflows/invalid.yml');
    expect(next.stderr).toMatch(/^forgevm: swept 1 job folder\(s\) left by an earlier crash/m);
    await expectNothingLeft();
    // The killed run's log stays, with what the step printed.
    const logs = await logFiles();
    const texts = await Promise.all(logs.map((f) => readFile(join(stateRoot, 'logs', f), 'utf8')));
    expect(texts.some((t) => t.includes('going to sleep'))).toBe(true);
  });
});
