import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadWorkflows, memorySource, isWorkflowPath } from '../src/workflow/load.ts';
import { parseWorkflow } from '../src/workflow/parse.ts';
import { JOB_KEYS, STEP_KEYS, WORKFLOW_KEYS } from '../src/workflow/schema.ts';

const FILE = '.forgevm/workflows/ci.yml';
const problemsOf = (text: string) => parseWorkflow(FILE, text).problems.map((p) => `${p.line}:${p.column}: ${p.message}`);

const GOOD = `name: CI
run-name: CI for \${{ github.ref_name }}
on:
  push:
    branches: [main, 'release/**']
    tags: ['v*']
    paths-ignore: ['docs/**']
  pull_request:
    types: [opened, synchronize]
    branches: [main]
  workflow_dispatch:
    inputs:
      level:
        description: how hard
        type: choice
        options: [low, high]
        default: low
        required: true
env:
  CI: true
  COUNT: 3
defaults:
  run:
    shell: bash
    working-directory: src
concurrency:
  group: ci-\${{ github.ref }}
  cancel-in-progress: true
jobs:
  build:
    name: Build \${{ matrix.os }}
    runs-on: \${{ matrix.os }}
    timeout-minutes: 30
    continue-on-error: \${{ matrix.experimental }}
    strategy:
      fail-fast: false
      max-parallel: 2
      matrix:
        os: [debian-12, ubuntu-24]
        experimental: [false]
        include:
          - os: debian-12
            extra: yes
        exclude:
          - os: ubuntu-24
            experimental: false
    outputs:
      version: \${{ steps.v.outputs.version }}
    env:
      TARGET: \${{ matrix.os }}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - id: v
        name: Version
        run: echo "version=1" >> "$GITHUB_OUTPUT"
        env:
          X: \${{ env.TARGET }}
        timeout-minutes: 5
        continue-on-error: true
        shell: sh
        working-directory: .
  test:
    needs: build
    if: github.event_name == 'push' && needs.build.result == 'success'
    runs-on: debian-12
    concurrency: tests
    steps:
      - run: make test
        if: \${{ failure() || hashFiles('x') != '' }}
`;

describe('parseWorkflow on a complete workflow', () => {
  const { workflow, problems } = parseWorkflow(FILE, GOOD);
  it('reports no problems', () => expect(problems).toEqual([]));
  it('reads the workflow-level keys', () => {
    expect(workflow?.name).toBe('CI');
    expect(workflow?.runName).toBe('CI for ${{ github.ref_name }}');
    expect(workflow?.env).toEqual({ CI: 'true', COUNT: '3' });
    expect(workflow?.defaults).toEqual({ shell: 'bash', workingDirectory: 'src' });
    expect(workflow?.concurrency).toEqual({ group: 'ci-${{ github.ref }}', cancelInProgress: true });
  });
  it('reads the triggers', () => {
    expect(workflow?.on.push).toEqual({ branches: ['main', 'release/**'], tags: ['v*'], pathsIgnore: ['docs/**'] });
    expect(workflow?.on.pullRequest).toEqual({ types: ['opened', 'synchronize'], branches: ['main'] });
    expect(workflow?.on.workflowDispatch?.inputs.level).toEqual({
      description: 'how hard',
      type: 'choice',
      options: ['low', 'high'],
      default: 'low',
      required: true,
    });
  });
  it('reads jobs in file order with every key', () => {
    expect(workflow?.jobs.map((j) => j.id)).toEqual(['build', 'test']);
    const build = workflow!.jobs[0]!;
    expect(build).toMatchObject({
      name: 'Build ${{ matrix.os }}',
      runsOn: '${{ matrix.os }}',
      timeoutMinutes: 30,
      continueOnError: '${{ matrix.experimental }}',
      outputs: { version: '${{ steps.v.outputs.version }}' },
      env: { TARGET: '${{ matrix.os }}' },
      needs: [],
      pos: { line: 30, column: 3 },
    });
    expect(build.strategy).toEqual({
      failFast: false,
      maxParallel: 2,
      matrix: {
        os: ['debian-12', 'ubuntu-24'],
        experimental: [false],
        include: [{ os: 'debian-12', extra: 'yes' }],
        exclude: [{ os: 'ubuntu-24', experimental: false }],
      },
    });
    const test = workflow!.jobs[1]!;
    expect(test.needs).toEqual(['build']);
    expect(test.if).toBe("github.event_name == 'push' && needs.build.result == 'success'");
    expect(test.concurrency).toEqual({ group: 'tests', cancelInProgress: false });
  });
  it('reads steps with every key', () => {
    const [checkout, version] = workflow!.jobs[0]!.steps;
    expect(checkout).toMatchObject({ index: 0, uses: 'actions/checkout@v4', with: { 'fetch-depth': '0' } });
    expect(version).toEqual({
      index: 1,
      id: 'v',
      name: 'Version',
      run: 'echo "version=1" >> "$GITHUB_OUTPUT"',
      with: {},
      env: { X: '${{ env.TARGET }}' },
      timeoutMinutes: 5,
      continueOnError: true,
      shell: 'sh',
      workingDirectory: '.',
      pos: { line: 55, column: 9 },
    });
  });
});

describe('on: forms', () => {
  const jobs = 'jobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n';
  it('accepts a string', () => {
    const { workflow } = parseWorkflow(FILE, `on: push\n${jobs}`);
    expect(workflow?.on).toEqual({ push: {} });
  });
  it('accepts a list, with the default pull_request types', () => {
    const { workflow, problems } = parseWorkflow(FILE, `on: [push, pull_request, schedule]\n${jobs}`);
    expect(problems).toEqual([]);
    expect(workflow?.on).toEqual({ push: {}, pullRequest: { types: ['opened', 'synchronize', 'reopened'] } });
  });
  it('accepts other GitHub events and rejects unknown ones with a hint', () => {
    expect(problemsOf(`on:\n  release:\n    types: [published]\n  pul_request:\n${jobs}`)).toEqual([
      '4:3: unknown event "pul_request" in on: (did you mean "pull_request"?)',
    ]);
  });
  it('uses the file path as the name when there is none', () => {
    expect(parseWorkflow(FILE, `on: push\n${jobs}`).workflow?.name).toBe(FILE);
  });
  it('reports a missing on:', () => {
    expect(problemsOf(jobs)).toEqual(['1:1: the workflow has no "on:" (which events start it)']);
  });
  it('reports branches together with branches-ignore, and bad patterns', () => {
    expect(problemsOf(`on:\n  push:\n    branches: [a]\n    branches-ignore: [b]\n    paths: ['x[']\n${jobs}`)).toEqual([
      '3:5: on.push cannot use both "branches" and "branches-ignore" (use "!" patterns in "branches" instead)',
      '5:12: on.push.paths: invalid filter pattern "x[": "[" at position 2 is never closed with "]"',
    ]);
  });
});

describe('problems', () => {
  const wrap = (job: string) => `on: push\njobs:\n${job}`;
  it('reports unknown keys with a suggestion', () => {
    expect(problemsOf(`on: push\nnmae: x\njobs:\n  a:\n    runs-on: x\n    step: []\n`)).toEqual([
      '2:1: unknown top-level key "nmae" (did you mean "name"?)',
      '4:3: jobs.a has no "steps"',
      '6:5: unknown key "step" in jobs.a (did you mean "steps"?)',
    ]);
  });
  it('reports wrong types', () => {
    expect(problemsOf(wrap('  a:\n    runs-on: x\n    timeout-minutes: soon\n    env: [1]\n    steps:\n      - run: x\n        continue-on-error: maybe\n'))).toEqual([
      '5:22: jobs.a.timeout-minutes must be a number or a ${{ }} expression, not a string',
      '6:10: jobs.a.env must be a mapping, not a list',
      '9:28: jobs.a.steps[0].continue-on-error must be true, false or a ${{ }} expression, not a string',
    ]);
  });
  it('reports missing runs-on and steps without run/uses or with both', () => {
    expect(problemsOf(wrap('  a:\n    steps:\n      - name: nothing\n      - run: x\n        uses: actions/checkout@v4\n'))).toEqual([
      '3:3: jobs.a has no "runs-on" (the VM image label to run on)',
      '5:9: jobs.a.steps[0] has neither "run" nor "uses"',
      '6:9: jobs.a.steps[1] has both "run" and "uses"; a step does one or the other',
    ]);
  });
  it('reports duplicate step ids', () => {
    expect(problemsOf(wrap('  a:\n    runs-on: x\n    steps:\n      - {id: s, run: x}\n      - {id: s, run: y}\n'))).toEqual([
      '7:9: jobs.a.steps[1]: duplicate step id "s"',
    ]);
  });
  it('reports unknown jobs in needs and cycles', () => {
    const text = wrap(
      '  a:\n    needs: [c, bb]\n    runs-on: x\n    steps: [{run: x}]\n' +
        '  b:\n    needs: c\n    runs-on: x\n    steps: [{run: x}]\n' +
        '  c:\n    needs: b\n    runs-on: x\n    steps: [{run: x}]\n',
    );
    expect(problemsOf(text)).toEqual([
      '3:3: jobs.a.needs: unknown job "bb" (did you mean "b"?)',
      '11:3: jobs.c: "needs" forms a cycle: c → b → c',
    ]);
  });
  it('reports expressions with bad syntax or contexts unavailable at that place', () => {
    expect(
      problemsOf(wrap("  a:\n    runs-on: ${{ steps.x }}\n    if: matrix.os == 'x'\n    steps:\n      - run: echo ${{ github.ref ==  }}\n")),
    ).toEqual([
      "4:14: jobs.a.runs-on: invalid expression ${{ steps.x }}: Unrecognized named-value: 'steps' (contexts available here: github, needs, strategy, matrix, vars, inputs)",
      "5:9: jobs.a.if: invalid expression ${{ matrix.os == 'x' }}: Unrecognized named-value: 'matrix' (contexts available here: github, needs, vars, inputs)",
      '7:14: jobs.a.steps[0].run: invalid expression ${{ github.ref == }}: Unexpected end of expression: \'==\'',
    ]);
  });
  it('reports status functions where GitHub does not allow them', () => {
    expect(problemsOf(wrap('  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ success() }}\n'))[0]).toMatch(
      /Unrecognized function: 'success' \(success\(\) cannot be used here; available: hashFiles\(\)\)/,
    );
  });
  it('names unsupported features', () => {
    expect(
      problemsOf(wrap('  a:\n    runs-on: x\n    services: {}\n    container: debian\n    steps:\n      - uses: docker://alpine\n  b:\n    uses: o/r/.github/workflows/x.yml@main\n')),
    ).toEqual([
      '5:5: service containers (jobs.<id>.services) are not supported by forgevm',
      '6:5: job containers (jobs.<id>.container) are not supported by forgevm',
      '8:15: jobs.a.steps[0].uses: action "docker://alpine" is not supported; forgevm runs "run:" steps and actions/checkout@<ref> only',
      '10:5: reusable workflows (jobs.<id>.uses) are not supported by forgevm',
    ]);
  });
  it('reports YAML syntax errors with their position', () => {
    const problems = problemsOf('on: push\njobs:\n  a: [\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^\d+:\d+: YAML: /);
    expect(problemsOf('on: push\non: pull_request\njobs: {}\n')[0]).toMatch(/^2:1: YAML: Map keys must be unique/);
  });
  it('reports a file that is not a mapping', () => {
    expect(problemsOf('- just\n- a list\n')).toEqual(['1:1: a workflow file must be a mapping with "on:" and "jobs:"']);
  });
  it('follows YAML anchors and aliases', () => {
    const text = 'on: push\njobs:\n  a:\n    runs-on: x\n    env: &e {A: "1"}\n    steps: [{run: x, env: *e}]\n';
    const { workflow, problems } = parseWorkflow(FILE, text);
    expect(problems).toEqual([]);
    expect(workflow?.jobs[0]?.steps[0]?.env).toEqual({ A: '1' });
  });
});

// A small seeded generator: random structures made of real workflow keys, and mutations of a
// valid file. The parser must answer with problems, never throw (nor hit its internal-error net).
describe('parseWorkflow never throws', () => {
  function rng(seed: number) {
    return () => {
      seed |= 0;
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const random = rng(20240601);
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const KEYS = [...WORKFLOW_KEYS, ...JOB_KEYS, ...STEP_KEYS, 'push', 'pull_request', 'workflow_dispatch', 'inputs', 'matrix',
    'include', 'exclude', 'branches', 'paths', 'types', 'group', 'run', 'services', 'uses', 'a', 'b'];
  const SCALARS: unknown[] = [null, true, false, 0, 7, -1.5, '', 'x', '${{ github.ref }}', '${{ matrix.os', "${{ '}}' }}", '${{ a.b }}',
    'actions/checkout@v4', '[skip ci]', '**', '!x', 'v[0-9', '\\'];
  const value = (depth: number): unknown => {
    const roll = random();
    if (depth > 3 || roll < 0.4) return pick(SCALARS);
    if (roll < 0.65) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    const obj: Record<string, unknown> = {};
    for (let i = Math.floor(random() * 4); i > 0; i--) obj[pick(KEYS)] = value(depth + 1);
    return obj;
  };
  const mutate = (text: string): string => {
    const chars = [...text];
    for (let i = Math.floor(random() * 6) + 1; i > 0; i--) {
      const at = Math.floor(random() * (chars.length + 1));
      const op = random();
      if (op < 0.4) chars.splice(at, 1);
      else if (op < 0.8) chars.splice(at, 0, pick([':', '-', ' ', '\n', '[', ']', '{', '}', '&a', '*a', '!', '|', '"', "'", '#', '${{', '}}']));
      else chars.splice(at, Math.floor(random() * 20));
    }
    return chars.join('');
  };

  // A compact base keeps the loop fast (the yaml package needs a few ms per full workflow here).
  const BASE = `on:
  push: {branches: [main, '!x'], paths-ignore: ['docs/**']}
  workflow_dispatch: {inputs: {a: {type: choice, options: [x]}}}
env: &e {A: "\${{ github.ref }}"}
jobs:
  b:
    runs-on: \${{ matrix.os }}
    needs: [c]
    if: success() && github.ref
    strategy: {matrix: {os: [a, b], include: [{os: c}]}}
    steps:
      - {id: s, uses: actions/checkout@v4, with: {ref: x}}
      - {run: "echo \${{ matrix.os }}", env: *e, timeout-minutes: 3}
  c: {runs-on: x, steps: [{run: y}], concurrency: {group: g}}
`;

  it('on 1000 generated structures and 1000 mutated workflows', () => {
    expect(parseWorkflow(FILE, BASE).problems).toEqual([]);
    for (let i = 0; i < 2000; i++) {
      const text = i % 2 === 0 ? stringify({ on: value(1), jobs: value(0), [pick(KEYS)]: value(2) }) : mutate(BASE);
      let result: ReturnType<typeof parseWorkflow> | undefined;
      expect(() => (result = parseWorkflow(FILE, text)), text).not.toThrow();
      const internal = result!.problems.find((p) => p.message.startsWith('internal error'));
      expect(internal, `${internal?.message}\n---\n${text}`).toBeUndefined();
      for (const p of result!.problems) expect(p.line).toBeGreaterThanOrEqual(1);
    }
  });
  it('on self-referencing aliases', () => {
    expect(() => parseWorkflow(FILE, 'on: &a [*a]\njobs: &b {x: *b}\n')).not.toThrow();
  });
});

describe('loadWorkflows', () => {
  it('reads *.yml and *.yaml directly in the configured folders of a directory', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'forgevm-load-'));
    try {
      await mkdir(path.join(dir, '.forgevm/workflows/sub'), { recursive: true });
      await mkdir(path.join(dir, 'ci'), { recursive: true });
      const ok = 'on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n';
      await writeFile(path.join(dir, '.forgevm/workflows/a.yml'), ok);
      await writeFile(path.join(dir, '.forgevm/workflows/b.yaml'), 'on: push\njobs: 3\n');
      await writeFile(path.join(dir, '.forgevm/workflows/notes.txt'), 'x');
      await writeFile(path.join(dir, '.forgevm/workflows/sub/c.yml'), ok);
      await writeFile(path.join(dir, 'ci/d.yml'), ok);
      const loaded = await loadWorkflows(dir);
      expect(loaded.workflows.map((w) => w.file)).toEqual(['.forgevm/workflows/a.yml', '.forgevm/workflows/b.yaml']);
      expect(loaded.invalidFiles).toEqual(['.forgevm/workflows/b.yaml']);
      expect(loaded.problems[0]?.message).toBe('jobs must be a mapping, not number');
      const both = await loadWorkflows(dir, ['.forgevm/workflows', 'ci/']);
      expect(both.workflows.map((w) => w.file)).toEqual(['.forgevm/workflows/a.yml', '.forgevm/workflows/b.yaml', 'ci/d.yml']);
      expect((await loadWorkflows(dir, ['missing'])).workflows).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('takes files from any source, e.g. a forge API', async () => {
    const source = memorySource([
      { path: '.github/workflows/x.yml', text: 'on: push\njobs: {}\n' },
      { path: 'README.md', text: '' },
    ]);
    const loaded = await loadWorkflows(source, ['.github/workflows']);
    expect(loaded.workflows.map((w) => w.file)).toEqual(['.github/workflows/x.yml']);
    expect(isWorkflowPath('.github/workflows/deep/x.yml', ['.github/workflows'])).toBe(false);
  });
});
