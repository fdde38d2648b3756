/** `jobs:`: each job's keys, with the per-place expression checks (steps: parse-steps.ts). */
import { isMap, isScalar, isSeq } from 'yaml';
import { expandMatrix, MatrixError } from './matrix.ts';
import type { JobDef, Strategy } from './model.ts';
import { parseCallSecrets, parseCallUses, parseCallWith, parseEnvironment } from './parse-job-call.ts';
import { ID_PATTERN, JOB_STEP_RULES, newStepsContext, parseSteps, type StepsContext } from './parse-steps.ts';
import { checkCondition, checkExpressions, checkStringMap, parseConcurrency, parseDefaults } from './parse-values.ts';
import { CALL_JOB_KEYS, JOB_KEYS, SCOPES, UNSUPPORTED_JOB_KEYS } from './schema.ts';
import { type AnyNode, didYouMean, type YamlReader } from './yaml-reader.ts';

export function parseJobs(r: YamlReader, node: AnyNode, workflowNode: AnyNode): JobDef[] {
  const n = r.resolve(node);
  if (!n) {
    r.problem(workflowNode, 'the workflow has no "jobs:"');
    return [];
  }
  const map = r.map(n, 'jobs');
  if (!map) return [];
  const jobs: JobDef[] = [];
  const steps = newStepsContext();
  for (const { key, keyNode, value } of r.entries(map, 'jobs')) {
    if (!ID_PATTERN.test(key)) {
      r.problem(keyNode, `job id "${key}" must start with a letter or "_" and contain only letters, digits, "-" and "_"`);
    }
    const job = parseJob(r, key, keyNode, value, steps);
    if (job) jobs.push(job);
  }
  if (jobs.length === 0 && map.items.length === 0) r.problem(map, 'jobs: is empty; a workflow needs at least one job');
  return jobs;
}

function parseJob(r: YamlReader, id: string, keyNode: AnyNode, node: AnyNode, stepsContext: StepsContext): JobDef | undefined {
  const where = `jobs.${id}`;
  const map = r.map(node, where);
  if (!map) return undefined;
  const job: JobDef = {
    id,
    runsOn: '',
    needs: [],
    env: {},
    defaults: {},
    continueOnError: false,
    outputs: {},
    steps: [],
    pos: r.pos(keyNode),
  };
  const calls = map.has('uses');
  let sawRunsOn = false;
  let sawSteps = false;
  for (const { key, keyNode: k, value } of r.entries(map, where)) {
    const at = `${where}.${key}`;
    if (calls && (JOB_KEYS as readonly string[]).includes(key) && !(CALL_JOB_KEYS as readonly string[]).includes(key)) {
      r.problem(k, `${at}: a job that calls a reusable workflow (uses:) cannot have "${key}"; it belongs in the called workflow's jobs`);
      continue;
    }
    switch (key) {
      case 'name': {
        const s = r.string(value, at);
        if (s !== undefined) {
          job.name = s;
          checkExpressions(r, value, s, SCOPES.jobName, at);
        }
        break;
      }
      case 'runs-on':
        sawRunsOn = true;
        job.runsOn = parseRunsOn(r, value, at) ?? '';
        break;
      case 'needs':
        job.needs = r.stringList(value, at) ?? [];
        break;
      case 'if': {
        const s = r.string(value, at);
        if (s !== undefined) {
          job.if = s;
          checkCondition(r, value, s, SCOPES.jobIf, at);
        }
        break;
      }
      case 'env':
        job.env = r.stringMap(value, at);
        checkStringMap(r, value, job.env, SCOPES.jobEnv, at);
        break;
      case 'defaults':
        job.defaults = parseDefaults(r, value, at, SCOPES.jobDefaults);
        break;
      case 'timeout-minutes': {
        const v = r.numberOrExpression(value, at);
        if (v !== undefined) job.timeoutMinutes = v;
        if (typeof v === 'string') checkExpressions(r, value, v, SCOPES.jobTimeout, at);
        break;
      }
      case 'continue-on-error': {
        const v = r.boolOrExpression(value, at);
        if (v !== undefined) job.continueOnError = v;
        if (typeof v === 'string') checkExpressions(r, value, v, SCOPES.jobContinueOnError, at);
        break;
      }
      case 'outputs':
        job.outputs = r.stringMap(value, at);
        checkStringMap(r, value, job.outputs, SCOPES.jobOutputs, at);
        break;
      case 'strategy': {
        const strategy = parseStrategy(r, value, at);
        if (strategy) job.strategy = strategy;
        break;
      }
      case 'concurrency': {
        const c = parseConcurrency(r, value, at, SCOPES.jobConcurrency);
        if (c) job.concurrency = c;
        break;
      }
      case 'steps':
        sawSteps = true;
        job.steps = parseSteps(r, value, at, JOB_STEP_RULES, stepsContext);
        break;
      case 'environment': {
        const environment = parseEnvironment(r, value, at);
        if (environment) job.environment = environment;
        break;
      }
      case 'uses': {
        const target = parseCallUses(r, value, at);
        if (target) job.call = { ...target, with: {}, secrets: {}, pos: r.pos(value), keyPos: {} };
        break;
      }
      case 'with':
      case 'secrets':
        break; // read below, once `uses:` is known
      case 'permissions':
        break; // GitHub token scopes; forgevm has no per-job token, so there is nothing to restrict.
      default: {
        const unsupported = UNSUPPORTED_JOB_KEYS[key];
        if (unsupported) r.problem(k, `${at}: ${unsupported}`);
        else r.problem(k, `unknown key "${key}" in ${where}${didYouMean(key, [...JOB_KEYS, ...Object.keys(UNSUPPORTED_JOB_KEYS)])}`);
      }
    }
  }
  for (const key of ['with', 'secrets'] as const) {
    const pair = map.items.find((item) => isScalar(item.key) && item.key.value === key);
    if (!pair) continue;
    if (!calls) {
      r.problem(pair.key, `${where}.${key}: only a job that calls a reusable workflow (uses: ./path/to/workflow.yml) takes "${key}"; a step passes inputs to an action with its own with:`);
    } else if (job.call && key === 'with') {
      job.call.with = parseCallWith(r, pair.value as AnyNode, `${where}.with`, job.call.keyPos);
    } else if (job.call) {
      job.call.secrets = parseCallSecrets(r, pair.value as AnyNode, `${where}.secrets`, job.call.keyPos);
    }
  }
  if (!calls) {
    if (!sawRunsOn) r.problem(keyNode, `${where} has no "runs-on" (the VM image label to run on)`);
    if (!sawSteps) r.problem(keyNode, `${where} has no "steps"`);
  }
  return job;
}

function parseRunsOn(r: YamlReader, node: AnyNode, at: string): string | undefined {
  const n = r.resolve(node);
  if (isMap(n)) {
    r.problem(n, `${at} with "group"/"labels" (runner groups) is not supported by forgevm; name one image label`);
    return undefined;
  }
  const labels = r.stringList(n, at);
  if (!labels) return undefined;
  if (labels.length !== 1) {
    r.problem(n, `${at} must name exactly one image label (forgevm boots one image per job), got ${labels.length}`);
    return labels[0];
  }
  const label = labels[0]!;
  if (label.trim() === '') r.problem(n, `${at} is empty`);
  checkExpressions(r, n, label, SCOPES.runsOn, at);
  return label;
}

function parseStrategy(r: YamlReader, node: AnyNode, where: string): Strategy | undefined {
  const map = r.map(node, where);
  if (!map) return undefined;
  const strategy: Strategy = { failFast: true };
  for (const { key, keyNode, value } of r.entries(map, where)) {
    const at = `${where}.${key}`;
    if (key === 'matrix') {
      const before = r.problems.length;
      const matrix = parseMatrix(r, value, at);
      if (matrix !== undefined) strategy.matrix = matrix;
      if (matrix !== undefined && r.problems.length === before) checkMatrixSize(r, value, matrix, at);
    } else if (key === 'fail-fast') {
      const v = r.resolve(value);
      if (isScalar(v) && typeof v.value === 'boolean') strategy.failFast = v.value;
      else r.problem(v ?? keyNode, `${at} must be true or false`);
    } else if (key === 'max-parallel') {
      const v = r.resolve(value);
      if (isScalar(v) && typeof v.value === 'number' && Number.isInteger(v.value) && v.value >= 1) strategy.maxParallel = v.value;
      else r.problem(v ?? keyNode, `${at} must be a whole number of at least 1`);
    } else {
      r.problem(keyNode, `unknown key "${key}" in ${where}${didYouMean(key, ['matrix', 'fail-fast', 'max-parallel'])}`);
    }
  }
  return strategy;
}

function parseMatrix(r: YamlReader, node: AnyNode, at: string): Record<string, unknown> | string | undefined {
  const n = r.resolve(node);
  if (isScalar(n) && typeof n.value === 'string' && n.value.includes('${{')) {
    checkExpressions(r, n, n.value, SCOPES.strategy, at);
    return n.value;
  }
  const map = r.map(n, at);
  if (!map) return undefined;
  const matrix: Record<string, unknown> = {};
  for (const { key, value } of r.entries(map, at)) {
    const v = r.resolve(value);
    const isExpr = isScalar(v) && typeof v.value === 'string' && v.value.includes('${{');
    if (isExpr) {
      checkExpressions(r, v, String((v as { value: string }).value), SCOPES.strategy, `${at}.${key}`);
    } else if (key === 'include' || key === 'exclude') {
      if (!isSeq(v)) r.problem(v ?? map, `${at}.${key} must be a list of mappings`);
      else for (const item of v.items) if (!isMap(r.resolve(item as AnyNode))) r.problem(item ?? v, `each entry of ${at}.${key} must be a mapping`);
    } else if (!isSeq(v)) {
      r.problem(v ?? map, `${at}.${key} must be a list of values`);
    } else if (v.items.length === 0) {
      r.problem(v, `${at}.${key} is an empty list, so the matrix has no combinations`);
    }
    matrix[key] = r.plain(v);
  }
  if (Object.keys(matrix).length === 0) r.problem(map, `${at} must define at least one axis`);
  return matrix;
}

/**
 * A matrix written out in full (no expressions) is expanded here, so that one over GitHub's
 * limit (after include/exclude) is reported before anything runs.
 */
function checkMatrixSize(r: YamlReader, node: AnyNode, matrix: Record<string, unknown> | string, at: string): void {
  if (typeof matrix === 'string' || JSON.stringify(matrix).includes('${{')) return;
  try {
    expandMatrix(matrix);
  } catch (err) {
    if (err instanceof MatrixError) r.problem(node, `${at}: ${err.message}`);
    else throw err;
  }
}
