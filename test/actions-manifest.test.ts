import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseActionManifest, readActionManifest, unsupportedActionReason, type ActionManifest } from '../src/actions/manifest.ts';

function valid(text: string): ActionManifest {
  const result = parseActionManifest('acme/tool@v1/action.yml', text);
  if (!result.manifest) throw new Error(`expected a manifest, got problems:\n${result.problems.map((p) => `${p.line}:${p.column}: ${p.message}`).join('\n')}`);
  expect(result.problems).toEqual([]);
  return result.manifest;
}

/** Problems as `line:column: message`. */
function problems(text: string): string[] {
  const result = parseActionManifest('acme/tool@v1/action.yml', text);
  expect(result.manifest).toBeUndefined();
  for (const p of result.problems) expect(p.file).toBe('acme/tool@v1/action.yml');
  return result.problems.map((p) => `${p.line}:${p.column}: ${p.message}`);
}

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'forgevm-action-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

describe('JavaScript action manifests', () => {
  it('reads inputs, outputs and the pre/main/post stages, keeping default expressions raw', () => {
    const manifest = valid(`name: Setup Tool
description: Installs the tool
author: Acme
branding: { icon: box, color: blue }
inputs:
  version:
    description: which version
    required: true
    default: '1.2'
  token:
    description: to read releases
    default: \${{ github.token }}
  Old-Name:
    deprecationMessage: use version instead
    required: 'false'
  plain:
outputs:
  path:
    description: where it went
runs:
  using: Node20
  main: dist/index.js
  pre: dist/pre.js
  pre-if: runner.os == 'Linux'
  post: dist/post.js
`);
    expect(manifest).toEqual({
      file: 'acme/tool@v1/action.yml',
      name: 'Setup Tool',
      description: 'Installs the tool',
      author: 'Acme',
      inputs: {
        version: { description: 'which version', required: true, default: '1.2' },
        token: { description: 'to read releases', required: false, default: '${{ github.token }}' },
        'Old-Name': { deprecationMessage: 'use version instead', required: false },
        plain: { required: false },
      },
      outputs: { path: { description: 'where it went' } },
      runs: { using: 'node20', main: 'dist/index.js', pre: 'dist/pre.js', preIf: "runner.os == 'Linux'", post: 'dist/post.js', postIf: 'always()' },
    });
  });

  it('accepts node12, node16 and node24, and a manifest without name or description', () => {
    for (const using of ['node12', 'node16', 'node24']) expect(valid(`runs: { using: ${using}, main: index.js }`).runs.using).toBe(using);
    expect(valid('runs: { using: node20, main: index.js }').name).toBe('acme/tool@v1/action.yml');
  });

  it('reports problems with their line and column', () => {
    expect(problems('name: x\nruns:\n  using: node18\n  main: index.js\n')).toEqual(['3:10: runs.using "node18" is not one of node12, node16, node20, node24, composite, docker (use node20 or node24)']);
    expect(problems('name: x\nruns:\n  using: node20\n')).toEqual(['3:3: runs.main is required for a node20 action (the script to run, e.g. dist/index.js)']);
    expect(problems('name: x\nruns:\n  main: index.js\n')).toEqual(['3:3: runs has no "using" (one of node12, node16, node20, node24, composite, docker)']);
    expect(problems('name: x\ndescription: y\n')).toEqual(['1:1: the action has no "runs:" (how to run it: using node20, node24 or composite)']);
    expect(problems('name: x\nruns:\n  using: node20\n  main: index.js\n  post-if: failure(\n')).toEqual([expect.stringMatching(/^5:12: runs\.post-if: /)]);
    expect(problems('inputs:\n  who:\n    default: ${{ secrets.token }}\nruns: { using: node20, main: a.js }\n')).toEqual([
      "3:14: inputs.who.default: invalid expression ${{ secrets.token }}: Unrecognized named-value: 'secrets' (contexts available here: github, strategy, matrix, job, runner)",
    ]);
    expect(problems('name: [unclosed\n')[0]).toMatch(/^\d+:\d+: YAML: /);
    expect(problems('- just\n- a list\n')).toEqual(['1:1: an action metadata file must be a mapping with "name", "description", "inputs" and "runs"']);
    expect(problems('name: x\nname: y\nruns: { using: node20, main: a.js }\n')[0]).toMatch(/^2:1: YAML: Map keys must be unique/);
  });
});

describe('composite action manifests', () => {
  const COMPOSITE = `name: Build
description: builds and reports
inputs:
  target:
    default: all
outputs:
  artifact:
    description: what was built
    value: \${{ steps.build.outputs.path }}
runs:
  using: composite
  steps:
    - name: Build \${{ inputs.target }}
      id: build
      run: make \${{ inputs.target }}
      shell: bash
      working-directory: src
      env:
        CC: clang
      continue-on-error: true
    - uses: actions/upload-artifact@v4
      if: \${{ success() && inputs.target != '' }}
      with:
        name: build
        path: out/
    - uses: ./nested
      continue-on-error: \${{ inputs.target == 'optional' }}
`;

  it('reads the steps into the workflow model, with their positions', () => {
    const manifest = valid(COMPOSITE);
    expect(manifest.outputs).toEqual({ artifact: { description: 'what was built', value: '${{ steps.build.outputs.path }}' } });
    expect(manifest.runs.using).toBe('composite');
    if (manifest.runs.using !== 'composite') return;
    expect(manifest.runs.steps).toEqual([
      {
        index: 0,
        name: 'Build ${{ inputs.target }}',
        id: 'build',
        run: 'make ${{ inputs.target }}',
        shell: 'bash',
        workingDirectory: 'src',
        env: { CC: 'clang' },
        with: {},
        continueOnError: true,
        pos: { line: 13, column: 7 },
      },
      {
        index: 1,
        uses: 'actions/upload-artifact@v4',
        if: "${{ success() && inputs.target != '' }}",
        with: { name: 'build', path: 'out/' },
        env: {},
        continueOnError: false,
        pos: { line: 21, column: 7 },
      },
      { index: 2, uses: './nested', with: {}, env: {}, continueOnError: "${{ inputs.target == 'optional' }}", pos: { line: 26, column: 7 } },
    ]);
  });

  it('applies the composite rules: shell required, no timeout-minutes, contexts an action has', () => {
    expect(
      problems(`runs:
  using: composite
  steps:
    - run: echo \${{ secrets.TOKEN }}
    - uses: ../outside@v1
      shell: bash
    - run: sleep 1
      shell: sh
      timeout-minutes: 2
    - run: echo
      shell: sh
      if: needs.build.result == 'success'
outputs:
  o:
    value: \${{ vars.X }}
    label: x
`),
    ).toEqual([
      '4:7: runs.steps[0] has "run" but no "shell"; composite actions must name the shell of each run step (e.g. shell: bash)',
      "4:12: runs.steps[0].run: invalid expression ${{ secrets.TOKEN }}: Unrecognized named-value: 'secrets' (contexts available here: github, inputs, strategy, matrix, steps, job, runner, env)",
      '5:13: runs.steps[1].uses: "../outside@v1": a local action must start with "./" and stay inside the workspace',
      '6:7: runs.steps[1].shell is only allowed on run steps',
      "9:7: runs.steps[2].timeout-minutes is not allowed in a composite action's steps",
      "12:11: runs.steps[3].if: invalid expression ${{ needs.build.result == 'success' }}: Unrecognized named-value: 'needs' (contexts available here: github, inputs, strategy, matrix, steps, job, runner, env)",
      "15:12: outputs.o.value: invalid expression ${{ vars.X }}: Unrecognized named-value: 'vars' (contexts available here: github, strategy, matrix, steps, inputs, job, runner, env)",
      '16:5: unknown key "label" in outputs.o',
    ]);
    expect(problems('runs:\n  using: composite\n')).toEqual(['2:3: runs.steps is required for a composite action']);
    expect(problems('runs:\n  using: composite\n  steps: []\n')).toEqual(['3:10: runs.steps is empty; a composite action needs at least one step']);
    expect(problems('runs:\n  using: composite\n  steps:\n    - id: a\n      run: x\n      shell: sh\n    - id: a\n      run: y\n      shell: sh\n')).toEqual([
      '7:7: runs.steps[1]: duplicate step id "a"',
    ]);
  });
});

describe('Docker actions are recognised, so the caller can refuse them by name', () => {
  it('from runs.using: docker', () => {
    const manifest = valid('name: Boxed\nruns:\n  using: docker\n  image: Dockerfile\n  args: [a]\n');
    expect(manifest.runs).toEqual({ using: 'docker', image: 'Dockerfile' });
    expect(unsupportedActionReason('acme/boxed@v1', manifest)).toBe(
      'uses: "acme/boxed@v1" is a Docker container action (acme/tool@v1/action.yml), which forgevm does not run; use a JavaScript or composite action, or run the tool in a run: step',
    );
    expect(unsupportedActionReason('acme/tool@v1', valid('runs: { using: node20, main: a.js }'))).toBeUndefined();
    expect(problems('runs:\n  using: docker\n')).toEqual(['2:3: runs.image is required for a Docker action (a Dockerfile or docker://image)']);
  });

  it('from a folder with only a Dockerfile', async () => {
    const dir = folder({ Dockerfile: 'FROM alpine\n' });
    const { manifest, problems: found } = await readActionManifest(dir, { displayDir: 'acme/boxed@v1' });
    expect(found).toEqual([]);
    expect(manifest).toEqual({ file: 'acme/boxed@v1/Dockerfile', name: 'acme/boxed@v1', inputs: {}, outputs: {}, runs: { using: 'docker', image: 'Dockerfile' } });
  });
});

describe('finding the metadata file', () => {
  it('prefers action.yml, takes action.yaml, and says so when there is neither', async () => {
    const both = folder({ 'action.yml': 'name: yml\nruns: { using: node20, main: a.js }\n', 'action.yaml': 'name: yaml\nruns: { using: node20, main: a.js }\n' });
    expect((await readActionManifest(both, { displayDir: '.github/actions/x' })).manifest).toMatchObject({ name: 'yml', file: '.github/actions/x/action.yml' });
    const yaml = folder({ 'action.yaml': 'name: yaml\nruns: { using: node20, main: a.js }\n' });
    expect((await readActionManifest(yaml, { displayDir: '.github/actions/x' })).manifest).toMatchObject({ name: 'yaml', file: '.github/actions/x/action.yaml' });
    const broken = folder({ 'action.yaml': 'runs:\n  using: nodejs\n' });
    expect((await readActionManifest(broken, { displayDir: 'tools' })).problems).toEqual([
      { file: 'tools/action.yaml', line: 2, column: 10, message: 'runs.using "nodejs" is not one of node12, node16, node20, node24, composite, docker (use node20 or node24)' },
    ]);

    const empty = folder({ 'README.md': 'hi\n' });
    expect((await readActionManifest(empty, { displayDir: '.github/actions/x' })).problems).toEqual([
      { file: '.github/actions/x/action.yml', line: 1, column: 1, message: 'no action.yml or action.yaml in .github/actions/x; an action needs its metadata file there' },
    ]);
    expect((await readActionManifest(join(empty, 'missing'), { displayDir: '.github/actions/missing' })).problems[0]?.message).toBe(
      'there is no folder .github/actions/missing; check the path in uses:',
    );
  });

  it('refuses oversized files, non-files, and symlinks out of the repository', async () => {
    const big = folder({ 'action.yml': `name: big\ndescription: ${'x'.repeat(600 * 1024)}\nruns: { using: node20, main: a.js }\n` });
    expect((await readActionManifest(big, { displayDir: 'big' })).problems[0]?.message).toBe('action.yml is larger than 512 KiB; an action\'s metadata file is a few kilobytes');

    const repo = folder({ 'real/action.yml': 'name: linked\nruns: { using: node20, main: a.js }\n', 'sub/.keep': '' });
    symlinkSync('/etc/passwd', join(repo, 'sub', 'action.yml'));
    const outside = await readActionManifest(join(repo, 'sub'), { displayDir: 'acme/repo/sub@v1', root: repo });
    expect(outside.problems[0]?.message).toBe("action.yml is a symbolic link that leads out of the action's repository; refusing to read it");
    // A link that stays inside the repository is read, as GitHub's runner would.
    mkdirSync(join(repo, 'inside'));
    symlinkSync('../real/action.yml', join(repo, 'inside', 'action.yml'));
    expect((await readActionManifest(join(repo, 'inside'), { displayDir: 'inside', root: repo })).manifest?.name).toBe('linked');

    const dirInstead = folder({ 'action.yml/x': '' });
    expect((await readActionManifest(dirInstead, { displayDir: 'x' })).problems[0]?.message).toBe('action.yml is not a regular file');
  });

  it('never throws on hostile text: every input yields a manifest or problems', () => {
    const hostile = [
      '',
      '\0\0\0binary',
      '\uFEFFname: bom\nruns: { using: node20, main: a.js }\n',
      'a: &a [*a]\nruns: *a\n',
      `x: &x0 [1,1,1,1,1,1,1,1]\n${Array.from({ length: 12 }, (_, i) => `x${i + 1}: &x${i + 1} [*x${i}, *x${i}, *x${i}, *x${i}, *x${i}, *x${i}, *x${i}, *x${i}]`).join('\n')}\nruns: { using: composite, steps: *x12 }\n`,
      'runs: !!js/function "function () {}"\n',
      '[' .repeat(5000),
      'runs:\n  using: composite\n  steps:\n' + '    - run: x\n      shell: sh\n'.repeat(2000),
      'runs: { using: composite, steps: [ { uses: { a: b } }, 3, null, [ ] ] }\n',
      'inputs: [a, b]\noutputs: 3\nruns: { using: [node20], main: {} }\n',
      'runs: { using: node20, main: "" }\n',
    ];
    for (const text of hostile) {
      const result = parseActionManifest('action.yml', text);
      expect(result.manifest !== undefined || result.problems.length > 0).toBe(true);
      for (const p of result.problems) expect(p.message.split('\n')).toHaveLength(1);
    }
    expect(parseActionManifest('action.yml', hostile[2]!).manifest?.name).toBe('bom');
  });
});
