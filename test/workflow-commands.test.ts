import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
