/** `jobs:` and their steps, with the per-place expression checks. */
import { isMap, isScalar, isSeq, type YAMLMap } from 'yaml';
import { checkExpressionSyntax } from './expressions.ts';
import type { Concurrency, JobDef, RunDefaults, StepDef, Strategy } from './model.ts';
import { type ExpressionScope, JOB_KEYS, SCOPES, STEP_KEYS, UNSUPPORTED_JOB_KEYS } from './schema.ts';
import { type AnyNode, didYouMean, isNullScalar, type YamlReader } from './yaml-reader.ts';

const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const CHECKOUT_PATTERN = /^actions\/checkout@[^\s@]+$/;

/** Reports a bad `${{ }}` in a string value for the given place. */
export function checkExpressions(r: YamlReader, node: AnyNode, text: string, scope: ExpressionScope, where: string): void {
  if (!text.includes('${{')) return;
  const error = checkExpressionSyntax(text, scope.contexts, scope.functions);
  if (error) r.problem(node, `${where}: ${error}`);
}

/** `if:` takes a bare expression or `${{ }}`. */
export function checkCondition(r: YamlReader, node: AnyNode, cond: string, scope: ExpressionScope, where: string): void {
  const template = cond.includes('${{') ? cond : `\${{ ${cond} }}`;
  if (cond.trim() === '') return;
  const error = checkExpressionSyntax(template, scope.contexts, scope.functions);
  if (error) r.problem(node, `${where}: ${error}`);
}

export function checkStringMap(r: YamlReader, node: AnyNode, values: Record<string, string>, scope: ExpressionScope, where: string): void {
  for (const [key, value] of Object.entries(values)) checkExpressions(r, node, value, scope, `${where}.${key}`);
}

export function parseDefaults(r: YamlReader, node: AnyNode, where: string, scope: ExpressionScope): RunDefaults {
  const out: RunDefaults = {};
  const n = r.resolve(node);
  if (!n || isNullScalar(n)) return out;
  const map = r.map(n, where);
  if (!map) return out;
  for (const { key, keyNode, value } of r.entries(map, where)) {
    if (key !== 'run') {
      r.problem(keyNode, `unknown key "${key}" in ${where}${didYouMean(key, ['run'])}`);
      continue;
    }
    const runMap = r.map(value, `${where}.run`);
    if (!runMap) continue;
    for (const entry of r.entries(runMap, `${where}.run`)) {
      const s = entry.key === 'shell' || entry.key === 'working-directory' ? r.string(entry.value, `${where}.run.${entry.key}`) : undefined;
      if (entry.key === 'shell' && s !== undefined) out.shell = s;
      else if (entry.key === 'working-directory' && s !== undefined) out.workingDirectory = s;
      else if (entry.key !== 'shell' && entry.key !== 'working-directory') {
        r.problem(entry.keyNode, `unknown key "${entry.key}" in ${where}.run${didYouMean(entry.key, ['shell', 'working-directory'])}`);
      }
      if (s !== undefined) checkExpressions(r, entry.value, s, scope, `${where}.run.${entry.key}`);
    }
  }
  return out;
}

export function parseConcurrency(r: YamlReader, node: AnyNode, where: string, scope: ExpressionScope): Concurrency | undefined {
  const n = r.resolve(node);
  if (!n || isNullScalar(n)) return undefined;
  if (isScalar(n)) {
    const group = r.string(n, where);
    if (group === undefined) return undefined;
    checkExpressions(r, n, group, scope, where);
    return { group, cancelInProgress: false };
  }
  const map = r.map(n, where);
  if (!map) return undefined;
  let group: string | undefined;
  let cancelInProgress: boolean | string = false;
  for (const { key, keyNode, value } of r.entries(map, where)) {
    if (key === 'group') {
      group = r.string(value, `${where}.group`);
      if (group !== undefined) checkExpressions(r, value, group, scope, `${where}.group`);
    } else if (key === 'cancel-in-progress') {
      const v = r.boolOrExpression(value, `${where}.cancel-in-progress`);
      if (v !== undefined) cancelInProgress = v;
      if (typeof v === 'string') checkExpressions(r, value, v, scope, `${where}.cancel-in-progress`);
    } else {
      r.problem(keyNode, `unknown key "${key}" in ${where}${didYouMean(key, ['group', 'cancel-in-progress'])}`);
    }
  }
  if (group === undefined) {
    r.problem(map, `${where} needs a "group"`);
    return undefined;
  }
  return { group, cancelInProgress };
}

export function parseJobs(r: YamlReader, node: AnyNode, workflowNode: AnyNode): JobDef[] {
  const n = r.resolve(node);
  if (!n) {
    r.problem(workflowNode, 'the workflow has no "jobs:"');
    return [];
  }
  const map = r.map(n, 'jobs');
  if (!map) return [];
  const jobs: JobDef[] = [];
  for (const { key, keyNode, value } of r.entries(map, 'jobs')) {
    if (!ID_PATTERN.test(key)) {
      r.problem(keyNode, `job id "${key}" must start with a letter or "_" and contain only letters, digits, "-" and "_"`);
    }
    const job = parseJob(r, key, keyNode, value);
    if (job) jobs.push(job);
  }
  if (jobs.length === 0 && map.items.length === 0) r.problem(map, 'jobs: is empty; a workflow needs at least one job');
  return jobs;
}

function parseJob(r: YamlReader, id: string, keyNode: AnyNode, node: AnyNode): JobDef | undefined {
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
  let sawRunsOn = false;
  let sawSteps = false;
  let reusable = false;
  for (const { key, keyNode: k, value } of r.entries(map, where)) {
    const at = `${where}.${key}`;
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
        job.steps = parseSteps(r, value, at);
        break;
      case 'permissions':
        break; // GitHub token scopes; forgevm has no per-job token, so there is nothing to restrict.
      default: {
        const feature = UNSUPPORTED_JOB_KEYS[key];
        if (feature) {
          if (key === 'uses') reusable = true;
          r.problem(k, `${feature} are not supported by forgevm`);
        } else {
          r.problem(k, `unknown key "${key}" in ${where}${didYouMean(key, [...JOB_KEYS, ...Object.keys(UNSUPPORTED_JOB_KEYS)])}`);
        }
      }
    }
  }
  if (!reusable) {
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
      const matrix = parseMatrix(r, value, at);
      if (matrix !== undefined) strategy.matrix = matrix;
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

/** What differs between a job's steps and a composite action's `runs.steps`. */
export interface StepRules {
  scope: ExpressionScope;
  ifScope: ExpressionScope;
  /** Composite action: the action loader checks `uses:`, and the keys GitHub forbids there are reported. */
  composite: boolean;
}

const JOB_STEP_RULES: StepRules = { scope: SCOPES.step, ifScope: SCOPES.stepIf, composite: false };

export function parseSteps(r: YamlReader, node: AnyNode, where: string, rules: StepRules = JOB_STEP_RULES): StepDef[] {
  const seq = r.seq(node, where);
  if (!seq) return [];
  if (seq.items.length === 0) r.problem(seq, `${where} is empty; a job needs at least one step`);
  const steps: StepDef[] = [];
  const ids = new Set<string>();
  seq.items.forEach((item, index) => {
    const step = parseStep(r, item as AnyNode, `${where}[${index}]`, index, rules);
    if (!step) return;
    if (step.id !== undefined) {
      if (ids.has(step.id)) r.problemAt(step.pos, `${where}[${index}]: duplicate step id "${step.id}"`);
      ids.add(step.id);
    }
    steps.push(step);
  });
  return steps;
}

function parseStep(r: YamlReader, node: AnyNode, where: string, index: number, rules: StepRules): StepDef | undefined {
  const map = r.map(node, where);
  if (!map) return undefined;
  const step: StepDef = { index, with: {}, env: {}, continueOnError: false, pos: r.pos(map) };
  const scope = rules.scope;
  for (const { key, keyNode, value } of r.entries(map, where)) {
    const at = `${where}.${key}`;
    const str = () => {
      const s = r.string(value, at);
      if (s !== undefined) checkExpressions(r, value, s, scope, at);
      return s;
    };
    switch (key) {
      case 'id': {
        const s = r.string(value, at);
        if (s === undefined) break;
        if (!ID_PATTERN.test(s)) r.problem(value, `${at} "${s}" must start with a letter or "_" and contain only letters, digits, "-" and "_"`);
        step.id = s;
        break;
      }
      case 'name': {
        const s = str();
        if (s !== undefined) step.name = s;
        break;
      }
      case 'if': {
        const s = r.string(value, at);
        if (s !== undefined) {
          step.if = s;
          checkCondition(r, value, s, rules.ifScope, at);
        }
        break;
      }
      case 'run': {
        const s = str();
        if (s !== undefined) step.run = s;
        break;
      }
      case 'uses': {
        const s = r.string(value, at);
        if (s === undefined) break;
        step.uses = s;
        if (!rules.composite && !CHECKOUT_PATTERN.test(s)) {
          r.problem(value, `${at}: action "${s}" is not supported; forgevm runs "run:" steps and actions/checkout@<ref> only`);
        }
        break;
      }
      case 'with':
        step.with = r.stringMap(value, at);
        checkStringMap(r, value, step.with, scope, at);
        break;
      case 'shell': {
        const s = str();
        if (s !== undefined) step.shell = s;
        break;
      }
      case 'working-directory': {
        const s = str();
        if (s !== undefined) step.workingDirectory = s;
        break;
      }
      case 'env':
        step.env = r.stringMap(value, at);
        checkStringMap(r, value, step.env, scope, at);
        break;
      case 'timeout-minutes': {
        const v = r.numberOrExpression(value, at);
        if (v !== undefined) step.timeoutMinutes = v;
        if (typeof v === 'string') checkExpressions(r, value, v, scope, at);
        break;
      }
      case 'continue-on-error': {
        const v = r.boolOrExpression(value, at);
        if (v !== undefined) step.continueOnError = v;
        if (typeof v === 'string') checkExpressions(r, value, v, scope, at);
        break;
      }
      default:
        r.problem(keyNode, `unknown key "${key}" in ${where}${didYouMean(key, STEP_KEYS)}`);
    }
  }
  const hasRun = map.has('run');
  const hasUses = map.has('uses');
  if (hasRun && hasUses) r.problem(map, `${where} has both "run" and "uses"; a step does one or the other`);
  if (!hasRun && !hasUses) r.problem(map, `${where} has neither "run" nor "uses"`);
  if (!hasUses && map.has('with')) r.problem(map, `${where} has "with" but no "uses"`);
  if (rules.composite) checkCompositeStep(r, map, where);
  return step;
}

/** GitHub's action schema: `shell` is required on run steps, and some job-step keys do not exist. */
function checkCompositeStep(r: YamlReader, map: YAMLMap, where: string): void {
  const key = (name: string) => map.items.find((pair) => isScalar(pair.key) && pair.key.value === name)?.key ?? map;
  if (map.has('run') && !map.has('shell')) r.problem(map, `${where} has "run" but no "shell"; composite actions must name the shell of each run step (e.g. shell: bash)`);
  if (map.has('timeout-minutes')) r.problem(key('timeout-minutes'), `${where}.timeout-minutes is not allowed in a composite action's steps`);
  if (map.has('uses')) {
    for (const name of ['shell', 'working-directory']) if (map.has(name)) r.problem(key(name), `${where}.${name} is only allowed on run steps`);
  }
}
