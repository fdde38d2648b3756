/**
 * Steps: a job's `steps`, and a composite action's `runs.steps` (src/actions/manifest.ts): each
 * step's keys, its `uses:` form and `with:` values.
 */
import { isScalar, type YAMLMap } from 'yaml';
import { parseActionRef } from '../actions/reference.ts';
import type { StepDef, WorkflowProblem } from './model.ts';
import { checkCondition, checkExpressions, checkStringMap } from './parse-values.ts';
import { type ExpressionScope, SCOPES, STEP_KEYS } from './schema.ts';
import { type AnyNode, didYouMean, isNullScalar, type YamlReader } from './yaml-reader.ts';

export const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** What differs between a job's steps and a composite action's `runs.steps`. */
export interface StepRules {
  scope: ExpressionScope;
  ifScope: ExpressionScope;
  /** Composite action: the action loader checks `uses:`, and the keys GitHub forbids there are reported. */
  composite: boolean;
}

export const JOB_STEP_RULES: StepRules = { scope: SCOPES.step, ifScope: SCOPES.stepIf, composite: false };

/**
 * Per-workflow memory of the parse: a docker action is reported once per workflow, at its first
 * step, however many steps use it.
 */
export interface StepsContext {
  dockerActions: Map<string, { problem: WorkflowProblem; first: string; others: number }>;
}

export function newStepsContext(): StepsContext {
  return { dockerActions: new Map() };
}

export function parseSteps(r: YamlReader, node: AnyNode, where: string, rules: StepRules = JOB_STEP_RULES, context: StepsContext = newStepsContext()): StepDef[] {
  const seq = r.seq(node, where);
  if (!seq) return [];
  if (seq.items.length === 0) r.problem(seq, `${where} is empty; a job needs at least one step`);
  const steps: StepDef[] = [];
  const ids = new Set<string>();
  seq.items.forEach((item, index) => {
    const step = parseStep(r, item as AnyNode, `${where}[${index}]`, index, rules, context);
    if (!step) return;
    if (step.id !== undefined) {
      if (ids.has(step.id)) r.problemAt(step.pos, `${where}[${index}]: duplicate step id "${step.id}"`);
      ids.add(step.id);
    }
    steps.push(step);
  });
  return steps;
}

function parseStep(r: YamlReader, node: AnyNode, where: string, index: number, rules: StepRules, context: StepsContext): StepDef | undefined {
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
        if (!rules.composite) checkUses(r, value, s, where, context);
        break;
      }
      case 'with':
        step.with = withValues(r, value, at);
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

/**
 * `with:` of a step: every scalar becomes a string as GitHub passes it to the action. YAML
 * numbers lose their spelling there (`3.10` arrives as `3.1`), so they do here too.
 */
function withValues(r: YamlReader, node: AnyNode, at: string): Record<string, string> {
  const out: Record<string, string> = {};
  const n = r.resolve(node);
  if (isNullScalar(n)) return out;
  const map = r.map(n, at);
  if (!map) return out;
  for (const { key, value } of r.entries(map, at)) {
    const v = r.resolve(value);
    if (isScalar(v) && (typeof v.value === 'number' || typeof v.value === 'boolean')) out[key] = String(v.value);
    else {
      const s = r.string(v, `${at}.${key}`);
      if (s !== undefined) out[key] = s;
    }
  }
  return out;
}

function checkUses(r: YamlReader, node: AnyNode, uses: string, where: string, context: StepsContext): void {
  if (uses.includes('${{')) {
    r.problem(node, `${where}.uses: "${uses}" holds an expression; GitHub resolves actions before the job runs, so uses: must be literal`);
    return;
  }
  if (/^\.\/\.(github|forgejo|gitea|forgevm)\/workflows\/[^/]+\.ya?ml$/.test(uses)) {
    r.problem(node, `${where}.uses: "${uses}" is a workflow, not an action; call a reusable workflow from a job (jobs.<id>.uses), not from a step`);
    return;
  }
  // The form only: the step executor resolves and fetches what the reference names.
  const parsed = parseActionRef(uses);
  if (!parsed.ok) {
    r.problem(node, `${where}.${parsed.error}`);
    return;
  }
  if (parsed.ref.kind !== 'docker') return;
  const seen = context.dockerActions.get(uses);
  if (seen) {
    seen.others += 1;
    seen.problem.message = `${seen.first} (and ${seen.others} more step${seen.others === 1 ? '' : 's'} of this workflow)`;
    return;
  }
  const first = `${where}: docker actions (uses: ${uses}) are not supported by forgevm; run the tool in a "run:" step instead (the VM is yours to install it in)`;
  r.problem(node, first);
  context.dockerActions.set(uses, { problem: r.problems[r.problems.length - 1]!, first, others: 0 });
}
