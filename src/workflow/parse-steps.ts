/** `jobs.<id>.steps`: each step's keys, its `uses:` form and `with:` values. */
import { isScalar } from 'yaml';
import type { StepDef, WorkflowProblem } from './model.ts';
import { checkCondition, checkExpressions, checkStringMap } from './parse-values.ts';
import { SCOPES, STEP_KEYS } from './schema.ts';
import { type AnyNode, didYouMean, isNullScalar, type YamlReader } from './yaml-reader.ts';

export const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const NAME_PART = /^[A-Za-z0-9_.-]+$/;

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

export function parseSteps(r: YamlReader, node: AnyNode, where: string, context: StepsContext): StepDef[] {
  const seq = r.seq(node, where);
  if (!seq) return [];
  if (seq.items.length === 0) r.problem(seq, `${where} is empty; a job needs at least one step`);
  const steps: StepDef[] = [];
  const ids = new Set<string>();
  seq.items.forEach((item, index) => {
    const step = parseStep(r, item as AnyNode, `${where}[${index}]`, index, context);
    if (!step) return;
    if (step.id !== undefined) {
      if (ids.has(step.id)) r.problemAt(step.pos, `${where}[${index}]: duplicate step id "${step.id}"`);
      ids.add(step.id);
    }
    steps.push(step);
  });
  return steps;
}

function parseStep(r: YamlReader, node: AnyNode, where: string, index: number, context: StepsContext): StepDef | undefined {
  const map = r.map(node, where);
  if (!map) return undefined;
  const step: StepDef = { index, with: {}, env: {}, continueOnError: false, pos: r.pos(map) };
  const scope = SCOPES.step;
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
          checkCondition(r, value, s, SCOPES.stepIf, at);
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
        checkUses(r, value, s, where, context);
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
  return step;
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
  if (uses.startsWith('docker://')) {
    const seen = context.dockerActions.get(uses);
    if (seen) {
      seen.others += 1;
      seen.problem.message = `${seen.first} (and ${seen.others} more step${seen.others === 1 ? '' : 's'} of this workflow)`;
      return;
    }
    const first = `${where}: docker actions (uses: ${uses}) are not supported by forgevm; run the tool in a "run:" step instead (the VM is yours to install it in)`;
    r.problem(node, first);
    context.dockerActions.set(uses, { problem: r.problems[r.problems.length - 1]!, first, others: 0 });
    return;
  }
  const problem = actionFormProblem(uses);
  if (problem) r.problem(node, `${where}.uses: ${problem}`);
}

/**
 * Checks the shape of a step's `uses:` (GitHub's forms: `./path`, `owner/repo[/path]@ref`,
 * `https://host/owner/repo[/path]@ref`). Only the shape: the step executor parses the reference
 * fully when it resolves and fetches the action.
 */
function actionFormProblem(uses: string): string | undefined {
  if (uses.includes('${{')) return `"${uses}" holds an expression; GitHub resolves actions before the job runs, so uses: must be literal`;
  if (uses.trim() === '') return 'is empty; name an action (owner/repo@ref or ./path)';
  if (uses.startsWith('./')) {
    const segments = uses.slice(2).split('/');
    if (segments.includes('..')) return `"${uses}" leaves the repository; a local action must be a folder inside it`;
    if (/^\.(github|forgejo|gitea|forgevm)\/workflows\/[^/]+\.ya?ml$/.test(uses.slice(2))) {
      return `"${uses}" is a workflow, not an action; call a reusable workflow from a job (jobs.<id>.uses), not from a step`;
    }
    return uses.slice(2).replace(/\/+$/, '') === '' ? `"${uses}" names the repository root; point at the action's folder` : undefined;
  }
  const url = /^https?:\/\/[^/\s]+\/(.*)$/.exec(uses);
  const reference = url ? url[1]! : uses;
  const at = reference.lastIndexOf('@');
  const version = 'write owner/repo@ref, where ref is a tag, branch or commit SHA';
  if (at < 0) return `"${uses}" has no version; ${version}`;
  if (at === reference.length - 1) return `"${uses}" has an empty version; ${version}`;
  const parts = reference.slice(0, at).split('/');
  if (parts.length < 2 || !NAME_PART.test(parts[0]!) || !NAME_PART.test(parts[1]!)) {
    return `"${uses}" is not an action reference; ${version}, owner/repo/path@ref, a full URL, or ./path for an action in this repository`;
  }
  if (parts.slice(2).some((p) => p === '' || p === '..')) return `"${uses}" has an empty or ".." path segment`;
  return undefined;
}
