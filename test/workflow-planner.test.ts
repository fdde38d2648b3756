import { describe, expect, it } from 'vitest';
import { expandMatrix } from '../src/workflow/matrix.ts';
import type { GithubContext, PlannedWorkflow, Workflow } from '../src/workflow/model.ts';
import { parseWorkflow } from '../src/workflow/parse.ts';
import { planWorkflows, type PlanEvent } from '../src/workflow/planner.ts';

function workflow(text: string, file = '.forgevm/workflows/ci.yml'): Workflow {
  const { workflow, problems } = parseWorkflow(file, text);
  expect(problems).toEqual([]);
  return workflow!;
}

const github = (event: PlanEvent): GithubContext => ({
  event_name: event.name,
  event: event.payload,
  sha: event.sha,
  ref: event.ref,
  ref_name: event.ref.replace(/^refs\/(heads|tags)\//, ''),
  ref_type: event.ref.startsWith('refs/tags/') ? 'tag' : 'branch',
  head_ref: '',
  base_ref: event.baseRef ?? '',
  repository: 'o/r',
  repository_owner: 'o',
  run_id: '1',
  run_number: '1',
  run_attempt: '1',
  actor: 'mona',
  workflow: '',
  server_url: 'https://github.com',
  api_url: 'https://api.github.com',
});

const push = (ref: string, extra: Partial<PlanEvent> = {}): PlanEvent => ({ name: 'push', ref, sha: 'abc', payload: {}, ...extra });
const pr = (action: string, baseRef = 'main', extra: Partial<PlanEvent> = {}): PlanEvent => ({
  name: 'pull_request',
  action,
  ref: 'refs/heads/feature',
  baseRef,
  sha: 'abc',
  payload: {},
  ...extra,
});

function plan(text: string, event: PlanEvent, changed?: string[], vars?: Record<string, string>): PlannedWorkflow {
  return planWorkflows(event, [workflow(text)], changed, github(event), vars)[0]!;
}

const JOB = 'jobs:\n  build:\n    runs-on: debian\n    steps: [{run: make}]\n';

describe('triggers and filters', () => {
  const w = `on:\n  push:\n    branches: [main]\n    paths-ignore: ['docs/**']\n${JOB}`;
  it('runs a push to a listed branch', () => {
    const p = plan(w, push('refs/heads/main'), ['src/a.ts', 'docs/x.md']);
    expect(p.skipped).toBeUndefined();
    expect(p.jobs.map((j) => j.decision)).toEqual([{ runs: true }]);
  });
  it('explains a branch that is not listed', () => {
    expect(plan(w, push('refs/heads/release/1'), ['src/a.ts']).skipped).toBe('branch "release/1" not in branches [main]');
  });
  it('explains paths-ignore matching every changed file', () => {
    expect(plan(w, push('refs/heads/main'), ['docs/a.md', 'docs/b/c.md']).skipped).toBe('paths-ignore "docs/**" matched every changed file');
  });
  it('passes path filters when the changed files are unknown', () => {
    expect(plan(`on:\n  push:\n    paths: ['src/**']\n${JOB}`, push('refs/heads/x'), undefined).skipped).toBeUndefined();
  });
  it('requires a changed file to match paths', () => {
    const text = `on:\n  push:\n    paths: ['src/**', '!src/**/*.md']\n${JOB}`;
    expect(plan(text, push('refs/heads/x'), ['src/README.md']).skipped).toBe('no changed file matched paths [src/**, !src/**/*.md]');
    expect(plan(text, push('refs/heads/x'), ['src/README.md', 'src/a.c']).skipped).toBeUndefined();
  });
  it('explains branches-ignore', () => {
    const text = `on:\n  push:\n    branches-ignore: ['dependabot/**']\n${JOB}`;
    expect(plan(text, push('refs/heads/dependabot/npm/x'), []).skipped).toBe('branch "dependabot/npm/x" matched branches-ignore "dependabot/**"');
  });
  it('matches tags, ignores path filters for tags, and keeps branch-only filters off tags', () => {
    const tags = `on:\n  push:\n    tags: ['v*']\n    paths: ['src/**']\n${JOB}`;
    expect(plan(tags, push('refs/tags/v1.2'), ['docs/x']).skipped).toBeUndefined();
    expect(plan(tags, push('refs/tags/x1'), []).skipped).toBe('tag "x1" not in tags [v*]');
    expect(plan(tags, push('refs/heads/main'), ['src/a']).skipped).toBe('branch "main" pushed, but on.push only filters tags');
    expect(plan(`on:\n  push:\n    branches: ['**']\n${JOB}`, push('refs/tags/v1')).skipped).toBe('tag "v1" pushed, but on.push only filters branches');
    expect(plan(`on: push\n${JOB}`, push('refs/tags/v1')).skipped).toBeUndefined();
  });
  it('does not run on branch deletions', () => {
    expect(plan(`on: push\n${JOB}`, push('refs/heads/gone', { deleted: true })).skipped).toBe(
      'a branch or tag deletion does not trigger push workflows',
    );
  });
  it('explains an event the workflow does not list', () => {
    expect(plan(`on: pull_request\n${JOB}`, push('refs/heads/main')).skipped).toBe('on: does not include push');
    expect(plan(`on: push\n${JOB}`, { ...push('refs/heads/main'), name: 'issues' }).skipped).toBe(
      'forgevm does not start workflows on "issues" events',
    );
  });
});

describe('pull_request', () => {
  it('runs on opened, synchronize (or Forgejo synchronized) and reopened by default', () => {
    const text = `on: pull_request\n${JOB}`;
    for (const action of ['opened', 'synchronize', 'synchronized', 'reopened']) expect(plan(text, pr(action)).skipped, action).toBeUndefined();
    expect(plan(text, pr('closed')).skipped).toBe('pull_request action "closed" not in types [opened, synchronize, reopened]');
  });
  it('honours types and filters branches on the base branch', () => {
    const text = `on:\n  pull_request:\n    types: [closed]\n    branches: [main]\n${JOB}`;
    expect(plan(text, pr('closed', 'main')).skipped).toBeUndefined();
    expect(plan(text, pr('closed', 'dev')).skipped).toBe('base branch "dev" not in branches [main]');
  });
  it('applies path filters to the PR changes', () => {
    const text = `on:\n  pull_request:\n    paths-ignore: ['**.md']\n${JOB}`;
    expect(plan(text, pr('opened'), ['README.md', 'a/b.md']).skipped).toBe('paths-ignore "**.md" matched every changed file');
  });
});

describe('skip markers', () => {
  for (const marker of ['[skip ci]', '[ci skip]', '[no ci]', '[skip actions]', '[actions skip]']) {
    it(`skips a push whose head commit says ${marker}`, () => {
      expect(plan(`on: push\n${JOB}`, push('refs/heads/main', { headCommitMessage: `fix typo ${marker}\n\nbody` })).skipped).toBe(
        `skip marker "${marker}" in the head commit message`,
      );
    });
  }
  it('uses the PR head commit message for pull requests, and ignores markers for workflow_dispatch', () => {
    expect(plan(`on: pull_request\n${JOB}`, pr('synchronize', 'main', { headCommitMessage: 'wip [skip ci]' })).skipped).toMatch(/skip marker/);
    const dispatch: PlanEvent = { name: 'workflow_dispatch', ref: 'refs/heads/main', sha: 'a', payload: {}, headCommitMessage: '[skip ci]' };
    expect(plan(`on: workflow_dispatch\n${JOB}`, dispatch).skipped).toBeUndefined();
  });
});

describe('matrix expansion (GitHub docs examples)', () => {
  it('expands include as the docs describe', () => {
    const combos = expandMatrix({
      fruit: ['apple', 'pear'],
      animal: ['cat', 'dog'],
      include: [
        { color: 'green' },
        { color: 'pink', animal: 'cat' },
        { fruit: 'apple', shape: 'circle' },
        { fruit: 'banana' },
        { fruit: 'banana', animal: 'cat' },
      ],
    });
    expect(combos).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
  });
  it('applies partial exclude entries before include', () => {
    const combos = expandMatrix({
      os: ['macos-latest', 'windows-latest'],
      version: [12, 14, 16],
      environment: ['staging', 'production'],
      exclude: [{ os: 'macos-latest', version: 12, environment: 'production' }, { os: 'windows-latest', version: 16 }],
      include: [{ os: 'windows-latest', version: 16, environment: 'staging', extra: true }],
    });
    expect(combos).toHaveLength(10);
    expect(combos.at(-1)).toEqual({ os: 'windows-latest', version: 16, environment: 'staging', extra: true });
    expect(combos).not.toContainEqual({ os: 'macos-latest', version: 12, environment: 'production' });
  });
  it('expands an include-only matrix and rejects empty axes', () => {
    expect(expandMatrix({ include: [{ a: 1 }, { a: 2, b: 3 }] })).toEqual([{ a: 1 }, { a: 2, b: 3 }]);
    expect(() => expandMatrix({ os: [] })).toThrow(/no values/);
  });
});

describe('job instances', () => {
  const text = `on: [push, workflow_dispatch]
jobs:
  test:
    runs-on: \${{ matrix.os }}
    strategy:
      fail-fast: false
      matrix:
        os: [debian, ubuntu]
        node: [18, 20]
        exclude: [{os: ubuntu, node: 18}]
    steps: [{run: make}]
  named:
    name: Node \${{ matrix.node }}
    runs-on: debian
    strategy:
      matrix: \${{ fromJSON('{"node":[20,22]}') }}
    steps: [{run: make}]
`;
  it('expands matrices, evaluates runs-on and names with the matrix values', () => {
    const p = plan(text, push('refs/heads/main'));
    expect(p.jobs.map((j) => [j.instance.key, j.instance.displayName, j.instance.runsOn])).toEqual([
      ['test (debian, 18)', 'test (debian, 18)', 'debian'],
      ['test (debian, 20)', 'test (debian, 20)', 'debian'],
      ['test (ubuntu, 20)', 'test (ubuntu, 20)', 'ubuntu'],
      ['named (20)', 'Node 20', 'debian'],
      ['named (22)', 'Node 22', 'debian'],
    ]);
    expect(p.jobs[2]!.instance.strategy).toEqual({ failFast: false, jobIndex: 2, jobTotal: 3 });
    expect(p.jobs[2]!.instance.matrix).toEqual({ os: 'ubuntu', node: 20 });
  });
});

describe('job if: at plan time', () => {
  const text = `on: [push, workflow_dispatch]
on_note: x
jobs:
  a:
    if: github.event_name == 'push'
    runs-on: debian
    steps: [{run: x}]
  b:
    needs: a
    runs-on: debian
    steps: [{run: x}]
  c:
    needs: a
    if: always()
    runs-on: debian
    steps: [{run: x}]
  d:
    if: needs.a.result == 'failure' || vars.FORCE == 'yes'
    needs: c
    runs-on: debian
    steps: [{run: x}]
  e:
    if: \${{ inputs.deploy && vars.ZONE == 'eu' }}
    runs-on: debian
    strategy: {matrix: {env: [dev, prod]}}
    steps: [{run: x}]
`.replace('on_note: x\n', '');
  const dispatch: PlanEvent = { name: 'workflow_dispatch', ref: 'refs/heads/main', sha: 'a', payload: {}, inputs: { deploy: 'true' } };
  const withInputs = text.replace('on: [push, workflow_dispatch]', 'on:\n  push:\n  workflow_dispatch:\n    inputs:\n      deploy: {type: boolean, default: false}');

  it('decides conditions that read only plan-time contexts', () => {
    const p = plan(withInputs, dispatch, undefined, { ZONE: 'eu' });
    const verdicts = Object.fromEntries(p.jobs.map((j) => [j.instance.key, j.decision]));
    expect(verdicts['a']).toEqual({ runs: false, reason: "if: github.event_name == 'push' was false" });
    expect(verdicts['e (dev)']).toEqual({ runs: true });
    expect(verdicts['e (prod)']).toEqual({ runs: true });
    const us = plan(withInputs, dispatch, undefined, { ZONE: 'us' });
    expect(us.jobs.find((j) => j.instance.key === 'e (dev)')!.decision).toEqual({
      runs: false,
      reason: "if: ${{ inputs.deploy && vars.ZONE == 'eu' }} was false",
    });
  });
  it('skips jobs needing a skipped job unless their if: uses a status function', () => {
    const p = plan(withInputs, dispatch);
    const verdicts = Object.fromEntries(p.jobs.map((j) => [j.instance.key, j.decision]));
    expect(verdicts['b']).toEqual({ runs: false, reason: 'needs "a", which is skipped' });
    expect(verdicts['c']).toEqual({ runs: true });
    // d reads needs: only the graph runner can decide.
    expect(verdicts['d']).toEqual({ runs: true });
  });
  it('types workflow_dispatch inputs and applies defaults', () => {
    const p = plan(withInputs, { ...dispatch, inputs: {} }, undefined, { ZONE: 'eu' });
    expect(p.jobs.filter((j) => j.instance.job.id === 'e').map((j) => j.decision.runs)).toEqual([false, false]);
  });
  it('lists the jobs of a skipped workflow with their own verdicts', () => {
    const p = plan(`on: pull_request\n${JOB}`, push('refs/heads/main'));
    expect(p.skipped).toBe('on: does not include push');
    expect(p.jobs).toHaveLength(1);
  });
});

describe('matrix problems', () => {
  // A skipped check counts as passing for branch protection: a job that cannot run because of an
  // error must fail, with the reason.
  it('fails a job whose matrix cannot be expanded, with the reason', () => {
    const text = `on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix: \${{ fromJSON('[1]') }}\n    steps: [{run: x}]\n`;
    const p = plan(text, push('refs/heads/main'));
    expect(p.jobs[0]!.decision).toEqual({ runs: false, failure: true, reason: 'strategy.matrix: strategy.matrix must evaluate to a mapping' });
  });
  it('fails a job whose fromJSON matrix exceeds 256 combinations', () => {
    const axis = JSON.stringify(Array.from({ length: 300 }, (_, i) => i));
    const text = `on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        n: \${{ fromJSON('${axis}') }}\n    steps: [{run: x}]\n`;
    expect(plan(text, push('refs/heads/main')).jobs[0]!.decision).toEqual({
      runs: false,
      failure: true,
      reason: "strategy.matrix: the matrix has 300 combinations; GitHub's limit is 256",
    });
  });
  it('fails a job whose if: cannot be evaluated', () => {
    const text = `on: push\njobs:\n  a:\n    if: fromJSON('{oops') == 1\n    runs-on: x\n    steps: [{run: x}]\n`;
    const decision = plan(text, push('refs/heads/main')).jobs[0]!.decision;
    expect(decision).toMatchObject({ runs: false, failure: true });
    expect(decision.runs === false && decision.reason).toMatch(/^if: fromJSON\('\{oops'\) == 1 could not be evaluated: /);
  });
  it('defers a matrix that reads needs to the graph runner', () => {
    const text = `on: push\njobs:\n  a:\n    runs-on: x\n    outputs: {list: x}\n    steps: [{run: x}]\n  b:\n    needs: a\n    runs-on: x\n    strategy:\n      matrix:\n        v: \${{ fromJSON(needs.a.outputs.list) }}\n    steps: [{run: x}]\n`;
    const p = plan(text, push('refs/heads/main'));
    expect(p.jobs.map((j) => [j.instance.key, j.decision.runs])).toEqual([
      ['a', true],
      ['b', true],
    ]);
  });
});
