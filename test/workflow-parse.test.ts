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
  it('names unsupported features with the job id, and what to do instead', () => {
    expect(
      problemsOf(wrap('  a:\n    runs-on: x\n    services: {}\n    container: debian\n    steps:\n      - uses: docker://alpine\n  b:\n    uses: o/r/.github/workflows/x.yml@main\n')),
    ).toEqual([
      '5:5: jobs.a.services: service containers are not supported by forgevm; start the service in a step instead (the VM is yours)',
      '6:5: jobs.a.container: job containers are not supported by forgevm; the job runs in a VM: pick the image with runs-on',
      '8:15: jobs.a.steps[0]: docker actions (uses: docker://alpine) are not supported by forgevm; run the tool in a "run:" step instead (the VM is yours to install it in)',
      '10:11: jobs.b.uses: reusable workflows from other repositories ("o/r/.github/workflows/x.yml@main") are not supported by forgevm; copy the workflow into this repository and call it as ./path/to/it.yml',
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

describe('step uses: and with:', () => {
  const steps = (...lines: string[]) => `on: push\njobs:\n  build:\n    runs-on: x\n    steps:\n${lines.map((l) => `      - ${l}\n`).join('')}`;
  it('accepts every form GitHub has: local path, owner/repo@ref, owner/repo/path@ref, full URL', () => {
    const { workflow, problems } = parseWorkflow(
      FILE,
      steps(
        'uses: ./.github/actions/setup',
        'uses: actions/setup-node@v4',
        'uses: github/codeql-action/init@0123456789abcdef0123456789abcdef01234567',
        'uses: https://code.forgejo.org/actions/upload-artifact@v4',
        'uses: dtolnay/rust-toolchain@master',
      ),
    );
    expect(problems).toEqual([]);
    expect(workflow!.jobs[0]!.steps.map((s) => s.uses)).toEqual([
      './.github/actions/setup',
      'actions/setup-node@v4',
      'github/codeql-action/init@0123456789abcdef0123456789abcdef01234567',
      'https://code.forgejo.org/actions/upload-artifact@v4',
      'dtolnay/rust-toolchain@master',
    ]);
  });
  it('refuses malformed references with what to write instead', () => {
    expect(
      problemsOf(steps('uses: actions/setup-node', 'uses: actions/setup-node@', "uses: actions/${{ matrix.x }}@v1", 'uses: ./../elsewhere', 'uses: ./.github/workflows/build.yml', 'uses: just-a-name@v1')),
    ).toEqual([
      '6:15: jobs.build.steps[0].uses: "actions/setup-node": a remote action needs a version: actions/setup-node@<tag, branch or SHA> (local actions start with "./")',
      '7:15: jobs.build.steps[1].uses: "actions/setup-node@": has an empty version after "@"',
      '8:15: jobs.build.steps[2].uses: "actions/${{ matrix.x }}@v1" holds an expression; GitHub resolves actions before the job runs, so uses: must be literal',
      '9:15: jobs.build.steps[3].uses: "./../elsewhere": a local action must stay inside the workspace (the path climbs out with "..")',
      '10:15: jobs.build.steps[4].uses: "./.github/workflows/build.yml" is a workflow, not an action; call a reusable workflow from a job (jobs.<id>.uses), not from a step',
      '11:15: jobs.build.steps[5].uses: "just-a-name@v1": names no repository; expected ./path, owner/repo@ref, owner/repo/path@ref, https://host/owner/repo@ref or docker://image',
    ]);
  });
  it('reports a docker action once per workflow, at its first step, with how many more use it', () => {
    const text = `on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: docker://alpine:3\n      - uses: docker://alpine:3\n  b:\n    runs-on: x\n    steps:\n      - uses: docker://alpine:3\n      - uses: docker://node:20\n`;
    expect(problemsOf(text)).toEqual([
      '6:15: jobs.a.steps[0]: docker actions (uses: docker://alpine:3) are not supported by forgevm; run the tool in a "run:" step instead (the VM is yours to install it in) (and 2 more steps of this workflow)',
      '12:15: jobs.b.steps[1]: docker actions (uses: docker://node:20) are not supported by forgevm; run the tool in a "run:" step instead (the VM is yours to install it in)',
    ]);
  });
  it('passes any scalar in with: as a string, as GitHub does (numbers lose their spelling)', () => {
    const { workflow, problems } = parseWorkflow(FILE, steps('uses: actions/setup-python@v5\n        with: {python-version: 3.10, cache: true, depth: 0, token: "${{ secrets.T }}", empty: }'));
    expect(problems).toEqual([]);
    expect(workflow!.jobs[0]!.steps[0]!.with).toEqual({ 'python-version': '3.1', cache: 'true', depth: '0', token: '${{ secrets.T }}', empty: '' });
  });
  it('checks with: expressions with the step contexts', () => {
    expect(problemsOf(steps('uses: a/b@v1\n        with: {x: "${{ jobs.y }}", ok: "${{ steps.s.outputs.o }}"}'))).toEqual([
      "7:15: jobs.build.steps[0].with.x: invalid expression ${{ jobs.y }}: Unrecognized named-value: 'jobs' (contexts available here: github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs)",
    ]);
  });
});

describe('environment: and other job keys', () => {
  const job = (extra: string) => `on: push\njobs:\n  deploy:\n    runs-on: x\n${extra}    steps: [{run: x}]\n`;
  it('keeps the environment name (and url), without protection rules', () => {
    expect(parseWorkflow(FILE, job('    environment: production\n')).workflow!.jobs[0]!.environment).toEqual({ name: 'production' });
    const mapped = parseWorkflow(FILE, job('    environment:\n      name: pypi\n      url: https://pypi.org/p/${{ github.event.repository.name }}\n'));
    expect(mapped.problems).toEqual([]);
    expect(mapped.workflow!.jobs[0]!.environment).toEqual({ name: 'pypi', url: 'https://pypi.org/p/${{ github.event.repository.name }}' });
  });
  it('reports an environment without a name, or with unknown keys', () => {
    expect(problemsOf(job('    environment:\n      url: x\n      rules: y\n'))).toEqual([
      '6:7: jobs.deploy.environment needs a "name"',
      '7:7: unknown key "rules" in jobs.deploy.environment',
    ]);
  });
  it('reports with: and secrets: on a job that calls nothing', () => {
    expect(problemsOf(job('    with: {a: 1}\n'))).toEqual([
      '5:5: jobs.deploy.with: only a job that calls a reusable workflow (uses: ./path/to/workflow.yml) takes "with"; a step passes inputs to an action with its own with:',
    ]);
  });
});

describe('jobs that call a reusable workflow', () => {
  const caller = (body: string) => `on: push\njobs:\n  call:\n${body}`;
  it('reads uses, with (typed), secrets and the keys GitHub allows with them', () => {
    const { workflow, problems } = parseWorkflow(
      FILE,
      caller(
        "    name: Build ${{ matrix.os }}\n    needs: [lint]\n    if: github.ref == 'refs/heads/main'\n    strategy: {matrix: {os: [a, b]}}\n    concurrency: build\n    permissions: {contents: read}\n    uses: ./.github/workflows/build.yml\n    with:\n      flavour: ${{ matrix.os }}\n      count: 3\n      debug: true\n    secrets: inherit\n  lint:\n    runs-on: x\n    steps: [{run: x}]\n",
      ),
    );
    expect(problems).toEqual([]);
    const job = workflow!.jobs[0]!;
    expect(job).toMatchObject({ name: 'Build ${{ matrix.os }}', needs: ['lint'], runsOn: '', steps: [], concurrency: { group: 'build', cancelInProgress: false } });
    expect(job.call).toMatchObject({
      uses: './.github/workflows/build.yml',
      path: '.github/workflows/build.yml',
      with: { flavour: '${{ matrix.os }}', count: 3, debug: true },
      secrets: 'inherit',
      pos: { line: 10, column: 11 },
    });
    const mapped = parseWorkflow(FILE, caller('    uses: ./ci/x.yaml\n    secrets:\n      token: ${{ secrets.NPM_TOKEN }}\n'));
    expect(mapped.problems).toEqual([]);
    expect(mapped.workflow!.jobs[0]!.call?.secrets).toEqual({ token: '${{ secrets.NPM_TOKEN }}' });
  });
  it('refuses job keys a call job cannot have, and bad references', () => {
    expect(problemsOf(caller('    runs-on: x\n    steps: [{run: x}]\n    environment: prod\n    uses: ./w.yml@main\n'))).toEqual([
      '4:5: jobs.call.runs-on: a job that calls a reusable workflow (uses:) cannot have "runs-on"; it belongs in the called workflow\'s jobs',
      '5:5: jobs.call.steps: a job that calls a reusable workflow (uses:) cannot have "steps"; it belongs in the called workflow\'s jobs',
      '6:5: jobs.call.environment: a job that calls a reusable workflow (uses:) cannot have "environment"; it belongs in the called workflow\'s jobs',
      '7:11: jobs.call.uses: "./w.yml@main": a workflow of this repository runs at the caller\'s commit, so it takes no @ref; drop it',
    ]);
    expect(problemsOf(caller('    uses: ./scripts/build.sh\n'))).toEqual(['4:11: jobs.call.uses: "./scripts/build.sh" is not a workflow file; name a .yml or .yaml file']);
    expect(problemsOf(caller('    uses: ./../other/x.yml\n'))).toEqual(['4:11: jobs.call.uses: "./../other/x.yml" leaves the repository']);
    expect(problemsOf(caller('    uses: ./x.yml\n    secrets: all\n'))).toEqual(['5:14: jobs.call.secrets must be "inherit" or a mapping of secret names to values']);
    expect(problemsOf(caller('    uses: build.yml\n'))).toEqual(['4:11: jobs.call.uses: "build.yml" is not a reusable workflow reference; write ./path/to/workflow.yml (a file of this repository)']);
    expect(problemsOf(caller('    uses: ./${{ matrix.w }}.yml\n'))).toEqual(['4:11: jobs.call.uses: "./${{ matrix.w }}.yml" holds an expression; the called workflow must be a literal path']);
    expect(problemsOf(caller('    uses: https://codeberg.org/o/r/.forgejo/workflows/x.yml@v1\n'))[0]).toMatch(/^4:11: jobs\.call\.uses: reusable workflows from other repositories/);
  });
  it('checks with: and secrets: expressions with the contexts GitHub allows there', () => {
    expect(problemsOf(caller('    uses: ./x.yml\n    with: {a: "${{ steps.s.outputs.o }}"}\n    secrets: {t: "${{ env.T }}"}\n'))).toEqual([
      "5:15: jobs.call.with.a: invalid expression ${{ steps.s.outputs.o }}: Unrecognized named-value: 'steps' (contexts available here: github, needs, strategy, matrix, inputs, vars)",
      "6:18: jobs.call.secrets.t: invalid expression ${{ env.T }}: Unrecognized named-value: 'env' (contexts available here: github, needs, strategy, matrix, secrets, inputs, vars)",
    ]);
  });
});

describe('on: workflow_call', () => {
  const callable = (on: string) => `on:\n  workflow_call:\n${on}jobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n`;
  it('reads inputs, outputs and secrets', () => {
    const { workflow, problems } = parseWorkflow(
      FILE,
      callable(
        '    inputs:\n      flavour: {type: string, required: true, description: which}\n      count: {type: number, default: 2}\n      debug: {type: boolean}\n      ref: {type: string, default: "${{ github.ref }}"}\n    outputs:\n      artifact: {description: the file, value: "${{ jobs.a.outputs.name }}"}\n    secrets:\n      token: {required: true}\n      optional:\n',
      ),
    );
    expect(problems).toEqual([]);
    expect(workflow!.on.workflowCall).toEqual({
      inputs: {
        flavour: { type: 'string', required: true, description: 'which' },
        count: { type: 'number', required: false, default: 2 },
        debug: { type: 'boolean', required: false },
        ref: { type: 'string', required: false, default: '${{ github.ref }}' },
      },
      outputs: { artifact: { description: 'the file', value: '${{ jobs.a.outputs.name }}' } },
      secrets: { token: { required: true }, optional: { required: false } },
    });
    expect(parseWorkflow(FILE, 'on: [push, workflow_call]\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n').workflow!.on.workflowCall).toEqual({ inputs: {}, outputs: {}, secrets: {} });
  });
  it('reports inputs without a type or of a type reusable workflows lack, bad defaults, outputs without value', () => {
    expect(
      problemsOf(
        callable(
          '    inputs:\n      a: {required: true}\n      b: {type: choice}\n      c: {type: boolean, default: "yes"}\n      d: {type: string, default: "${{ steps.x }}"}\n    outputs:\n      o: {description: x}\n      p: {value: "${{ steps.s.outputs.x }}"}\n    secrets:\n      s: {required: maybe}\n    concurrency: 1\n',
        ),
      ),
    ).toEqual([
      '4:7: on.workflow_call.inputs.a has no "type" (string, boolean or number); GitHub requires one for reusable workflow inputs',
      '5:17: on.workflow_call.inputs.b.type "choice" is not one of string, boolean, number (the types a reusable workflow input can have)',
      '6:35: on.workflow_call.inputs.c.default "yes" is not a boolean',
      "7:34: on.workflow_call.inputs.d.default: invalid expression ${{ steps.x }}: Unrecognized named-value: 'steps' (contexts available here: github, inputs, vars)",
      '9:7: on.workflow_call.outputs.o has no "value" (an expression such as ${{ jobs.<job>.outputs.<name> }})',
      "10:18: on.workflow_call.outputs.p.value: invalid expression ${{ steps.s.outputs.x }}: Unrecognized named-value: 'steps' (contexts available here: github, jobs, vars, inputs)",
      '12:21: on.workflow_call.secrets.s.required must be true or false',
      '13:5: unknown key "concurrency" in on.workflow_call',
    ]);
  });
});

describe('matrix size', () => {
  const matrix = (extra: string) =>
    `on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        x: [${Array.from({ length: 17 }, (_, i) => i).join(', ')}]\n        y: [${Array.from({ length: 16 }, (_, i) => i).join(', ')}]\n${extra}    steps: [{run: x}]\n`;
  it('reports a matrix over 256 combinations after include and exclude, before anything runs', () => {
    expect(problemsOf(matrix('        include: [{x: 99, y: 99}]\n'))).toEqual(["7:9: jobs.a.strategy.matrix: the matrix has 273 combinations; GitHub's limit is 256"]);
  });
  it('accepts the same axes once exclude brings them under the limit', () => {
    expect(problemsOf(matrix('        exclude: [{x: 0}, {x: 1}]\n'))).toEqual([]);
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
    'include', 'exclude', 'branches', 'paths', 'types', 'group', 'run', 'services', 'uses', 'a', 'b', 'workflow_call', 'outputs',
    'secrets', 'type', 'default', 'value', 'name', 'url'];
  const SCALARS: unknown[] = [null, true, false, 0, 7, -1.5, '', 'x', '${{ github.ref }}', '${{ matrix.os', "${{ '}}' }}", '${{ a.b }}',
    'actions/checkout@v4', '[skip ci]', '**', '!x', 'v[0-9', '\\', './x.yml', 'docker://a', 'inherit', 'o/r/w.yml@v1', 'boolean'];
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
