/**
 * Reusable workflows (`jobs.<id>.uses: ./path.yml`) from loading to the job graph: what
 * validation says about a call (with file:line:column), how the planner turns a call into the
 * called workflow's jobs (keys, names, needs, inputs, secrets rule), and how the graph runner
 * starts them and hands `needs.<caller>` on. The real loader, parser, planner and graph runner;
 * only the jobs themselves are fakes.
 */
import { describe, expect, it } from 'vitest';
import type { JobResult } from '../src/job/result.ts';
import { secretsForJob } from '../src/workflow/call-secrets.ts';
import { runJobGraph } from '../src/workflow/graph.ts';
import { loadWorkflows, memorySource, workflowSource, type WorkflowFile } from '../src/workflow/load.ts';
import type { NeedsEntry, PlannedJob } from '../src/workflow/model.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { githubContext } from './support/job-model.ts';

const CI = '.forgevm/workflows/ci.yml';
const BUILD = '.github/workflows/build.yml';

/** The called workflow most tests use: typed inputs, an output over its jobs, a required secret. */
const BUILD_YML = `name: Build
on:
  workflow_call:
    inputs:
      flavour: {type: string, required: true}
      count: {type: number, default: 1}
      debug: {type: boolean}
      label: {type: string, default: "\${{ github.ref_name }}-\${{ inputs.flavour }}"}
    outputs:
      artifact:
        value: \${{ jobs.package.outputs.name }}
    secrets:
      token: {required: true}
jobs:
  compile:
    runs-on: tiny
    steps: [{run: make}]
  package:
    needs: compile
    name: Package \${{ inputs.flavour }}
    runs-on: tiny
    outputs: {name: "\${{ steps.p.outputs.name }}"}
    steps: [{id: p, run: x}]
`;

const files = (extra: Record<string, string>): WorkflowFile[] => Object.entries(extra).map(([path, text]) => [path, text] as const).map(([path, text]) => ({ path, text }));
const load = (extra: Record<string, string>) => loadWorkflows(memorySource(files(extra)));
const problemsOf = async (extra: Record<string, string>) => (await load(extra)).problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);

const github = githubContext();
async function plan(extra: Record<string, string>): Promise<PlannedJob[]> {
  const loaded = await load(extra);
  expect(loaded.problems).toEqual([]);
  const [planned] = planWorkflows({ name: 'push', ref: github.ref, sha: github.sha, payload: {} }, loaded.workflows.filter((w) => w.file === CI), undefined, github);
  return planned!.jobs;
}

/** A fake runJob: records needs and inputs, sets outputs per job id, fails the listed keys. */
function fakeJobs(outputs: Record<string, (p: PlannedJob) => Record<string, string>> = {}, failing: string[] = []) {
  const seen: Record<string, { name: string; needs: Record<string, NeedsEntry>; inputs?: Record<string, unknown> }> = {};
  const order: string[] = [];
  const runJob = async (p: PlannedJob, needs: Record<string, NeedsEntry>, signal: AbortSignal): Promise<JobResult> => {
    order.push(p.instance.key);
    seen[p.instance.key] = { name: p.instance.displayName, needs, ...(p.instance.inputs ? { inputs: p.instance.inputs } : {}) };
    await new Promise((r) => setTimeout(r, 5));
    const conclusion = signal.aborted ? 'cancelled' : failing.includes(p.instance.key) ? 'failure' : 'success';
    return { conclusion, steps: [], outputs: outputs[p.instance.job.id]?.(p) ?? {}, logPath: '', startedAt: new Date().toISOString(), durationMs: 1 };
  };
  return { runJob, seen, order };
}
const conclusions = (m: Map<string, JobResult>) => Object.fromEntries([...m].map(([k, r]) => [k, r.error ? `${r.conclusion}: ${r.error}` : r.conclusion]));

describe('validating a call', () => {
  const caller = (job: string) => `on: push\njobs:\n  build:\n${job}`;
  it('loads a called workflow that lives outside the workflow folders, at the same commit', async () => {
    const loaded = await load({ [CI]: caller(`    uses: ./${BUILD}\n    with: {flavour: a}\n    secrets: inherit\n`), [BUILD]: BUILD_YML });
    expect(loaded.problems).toEqual([]);
    expect(loaded.workflows.map((w) => w.file)).toEqual([CI]);
    expect(loaded.workflows[0]!.jobs[0]!.call?.workflow?.name).toBe('Build');
  });
  it('reports a missing called file, one that is not callable, and one with problems (under its own name)', async () => {
    expect(await problemsOf({ [CI]: caller('    uses: ./.github/workflows/nope.yml\n') })).toEqual([
      `${CI}:4:11: jobs.build.uses: ./.github/workflows/nope.yml: no such file in the repository (at the commit being built); the path is relative to the repository root`,
    ]);
    expect(await problemsOf({ [CI]: caller(`    uses: ./${BUILD}\n`), [BUILD]: 'on: push\njobs:\n  a:\n    runs-on: tiny\n    steps: [{run: x}]\n' })).toEqual([
      `${CI}:4:11: jobs.build.uses: ${BUILD} cannot be called: its on: does not list workflow_call`,
    ]);
    expect(await problemsOf({ [CI]: caller(`    uses: ./${BUILD}\n`), [BUILD]: 'on: workflow_call\njobs:\n  a:\n    runs-on: tiny\n    stepz: []\n' })).toEqual([
      `${CI}:4:11: jobs.build.uses: the called workflow ${BUILD} has problems (listed under its name); fix them first`,
      `${BUILD}:3:3: jobs.a has no "steps"`,
      `${BUILD}:5:5: unknown key "stepz" in jobs.a (did you mean "steps"?)`,
    ]);
  });
  it('checks with: against the declared inputs: unknown names, required ones, literal types', async () => {
    expect(await problemsOf({ [CI]: caller(`    uses: ./${BUILD}\n    with:\n      flavor: a\n      count: many\n      debug: "yes"\n    secrets: inherit\n`), [BUILD]: BUILD_YML })).toEqual([
      `${CI}:4:11: jobs.build: input "flavour" of ${BUILD} is required, but with: does not give it`,
      `${CI}:6:7: jobs.build.with.flavor: "flavor" is not an input of ${BUILD} (did you mean "flavour"?); its inputs: flavour, count, debug, label`,
      `${CI}:7:7: jobs.build.with.count: input "count" of ${BUILD} is a number, not "many"`,
      `${CI}:8:7: jobs.build.with.debug: input "debug" of ${BUILD} is a boolean; write true or false, not "yes"`,
    ]);
  });
  it('checks an explicit secrets mapping against the declared secrets; inherit passes everything', async () => {
    expect(await problemsOf({ [CI]: caller(`    uses: ./${BUILD}\n    with: {flavour: a}\n    secrets:\n      tokne: x\n`), [BUILD]: BUILD_YML })).toEqual([
      `${CI}:4:11: jobs.build: secret "token" of ${BUILD} is required; pass it under secrets: or use secrets: inherit`,
      `${CI}:7:7: jobs.build.secrets.tokne: "tokne" is not a secret of ${BUILD} (did you mean "token"?); its secrets: token`,
    ]);
    expect(await problemsOf({ [CI]: caller(`    uses: ./${BUILD}\n    with: {FLAVOUR: a}\n    secrets: {TOKEN: x}\n`), [BUILD]: BUILD_YML })).toEqual([]);
  });
  it('refuses loops, direct or through other workflows', async () => {
    const a = 'on: [push, workflow_call]\njobs:\n  again:\n    uses: ./.github/workflows/b.yml\n';
    const b = 'on: workflow_call\njobs:\n  back:\n    uses: ./.forgevm/workflows/ci.yml\n';
    const problems = await problemsOf({ [CI]: a, '.github/workflows/b.yml': b });
    expect(problems).toContain('.github/workflows/b.yml:4:11: jobs.back.uses: calling .forgevm/workflows/ci.yml here makes a loop (.forgevm/workflows/ci.yml → .github/workflows/b.yml → .forgevm/workflows/ci.yml); a workflow cannot call itself, directly or through others');
    expect(problems).toContain(`${CI}:4:11: jobs.again.uses: the called workflow .github/workflows/b.yml has problems (listed under its name); fix them first`);
    expect(await problemsOf({ [CI]: 'on: [push, workflow_call]\njobs:\n  self:\n    uses: ./.forgevm/workflows/ci.yml\n' })).toEqual([
      `${CI}:4:11: jobs.self.uses: calling .forgevm/workflows/ci.yml here makes a loop (.forgevm/workflows/ci.yml → .forgevm/workflows/ci.yml); a workflow cannot call itself, directly or through others`,
    ]);
  });
  it("allows GitHub's ten levels of workflows and refuses an eleventh", async () => {
    const chain = (levels: number) => {
      const out: Record<string, string> = { [CI]: caller('    uses: ./w/1.yml\n') };
      for (let i = 1; i < levels - 1; i++) out[`w/${i}.yml`] = `on: workflow_call\njobs:\n  next:\n    uses: ./w/${i + 1}.yml\n`;
      out[`w/${levels - 1}.yml`] = 'on: workflow_call\njobs:\n  leaf:\n    runs-on: tiny\n    steps: [{run: x}]\n';
      return out;
    };
    expect(await problemsOf(chain(10))).toEqual([]);
    expect(await problemsOf(chain(11))).toEqual([
      `${CI}:4:11: jobs.build.uses: reusable workflows nest 11 levels deep here (${CI} → w/1.yml → w/2.yml → w/3.yml → w/4.yml → w/5.yml → w/6.yml → w/7.yml → w/8.yml → w/9.yml → w/10.yml); GitHub allows 10 (the caller and 9 called workflows)`,
    ]);
  });
  it('says so when the source cannot read single files', async () => {
    const listOnly = workflowSource(async () => files({ [CI]: caller(`    uses: ./${BUILD}\n`) }), async () => undefined);
    delete (listOnly as { readFile?: unknown }).readFile;
    const loaded = await loadWorkflows(listOnly);
    expect(loaded.problems.map((p) => p.message)).toEqual([`jobs.build.uses: cannot read ${BUILD} here (this source lists workflow folders only); run forgevm from the repository`]);
  });
});

describe('planning a call', () => {
  const CALLER = `name: CI
on: push
jobs:
  lint:
    runs-on: tiny
    steps: [{run: x}]
  build:
    name: Build
    needs: lint
    strategy:
      matrix: {flavour: [small, large]}
    uses: ./${BUILD}
    with:
      flavour: \${{ matrix.flavour }}
      count: 3
    secrets:
      token: \${{ secrets.NPM_TOKEN }}
  report:
    needs: build
    runs-on: tiny
    steps: [{run: x}]
`;
  it("turns each call instance into the called workflow's jobs, keyed and named caller / called", async () => {
    const jobs = await plan({ [CI]: CALLER, [BUILD]: BUILD_YML });
    expect(jobs.map((j) => [j.instance.key, j.instance.displayName, j.instance.job.needs])).toEqual([
      ['lint', 'lint', []],
      ['build (small) / compile', 'Build (small) / compile', []],
      ['build (small) / package', 'Build (small) / Package small', ['compile']],
      ['build (large) / compile', 'Build (large) / compile', []],
      ['build (large) / package', 'Build (large) / Package large', ['compile']],
      ['report', 'report', ['build']],
    ]);
    expect(jobs.every((j) => j.decision.runs)).toBe(true);
  });
  it('types the inputs and applies defaults (expressions included); unset ones are false, 0 or empty', async () => {
    const jobs = await plan({ [CI]: CALLER, [BUILD]: BUILD_YML });
    expect(jobs[1]!.instance.inputs).toEqual({ flavour: 'small', count: 3, debug: false, label: 'main-small' });
    expect(jobs[1]!.instance.call).toMatchObject({ key: 'build (small)', displayName: 'Build (small)', matrix: { flavour: 'small' }, callerInputs: {} });
  });
  it('gives the executor the secrets rule: a mapping evaluated in the caller, or everything with inherit', async () => {
    const jobs = await plan({ [CI]: CALLER, [BUILD]: BUILD_YML });
    expect(secretsForJob(jobs[1]!.instance, { NPM_TOKEN: 's3cret', OTHER: 'x' }, { github })).toEqual({ token: 's3cret' });
    expect(secretsForJob(jobs[0]!.instance, { NPM_TOKEN: 's3cret' }, { github })).toEqual({ NPM_TOKEN: 's3cret' });
    const inherited = await plan({ [CI]: CALLER.replace(/ {4}secrets:\n.*\n/, '    secrets: inherit\n'), [BUILD]: BUILD_YML });
    expect(secretsForJob(inherited[1]!.instance, { NPM_TOKEN: 's3cret', OTHER: 'x' }, { github })).toEqual({ NPM_TOKEN: 's3cret', OTHER: 'x' });
  });
  it("skips every called job when the caller's if: is false, with the caller's reason", async () => {
    const jobs = await plan({ [CI]: CALLER.replace('    needs: lint\n', "    needs: lint\n    if: github.ref == 'refs/heads/release'\n"), [BUILD]: BUILD_YML });
    expect(jobs.filter((j) => j.instance.call).map((j) => j.decision)).toEqual(
      Array(4).fill({ runs: false, reason: `calling job "build": if: github.ref == 'refs/heads/release' was false` }),
    );
    // report needs only skipped jobs: skipped too.
    expect(jobs.at(-1)!.decision).toEqual({ runs: false, reason: 'needs "build", which is skipped' });
  });
  it('fails (never skips) the called jobs when an input has the wrong type at plan time', async () => {
    const jobs = await plan({ [CI]: CALLER.replace('      count: 3\n', "      count: ${{ github.ref_name }}\n"), [BUILD]: BUILD_YML });
    expect(jobs[1]!.decision).toEqual({
      runs: false,
      failure: true,
      reason: `calling job "build": jobs.build.with.count (input "count" of ${BUILD}) must be a number, got the string "main"; a string needs fromJSON() to become one`,
    });
  });
  it('nests calls: keys and names carry every level', async () => {
    const middle = `on: workflow_call\njobs:\n  inner:\n    uses: ./${BUILD}\n    with: {flavour: nested}\n    secrets: inherit\n`;
    const jobs = await plan({ [CI]: 'on: push\njobs:\n  outer:\n    uses: ./w/middle.yml\n', 'w/middle.yml': middle, [BUILD]: BUILD_YML });
    expect(jobs.map((j) => [j.instance.key, j.instance.displayName])).toEqual([
      ['outer / inner / compile', 'outer / inner / compile'],
      ['outer / inner / package', 'outer / inner / Package nested'],
    ]);
    expect(jobs[0]!.instance.call?.parent?.key).toBe('outer');
  });
});

describe('running a call in the job graph', () => {
  const CALLER = `on: push
jobs:
  prepare:
    runs-on: tiny
    outputs: {flavour: "\${{ steps.s.outputs.flavour }}"}
    steps: [{id: s, run: x}]
  build:
    needs: prepare
    uses: ./${BUILD}
    with:
      flavour: \${{ needs.prepare.outputs.flavour }}
    secrets: inherit
  report:
    needs: build
    runs-on: tiny
    steps: [{run: x}]
`;
  const outputs = {
    prepare: () => ({ flavour: 'large' }),
    package: (p: PlannedJob) => ({ name: `pkg-${String(p.instance.inputs?.flavour)}` }),
  };
  it("waits for the caller's needs, evaluates with: then, and hands needs.<caller>.outputs from workflow_call outputs", async () => {
    const jobs = await plan({ [CI]: CALLER, [BUILD]: BUILD_YML });
    // with: reads needs: the name that uses inputs waits, like the inputs themselves.
    expect(jobs[1]!.instance.inputs).toBeUndefined();
    expect(jobs[2]!.instance.displayName).toBe('build / Package ${{ inputs.flavour }}');
    const f = fakeJobs(outputs);
    const results = await runJobGraph(jobs, f.runJob, { maxParallel: 4, contexts: { github } });
    expect(conclusions(results)).toEqual({ prepare: 'success', 'build / compile': 'success', 'build / package': 'success', report: 'success' });
    expect(f.order).toEqual(['prepare', 'build / compile', 'build / package', 'report']);
    expect(f.seen['build / compile']!.inputs).toEqual({ flavour: 'large', count: 1, debug: false, label: 'main-large' });
    expect(f.seen['build / package']!.needs).toEqual({ compile: { result: 'success', outputs: {} } });
    expect(f.seen.report!.needs).toEqual({ build: { result: 'success', outputs: { artifact: 'pkg-large' } } });
    // Expanded again once the inputs were known.
    expect(f.seen['build / package']!.name).toBe('build / Package large');
  });
  it('rolls up needs.<caller>.result: a failed called job fails it, and the default if: skips dependents', async () => {
    const jobs = await plan({ [CI]: CALLER, [BUILD]: BUILD_YML });
    const results = await runJobGraph(jobs, fakeJobs(outputs, ['build / compile']).runJob, { maxParallel: 4, contexts: { github } });
    expect(conclusions(results)).toEqual({ prepare: 'success', 'build / compile': 'failure', 'build / package': 'skipped', report: 'skipped' });
    const always = await plan({ [CI]: CALLER.replace('    needs: build\n', '    needs: build\n    if: always()\n'), [BUILD]: BUILD_YML });
    const f = fakeJobs(outputs, ['build / compile']);
    await runJobGraph(always, f.runJob, { maxParallel: 4, contexts: { github } });
    expect(f.seen.report!.needs.build).toEqual({ result: 'failure', outputs: {} });
  });
  it("skips the call when the caller's if: turns out false at run time", async () => {
    const jobs = await plan({ [CI]: CALLER.replace('    needs: prepare\n', "    needs: prepare\n    if: needs.prepare.outputs.flavour == 'tiny'\n"), [BUILD]: BUILD_YML });
    const results = await runJobGraph(jobs, fakeJobs(outputs).runJob, { maxParallel: 4, contexts: { github } });
    expect(conclusions(results)).toEqual({ prepare: 'success', 'build / compile': 'skipped', 'build / package': 'skipped', report: 'skipped' });
  });
  it('fails every job of the call, with the reason, when with: gives a bad value at run time', async () => {
    const jobs = await plan({ [CI]: CALLER.replace('      flavour: ${{ needs.prepare.outputs.flavour }}\n', '      flavour: x\n      count: ${{ needs.prepare.outputs.flavour }}\n'), [BUILD]: BUILD_YML });
    const results = await runJobGraph(jobs, fakeJobs(outputs).runJob, { maxParallel: 4, contexts: { github } });
    const why = `failure: job build: with.count (input "count" of ${BUILD}) must be a number, got the string "large"; a string needs fromJSON() to become one`;
    expect(conclusions(results)).toEqual({ prepare: 'success', 'build / compile': why, 'build / package': why, report: 'skipped' });
  });
  it("expands a called job's runs-on and matrix from inputs that waited for the caller's needs", async () => {
    const called = `on:\n  workflow_call:\n    inputs: {os: {type: string}, versions: {type: string}}\njobs:\n  test:\n    runs-on: \${{ inputs.os }}\n    strategy: {matrix: {v: "\${{ fromJSON(inputs.versions) }}"}}\n    steps: [{run: x}]\n`;
    const caller = `on: push\njobs:\n  prepare:\n    runs-on: tiny\n    outputs: {list: "\${{ steps.s.outputs.list }}"}\n    steps: [{id: s, run: x}]\n  call:\n    needs: prepare\n    uses: ./w/test.yml\n    with: {os: debian-13, versions: "\${{ needs.prepare.outputs.list }}"}\n`;
    const jobs = await plan({ [CI]: caller, 'w/test.yml': called });
    const runsOn: Record<string, string> = {};
    const f = fakeJobs({ prepare: () => ({ list: '[20, 22]' }) });
    const results = await runJobGraph(jobs, (p, needs, signal) => ((runsOn[p.instance.key] = p.instance.runsOn), f.runJob(p, needs, signal)), { maxParallel: 4, contexts: { github } });
    expect(conclusions(results)).toEqual({ prepare: 'success', 'call / test (20)': 'success', 'call / test (22)': 'success' });
    expect(runsOn['call / test (22)']).toBe('debian-13');
  });
  it("cancels the other call instances when one fails (the caller's fail-fast), and honours its max-parallel", async () => {
    const matrixCaller = `on: push\njobs:\n  build:\n    strategy:\n      max-parallel: 1\n      matrix: {flavour: [a, b, c]}\n    uses: ./${BUILD}\n    with: {flavour: "\${{ matrix.flavour }}"}\n    secrets: inherit\n`;
    const jobs = await plan({ [CI]: matrixCaller, [BUILD]: BUILD_YML });
    const f = fakeJobs({}, ['build (a) / package']);
    const results = await runJobGraph(jobs, f.runJob, { maxParallel: 4, contexts: { github } });
    expect(f.order).toEqual(['build (a) / compile', 'build (a) / package']);
    expect(conclusions(results)).toMatchObject({ 'build (a) / package': 'failure', 'build (b) / compile': 'cancelled', 'build (c) / package': 'cancelled' });
  });
});
