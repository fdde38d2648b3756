/**
 * The `inputs` context of a called workflow, from the caller's `with:`: evaluated with the
 * caller's contexts, checked against the declared types as GitHub does (a boolean input takes a
 * boolean, a number input a number; a string input also takes numbers and booleans, as text),
 * with defaults applied (`false`, `0` and `''` when none is declared).
 */
import { contextsUsedBy, conditionExpression, evaluateValue, type Contexts } from './expressions.ts';
import type { CallInput, WorkflowCall } from './model.ts';

/** Contexts a `with:` value may read (GitHub's table), minus those of the caller's instance. */
const WITH_CONTEXTS = ['github', 'needs', 'strategy', 'matrix', 'inputs', 'vars'];

export class CallInputError extends Error {}

/** True when every `with:` value can be evaluated with `contexts` (needs not yet known: false). */
export function callInputsKnown(call: WorkflowCall, contexts: Contexts): boolean {
  const needsKnown = Object.keys((contexts.needs as object | undefined) ?? {}).length > 0;
  return Object.values(call.with).every(
    (value) =>
      typeof value !== 'string' ||
      !value.includes('${{') ||
      contextsUsedBy(conditionExpression(value)).every((c) => WITH_CONTEXTS.includes(c) && c in contexts && (c !== 'needs' || needsKnown)),
  );
}

/**
 * Evaluates the call's inputs. `contexts` are the caller's (github, vars, inputs, matrix,
 * strategy, needs). Throws CallInputError with one line naming the input on a bad value.
 */
export function callInputs(call: WorkflowCall, contexts: Contexts): Record<string, unknown> {
  const declared = call.workflow?.on.workflowCall?.inputs ?? {};
  const given = new Map(Object.entries(call.with).map(([name, value]) => [name.toLowerCase(), value]));
  const out: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(declared)) {
    const raw = given.get(name.toLowerCase());
    const where = raw === undefined ? `the default of input "${name}" of ${call.path}` : `with.${name}`;
    let value: unknown;
    try {
      if (raw !== undefined) value = typeof raw === 'string' ? evaluateValue(raw, contexts) : raw;
      else if (input.default !== undefined) {
        // A default may read github, inputs (those given) and vars.
        value = typeof input.default === 'string' ? evaluateValue(input.default, { github: contexts.github, vars: contexts.vars, inputs: out }) : input.default;
      } else value = emptyValue(input);
    } catch (err) {
      throw new CallInputError(`${where}: ${(err as Error).message}`);
    }
    out[name] = typed(value, input, `${where} (input "${name}" of ${call.path})`);
  }
  return out;
}

function emptyValue(input: CallInput): unknown {
  return input.type === 'boolean' ? false : input.type === 'number' ? 0 : '';
}

function typed(value: unknown, input: CallInput, where: string): unknown {
  switch (input.type) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      throw new CallInputError(`${where} must be a boolean, got ${describe(value)}; a string "true" needs fromJSON() to become one`);
    case 'number':
      if (typeof value === 'number') return value;
      throw new CallInputError(`${where} must be a number, got ${describe(value)}; a string needs fromJSON() to become one`);
    default:
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      if (value === null || value === undefined) return '';
      throw new CallInputError(`${where} must be a string, got ${describe(value)}; use toJSON() to pass structured data`);
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing (null)';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
