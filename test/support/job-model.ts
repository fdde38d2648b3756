/**
 * Test helpers: build workflow-model objects (JobDef, StepDef, JobInstance) from terse specs or
 * from a GitHub-style YAML file, without the real parser. Only the fields the step executor and
 * the graph runner read are filled.
 */
import { parse } from 'yaml';
import type { GithubContext, JobDef, JobInstance, PlannedJob, StepDef, Workflow } from '../../src/workflow/model.ts';

export type StepSpec = Partial<Omit<StepDef, 'index' | 'pos'>>;
export type JobSpec = Partial<Omit<JobDef, 'steps' | 'pos'>> & { steps?: StepSpec[] };

export function step(spec: StepSpec, index = 0): StepDef {
  return { index, with: {}, env: {}, continueOnError: false, pos: { line: 1, column: 1 }, ...spec };
}

export function jobDef(spec: JobSpec): JobDef {
  const { steps = [], ...rest } = spec;
  return {
    id: 'build',
    runsOn: 'tiny',
    needs: [],
    env: {},
    defaults: {},
    continueOnError: false,
    outputs: {},
    pos: { line: 1, column: 1 },
    ...rest,
    steps: steps.map((s, i) => step(s, i)),
  };
}

export function workflowOf(jobs: JobDef[], extra: Partial<Workflow> = {}): Workflow {
  return { file: '.forgevm/workflows/ci.yml', name: 'CI', on: {}, env: {}, defaults: {}, jobs, ...extra };
}

export function instanceOf(job: JobDef, workflow: Workflow = workflowOf([job]), matrix: Record<string, unknown> = {}, index = 0, total = 1): JobInstance {
  const values = Object.values(matrix);
  const suffix = values.length > 0 ? ` (${values.join(', ')})` : '';
  return {
    workflow,
    job,
    key: `${job.id}${suffix}`,
    displayName: `${job.name ?? job.id}${suffix}`,
    matrix,
    strategy: { failFast: job.strategy?.failFast ?? true, maxParallel: job.strategy?.maxParallel, jobIndex: index, jobTotal: total },
    runsOn: job.runsOn,
  };
}

export function planned(instance: JobInstance, skipReason?: string): PlannedJob {
  return { instance, decision: skipReason === undefined ? { runs: true } : { runs: false, reason: skipReason } };
}

export function githubContext(extra: Partial<GithubContext> = {}): GithubContext {
  return {
    event_name: 'push',
    event: { ref: 'refs/heads/main', head_commit: { message: 'hello "world"; $(rm -rf /)' } },
    sha: '0123456789abcdef0123456789abcdef01234567',
    ref: 'refs/heads/main',
    ref_name: 'main',
    ref_type: 'branch',
    head_ref: '',
    base_ref: '',
    repository: 'octo/demo',
    repository_owner: 'octo',
    run_id: '42',
    run_number: '7',
    run_attempt: '1',
    actor: 'octocat',
    workflow: 'CI',
    server_url: 'https://github.com',
    api_url: 'https://api.github.com',
    ...extra,
  };
}

// ---- YAML fixtures ------------------------------------------------------------------------------

type Raw = Record<string, unknown>;

const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));
const strMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries((v ?? {}) as Raw).map(([k, x]) => [k, typeof x === 'string' ? x : String(x)]));

function defaultsOf(v: unknown): { shell?: string; workingDirectory?: string } {
  const run = ((v ?? {}) as Raw).run as Raw | undefined;
  const out: { shell?: string; workingDirectory?: string } = {};
  if (run?.shell !== undefined) out.shell = String(run.shell);
  if (run?.['working-directory'] !== undefined) out.workingDirectory = String(run['working-directory']);
  return out;
}

/** A GitHub-style workflow file → model, for the fields forgevm's executor uses (test-only). */
export function workflowFromYaml(text: string, file = 'workflows/test.yml'): Workflow {
  const doc = parse(text) as Raw;
  const jobs = Object.entries(doc.jobs as Raw).map(([id, rawJob]): JobDef => {
    const j = rawJob as Raw;
    const strategy = j.strategy as Raw | undefined;
    const needs = j.needs === undefined ? [] : Array.isArray(j.needs) ? j.needs.map(String) : [String(j.needs)];
    const def: JobDef = {
      id,
      runsOn: String(j['runs-on'] ?? 'tiny'),
      needs,
      env: strMap(j.env),
      defaults: defaultsOf(j.defaults),
      continueOnError: (j['continue-on-error'] as boolean | string | undefined) ?? false,
      outputs: strMap(j.outputs),
      pos: { line: 1, column: 1 },
      steps: ((j.steps ?? []) as Raw[]).map((s, index): StepDef => {
        const sd: StepDef = {
          index,
          with: strMap(s.with),
          env: strMap(s.env),
          continueOnError: (s['continue-on-error'] as boolean | string | undefined) ?? false,
          pos: { line: 1, column: 1 },
        };
        if (s.id !== undefined) sd.id = String(s.id);
        if (s.name !== undefined) sd.name = String(s.name);
        if (s.if !== undefined) sd.if = String(s.if);
        if (s.run !== undefined) sd.run = String(s.run);
        if (s.uses !== undefined) sd.uses = String(s.uses);
        if (s.shell !== undefined) sd.shell = String(s.shell);
        if (s['working-directory'] !== undefined) sd.workingDirectory = String(s['working-directory']);
        if (s['timeout-minutes'] !== undefined) sd.timeoutMinutes = s['timeout-minutes'] as number | string;
        return sd;
      }),
    };
    if (j.name !== undefined) def.name = String(j.name);
    if (j.if !== undefined) def.if = String(j.if);
    if (j['timeout-minutes'] !== undefined) def.timeoutMinutes = j['timeout-minutes'] as number | string;
    if (strategy) {
      def.strategy = { failFast: strategy['fail-fast'] !== false, matrix: strategy.matrix as Raw };
      if (strategy['max-parallel'] !== undefined) def.strategy.maxParallel = Number(strategy['max-parallel']);
    }
    return def;
  });
  return {
    file,
    name: str(doc.name) ?? file,
    on: {},
    env: strMap(doc.env),
    defaults: defaultsOf(doc.defaults),
    jobs,
  };
}

/**
 * GitHub's matrix expansion, enough for the fixtures: the cross product of the axes, minus
 * `exclude` (partial matches), plus `include` (merged into matching combinations, else added).
 */
export function expandMatrix(matrix: Raw | undefined): Array<Record<string, unknown>> {
  if (!matrix) return [{}];
  const { include = [], exclude = [], ...axes } = matrix as Raw & { include?: Raw[]; exclude?: Raw[] };
  let combos: Array<Record<string, unknown>> = [{}];
  for (const [axis, values] of Object.entries(axes)) {
    combos = combos.flatMap((c) => (values as unknown[]).map((v) => ({ ...c, [axis]: v })));
  }
  if (Object.keys(axes).length === 0) combos = [];
  const matches = (c: Raw, partial: Raw): boolean => Object.entries(partial).every(([k, v]) => JSON.stringify(c[k]) === JSON.stringify(v));
  combos = combos.filter((c) => !exclude.some((e) => matches(c, e)));
  const axisNames = Object.keys(axes);
  const original = combos.map((c) => ({ ...c }));
  for (const inc of include) {
    let merged = false;
    combos.forEach((c, i) => {
      const base = original[i] as Raw;
      const axisPart = Object.fromEntries(Object.entries(inc).filter(([k]) => axisNames.includes(k)));
      // An include entry extends a combination when it does not overwrite any original axis value.
      if (matches(base, axisPart) && Object.entries(inc).every(([k, v]) => !(k in base) || JSON.stringify(base[k]) === JSON.stringify(v))) {
        Object.assign(c, inc);
        merged = true;
      }
    });
    if (!merged) combos.push({ ...inc });
  }
  return combos.length > 0 ? combos : [{}];
}

/** Every job instance of a workflow, matrix expanded, in file order. */
export function plannedJobsOf(workflow: Workflow): PlannedJob[] {
  return workflow.jobs.flatMap((job) => {
    const combos = expandMatrix(job.strategy?.matrix as Raw | undefined);
    return combos.map((m, i) => planned(instanceOf(job, workflow, m, i, combos.length)));
  });
}
