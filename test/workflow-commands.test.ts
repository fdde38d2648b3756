import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCatalog } from '../src/config/catalog.ts';
import { planCommand, validateCommand } from '../src/workflow/commands.ts';

let repo: string;
const git = (...args: string[]) => execa('git', args, { cwd: repo });
async function write(file: string, text: string) {
  await mkdir(path.dirname(path.join(repo, file)), { recursive: true });
  await writeFile(path.join(repo, file), text);
}
async function commit(message: string) {
  await git('add', '-A');
  await git('commit', '-q', '-m', message);
}
async function run(fn: (out: (s: string) => void) => Promise<number>) {
  const lines: string[] = [];
  const code = await fn((s) => lines.push(s));
  return { code, text: lines.join('\n') };
}

const CI = `name: CI
on:
  push:
    branches: [main]
    paths-ignore: ['docs/**']
  pull_request:
jobs:
  test:
    runs-on: \${{ matrix.os }}
    strategy:
      matrix:
        os: [debian, alpine]
    steps: [{run: make test}]
  release:
    if: startsWith(github.ref, 'refs/tags/')
    runs-on: debian
    steps: [{run: make release}]
`;

beforeAll(async () => {
  repo = await mkdtemp(path.join(tmpdir(), 'forgevm-plan-'));
  await git('init', '-q', '-b', 'main');
  await git('config', 'user.email', 't@example.com');
  await git('config', 'user.name', 'Test');
  await write('.forgevm/workflows/ci.yml', CI);
  await write('src/a.c', 'int main;\n');
  await commit('first');
  await write('docs/readme.md', 'hello\n');
  await commit('docs only');
});
afterAll(async () => {
  await rm(repo, { recursive: true, force: true });
});

describe('plan', () => {
  it('explains a push that changed only ignored paths', async () => {
    const { code, text } = await run((out) => planCommand({ repoDir: repo, event: 'push' }, out));
    expect(code).toBe(0);
    expect(text).toMatch(/^push refs\/heads\/main at [0-9a-f]{12}; 1 changed file\(s\)/);
    expect(text).toMatch(/CI\s+\*\s+skipped\s+paths-ignore "docs\/\*\*" matched every changed file/);
  });
  it('prints a table of job instances for a push that runs', async () => {
    const { text } = await run((out) => planCommand({ repoDir: repo, event: 'push', sha: 'HEAD~1' }, out));
    expect(text).toContain('2 changed file(s)'); // the root commit: everything in it
    const rows = text.split('\n').slice(1);
    expect(rows[0]).toMatch(/^WORKFLOW\s+JOB\s+RUNS-ON\s+VERDICT\s+REASON$/);
    expect(rows[1]).toMatch(/^CI\s+test \(debian\)\s+debian\s+runs$/);
    expect(rows[2]).toMatch(/^CI\s+test \(alpine\)\s+alpine\s+runs$/);
    expect(rows[3]).toMatch(/^CI\s+release\s+debian\s+skipped\s+if: startsWith\(github.ref, 'refs\/tags\/'\) was false$/);
  });
  it('reads the workflows as they are in the commit, not the working tree', async () => {
    await write('.forgevm/workflows/ci.yml', 'broken: [');
    try {
      const { code } = await run((out) => planCommand({ repoDir: repo, event: 'push', sha: 'HEAD~1' }, out));
      expect(code).toBe(0);
    } finally {
      await write('.forgevm/workflows/ci.yml', CI);
    }
  });
  it('diffs a pull request against the merge base with --base, as JSON', async () => {
    await git('checkout', '-q', '-b', 'feature', 'HEAD~1');
    await write('src/b.c', 'x\n');
    await commit('feature work');
    try {
      const { code, text } = await run((out) => planCommand({ repoDir: repo, event: 'pull_request', base: 'main', json: true }, out));
      expect(code).toBe(0);
      const plan = JSON.parse(text);
      expect(plan.event).toMatchObject({ name: 'pull_request', ref: 'refs/heads/feature', baseRef: 'main' });
      expect(plan.changedFiles).toEqual(['src/b.c']);
      expect(plan.workflows[0].runs).toBe(true);
      expect(plan.workflows[0].jobs.map((j: { key: string; runs: boolean }) => [j.key, j.runs])).toEqual([
        ['test (debian)', true],
        ['test (alpine)', true],
        ['release', false],
      ]);
    } finally {
      await git('checkout', '-q', 'main');
    }
  });
  it('plans a push to another ref given with --ref', async () => {
    const { text } = await run((out) => planCommand({ repoDir: repo, event: 'push', ref: 'dev', sha: 'HEAD~1' }, out));
    expect(text).toContain('branch "dev" not in branches [main]');
  });
  it('fails with a clear message on a bad --sha or a pull_request without --base', async () => {
    await expect(planCommand({ repoDir: repo, event: 'push', sha: 'nope' }, () => {})).rejects.toThrow(/"nope" is not a commit/);
    await expect(planCommand({ repoDir: repo, event: 'pull_request' }, () => {})).rejects.toThrow(/--base/);
  });
});

describe('validate', () => {
  it('reports ok for valid workflows', async () => {
    const { code, text } = await run((out) => validateCommand({ repoDir: repo, files: [] }, out));
    expect(code).toBe(0);
    expect(text).toBe('ok: 1 workflow file(s)');
  });
  it('prints file:line:column problems and exits non-zero', async () => {
    await write('bad.yml', 'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - nme: x\n');
    const { code, text } = await run((out) => validateCommand({ repoDir: repo, files: ['bad.yml', 'missing.yml'] }, out));
    expect(code).toBe(1);
    expect(text.split('\n')).toEqual([
      'bad.yml:6:9: unknown key "nme" in jobs.a.steps[0] (did you mean "name"?)',
      'bad.yml:6:9: jobs.a.steps[0] has neither "run" nor "uses"',
      'missing.yml:1:1: cannot read the file: ENOENT',
      '3 problem(s) in 2 of 2 workflow file(s)',
    ]);
  });
  it('says so when the folders hold no workflow', async () => {
    const { code, text } = await run((out) => validateCommand({ repoDir: repo, files: [], folders: ['nowhere'] }, out));
    expect(code).toBe(1);
    expect(text).toMatch(/no workflow files/);
  });
});

describe('validate: actions, reusable workflows and runs-on labels', () => {
  let dir: string;
  const catalog = buildCatalog().catalog;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'forgevm-validate-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const put = async (file: string, text: string) => {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  };

  it('warns about runs-on labels missing from the catalog (matrix values too), and still exits 0', async () => {
    await put(
      'labels.yml',
      'on: push\njobs:\n  test:\n    runs-on: ${{ matrix.os }}\n    strategy:\n      matrix:\n        os: [ubuntu-latest, windows-latest]\n    steps: [{run: x}]\n  mac:\n    runs-on: macos-latest\n    steps: [{run: x}]\n  fine:\n    runs-on: tiny\n    steps: [{run: x}]\n',
    );
    const { code, text } = await run((out) => validateCommand({ repoDir: dir, files: ['labels.yml'], catalog }, out));
    expect(code).toBe(0);
    const known = 'tiny, debian-13, debian-12, ubuntu-24.04, ubuntu-22.04, ubuntu-latest, debian-latest';
    expect(text.split('\n')).toEqual([
      `labels.yml:3:3: warning: jobs.test.runs-on: "windows-latest" is not an image in the catalog (${known}), so the job fails when it starts; add it under images: in the configuration, or name one of these`,
      `labels.yml:9:3: warning: jobs.mac.runs-on: "macos-latest" is not an image in the catalog (${known}), so the job fails when it starts; add it under images: in the configuration, or name one of these`,
      'ok: 1 workflow file(s), 2 warning(s)',
    ]);
    // Without a catalog (no configuration), nothing to warn about.
    expect((await run((out) => validateCommand({ repoDir: dir, files: ['labels.yml'] }, out))).text).toBe('ok: 1 workflow file(s)');
  });
  it('reports each unsupported action once per workflow, and exits 1', async () => {
    await put('docker.yml', 'on: push\njobs:\n  a:\n    runs-on: tiny\n    steps:\n      - uses: docker://alpine\n      - uses: actions/setup-node@v4\n      - uses: docker://alpine\n');
    const { code, text } = await run((out) => validateCommand({ repoDir: dir, files: ['docker.yml'], catalog }, out));
    expect(code).toBe(1);
    expect(text.split('\n')).toEqual([
      'docker.yml:6:15: jobs.a.steps[0]: docker actions (uses: docker://alpine) are not supported by forgevm; run the tool in a "run:" step instead (the VM is yours to install it in) (and 1 more step of this workflow)',
      '1 problem(s) in 1 of 1 workflow file(s)',
    ]);
  });
  it('reads the workflows a file calls from the repository, and their runs-on labels too', async () => {
    await put('.forgevm/workflows/ci.yml', 'on: push\njobs:\n  build:\n    uses: ./.github/workflows/build.yml\n    with: {level: 3}\n');
    await put('.github/workflows/build.yml', 'on:\n  workflow_call:\n    inputs:\n      level: {type: number}\njobs:\n  a:\n    runs-on: freebsd\n    steps: [{run: x}]\n');
    const ok = await run((out) => validateCommand({ repoDir: dir, files: [], catalog }, out));
    expect(ok.code).toBe(0);
    expect(ok.text.split('\n')).toEqual([expect.stringMatching(/^\.github\/workflows\/build\.yml:6:3: warning: jobs\.a\.runs-on: "freebsd" is not an image/), 'ok: 1 workflow file(s), 1 warning(s)']);
    await put('.github/workflows/build.yml', 'on:\n  workflow_call:\n    inputs:\n      level: {type: boolean}\njobs:\n  a:\n    runs-on: tiny\n    steps: [{run: x}]\n');
    const bad = await run((out) => validateCommand({ repoDir: dir, files: ['.forgevm/workflows/ci.yml'], catalog }, out));
    expect(bad.code).toBe(1);
    expect(bad.text.split('\n')).toEqual([
      '.forgevm/workflows/ci.yml:5:12: jobs.build.with.level: input "level" of .github/workflows/build.yml is a boolean; write true or false, not 3',
      '1 problem(s) in 1 of 1 workflow file(s)',
    ]);
  });
});

describe('plan: reusable workflows and jobs that cannot run', () => {
  it('lists the called jobs as caller / called, and a job whose matrix is over the limit as failing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'forgevm-plan-calls-'));
    try {
      const sh = (...args: string[]) => execa('git', args, { cwd: dir });
      await sh('init', '-q', '-b', 'main');
      await mkdir(path.join(dir, '.forgevm/workflows'), { recursive: true });
      await mkdir(path.join(dir, '.github/workflows'), { recursive: true });
      const big = JSON.stringify(Array.from({ length: 300 }, (_, i) => i));
      await writeFile(
        path.join(dir, '.forgevm/workflows/ci.yml'),
        `name: CI\non: push\njobs:\n  build:\n    name: Build\n    uses: ./.github/workflows/build.yml\n  huge:\n    runs-on: tiny\n    strategy:\n      matrix:\n        n: \${{ fromJSON('${big}') }}\n    steps: [{run: x}]\n`,
      );
      await writeFile(path.join(dir, '.github/workflows/build.yml'), 'on: workflow_call\njobs:\n  compile:\n    runs-on: tiny\n    steps: [{run: make}]\n');
      await sh('add', '-A');
      await sh('-c', 'user.email=t@example.com', '-c', 'user.name=T', 'commit', '-q', '-m', 'calls');
      const { code, text } = await run((out) => planCommand({ repoDir: dir, event: 'push' }, out));
      expect(code).toBe(0);
      const rows = text.split('\n').slice(2);
      expect(rows[0]).toMatch(/^CI\s+Build \/ compile\s+tiny\s+runs$/);
      expect(rows[1]).toMatch(/^CI\s+huge\s+tiny\s+fails\s+strategy\.matrix: the matrix has 300 combinations; GitHub's limit is 256$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
