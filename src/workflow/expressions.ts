/**
 * GitHub Actions expressions on GitHub's own evaluator (`@actions/expressions`). The package
 * knows the built-in functions (toJSON, fromJSON, format, join, contains, startsWith, endsWith);
 * the status functions and hashFiles are runner-specific, so they are registered here as
 * extension functions whose answers come from the caller.
 */
import { Evaluator, Lexer, Parser, data } from '@actions/expressions';
import type { Expr } from '@actions/expressions';
import type { FunctionDefinition, FunctionInfo } from '@actions/expressions/funcs/info';
import { fromExpressionData, isTruthy, toExpressionData } from './expression-data.ts';
import { splitTemplate, soleExpression, TemplateError, type TemplateSegment } from './template.ts';

/** github, env, vars, matrix, strategy, needs, steps, job, runner, inputs, secrets. */
export type Contexts = Record<string, unknown>;

export interface StatusFunctions {
  success(): boolean;
  failure(): boolean;
  cancelled(): boolean;
  /** One entry per argument of the call, each coerced to a string (see hashFilesCallsIn). */
  hashFiles?(patterns: string[]): string;
}

/** Outside `if:` conditions only hashFiles may be supplied; absent functions throw when called. */
export type ExpressionFunctions = Partial<StatusFunctions>;

/** Every context name GitHub knows; ones the caller does not supply evaluate to null. */
export const ALL_CONTEXTS = [
  'github',
  'env',
  'vars',
  'secrets',
  'matrix',
  'strategy',
  'needs',
  'steps',
  'job',
  'jobs',
  'runner',
  'inputs',
] as const;

export const STATUS_FUNCTION_NAMES = ['success', 'failure', 'cancelled', 'always'] as const;

const EXTENSION_FUNCTIONS: FunctionInfo[] = [
  { name: 'success', minArgs: 0, maxArgs: 0 },
  { name: 'failure', minArgs: 0, maxArgs: 0 },
  { name: 'cancelled', minArgs: 0, maxArgs: 0 },
  { name: 'always', minArgs: 0, maxArgs: 0 },
  { name: 'hashFiles', minArgs: 1, maxArgs: 255 },
];

/** All extension function names (status functions plus hashFiles). */
export const ALL_EXTENSION_FUNCTIONS = EXTENSION_FUNCTIONS.map((f) => f.name);

/** Parses one expression (without `${{ }}`); throws the package's error message on bad syntax. */
function parse(expr: string, contextNames: readonly string[], functions: FunctionInfo[]): Expr {
  const tokens = new Lexer(expr).lex().tokens;
  const tree = new Parser(tokens, [...contextNames], functions).parse() as Expr | undefined;
  if (tree === undefined) throw new Error('the expression is empty');
  return tree;
}

function functionImplementations(status: ExpressionFunctions | undefined): Map<string, FunctionDefinition> {
  const unavailable = (name: string): never => {
    throw new Error(`${name}() is not available here (only in job and step "if:" conditions)`);
  };
  const bool = (fn: () => boolean) => () => new data.BooleanData(fn());
  const map = new Map<string, FunctionDefinition>();
  map.set('success', { name: 'success', minArgs: 0, maxArgs: 0, call: bool(() => (status?.success ? status.success() : unavailable('success'))) });
  map.set('failure', { name: 'failure', minArgs: 0, maxArgs: 0, call: bool(() => (status?.failure ? status.failure() : unavailable('failure'))) });
  map.set('cancelled', {
    name: 'cancelled',
    minArgs: 0,
    maxArgs: 0,
    call: bool(() => (status?.cancelled ? status.cancelled() : unavailable('cancelled'))),
  });
  map.set('always', { name: 'always', minArgs: 0, maxArgs: 0, call: bool(() => true) });
  map.set('hashfiles', {
    name: 'hashFiles',
    minArgs: 1,
    maxArgs: 255,
    call: (...args) => {
      if (!status?.hashFiles) throw new Error('hashFiles() is not available here (only in steps)');
      return new data.StringData(status.hashFiles(args.map((a) => a.coerceString())));
    },
  });
  return map;
}

function contextDictionary(contexts: Contexts): data.Dictionary {
  const dict = new data.Dictionary();
  for (const [name, value] of Object.entries(contexts)) dict.add(name, toExpressionData(value));
  for (const name of ALL_CONTEXTS) dict.add(name, new data.Null()); // add() keeps existing keys
  return dict;
}

function contextNamesFor(contexts: Contexts): string[] {
  return [...new Set([...ALL_CONTEXTS, ...Object.keys(contexts)])];
}

function evaluateToData(expr: string, contexts: Contexts, status: ExpressionFunctions | undefined): data.ExpressionData {
  let tree: Expr;
  try {
    tree = parse(expr, contextNamesFor(contexts), EXTENSION_FUNCTIONS);
  } catch (err) {
    throw new Error(`invalid expression \${{ ${expr} }}: ${messageOf(err)}`);
  }
  try {
    const result = new Evaluator(tree, contextDictionary(contexts), functionImplementations(status)).evaluate();
    return result ?? new data.Null();
  } catch (err) {
    throw new Error(`evaluating \${{ ${expr} }} failed: ${messageOf(err)}`);
  }
}

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return err.message + cause;
  }
  return String(err);
}

/** Evaluates one expression (the text inside `${{ }}`) to a plain JS value. */
export function evaluateExpression(expr: string, contexts: Contexts, status?: ExpressionFunctions): unknown {
  return fromExpressionData(evaluateToData(expr, contexts, status));
}

function segmentsOf(template: string): TemplateSegment[] {
  try {
    return splitTemplate(template);
  } catch (err) {
    if (err instanceof TemplateError) throw new Error(`invalid template "${template}": ${err.message}`);
    throw err;
  }
}

/**
 * Replaces every `${{ }}` in a string with its value coerced to a string the GitHub way:
 * null → '', booleans → 'true'/'false', numbers without trailing zeros, arrays → 'Array',
 * objects → 'Object' (use toJSON() to print them).
 */
export function interpolate(template: string, contexts: Contexts, status?: ExpressionFunctions): string {
  let out = '';
  for (const segment of segmentsOf(template)) {
    out += segment.kind === 'text' ? segment.text : evaluateToData(segment.expr, contexts, status).coerceString();
  }
  return out;
}

/**
 * Evaluates a value that may be a single `${{ }}` (keeping its type: a number, boolean, object…)
 * or a string with embedded expressions (interpolated to a string). For `timeout-minutes`,
 * `continue-on-error`, `strategy.matrix` and similar typed fields.
 */
export function evaluateValue(template: string, contexts: Contexts, status?: ExpressionFunctions): unknown {
  const sole = soleExpression(template);
  if (sole !== undefined) return evaluateExpression(sole, contexts, status);
  return interpolate(template, contexts, status);
}

/**
 * GitHub's `if:` rules. The `${{ }}` wrapper is optional. A string with text around an expression
 * is a non-empty string, hence true (GitHub behaves the same). When the condition calls none of
 * success(), failure(), cancelled() or always(), it means `success() && (condition)`.
 */
export function evaluateCondition(cond: string, contexts: Contexts, status: StatusFunctions): boolean {
  const expr = conditionExpression(cond);
  let tree: Expr;
  try {
    tree = parse(expr, contextNamesFor(contexts), EXTENSION_FUNCTIONS);
  } catch (err) {
    throw new Error(`invalid condition "if: ${cond}": ${messageOf(err)}`);
  }
  const full = callsStatusFunction(tree) ? expr : `success() && (${expr})`;
  return isTruthy(evaluateToData(full, contexts, status));
}

/** The condition as one expression: the sole `${{ }}` body, bare text, or a format() of a mix. */
export function conditionExpression(cond: string): string {
  const trimmed = cond.trim();
  if (trimmed === '') return 'true'; // an empty `if:` is absent
  if (!trimmed.includes('${{')) return trimmed;
  const sole = soleExpression(trimmed);
  if (sole !== undefined) return sole;
  let format = '';
  const args: string[] = [];
  for (const segment of segmentsOf(trimmed)) {
    if (segment.kind === 'text') {
      format += segment.text.replace(/'/g, "''").replace(/\{/g, '{{').replace(/\}/g, '}}');
    } else {
      format += `{${args.length}}`;
      args.push(`(${segment.expr})`);
    }
  }
  return `format('${format}', ${args.join(', ')})`;
}

/** True when the expression calls success(), failure(), cancelled() or always() anywhere. */
export function callsStatusFunction(tree: Expr): boolean {
  return functionNamesIn(tree).some((name) => (STATUS_FUNCTION_NAMES as readonly string[]).includes(name));
}

/** Lower-cased names of every function called in a parsed expression. */
function functionNamesIn(tree: Expr): string[] {
  const names: string[] = [];
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    const fnToken = n.functionName as { lexeme?: string } | undefined;
    if (fnToken?.lexeme) names.push(fnToken.lexeme.toLowerCase());
    for (const key of ['expr', 'left', 'right', 'group', 'index']) visit(n[key]);
    for (const key of ['args']) if (Array.isArray(n[key])) for (const a of n[key] as unknown[]) visit(a);
  };
  visit(tree);
  return names;
}

/**
 * The arguments of every `hashFiles()` call in a template (or, with `condition`, in an `if:`
 * value), each coerced to a string the way the evaluator will pass them, so the caller can
 * compute the hashes asynchronously first and answer the synchronous hashFiles() from a table.
 * Arguments that are expressions are evaluated with `contexts`; one that cannot be (or that calls
 * hashFiles() itself) throws a clear error. Unparsable templates return [] (evaluation reports them).
 */
export function hashFilesCallsIn(template: string, contexts: Contexts, condition = false): string[][] {
  let exprs: string[];
  try {
    exprs = condition ? [conditionExpression(template)] : segmentsOf(template).flatMap((s) => (s.kind === 'expr' ? [s.expr] : []));
  } catch {
    return [];
  }
  const calls: string[][] = [];
  const dict = contextDictionary(contexts);
  const noFunctions = functionImplementations(undefined);
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    const fnToken = n.functionName as { lexeme?: string } | undefined;
    if (fnToken?.lexeme?.toLowerCase() === 'hashfiles' && Array.isArray(n.args)) {
      calls.push(
        (n.args as Expr[]).map((arg) => {
          if (functionNamesIn(arg).includes('hashfiles')) throw new Error('hashFiles() arguments must not call hashFiles()');
          try {
            return (new Evaluator(arg, dict, noFunctions).evaluate() ?? new data.Null()).coerceString();
          } catch (err) {
            throw new Error(`an argument of hashFiles() could not be evaluated before the step: ${messageOf(err)}`);
          }
        }),
      );
      return;
    }
    for (const key of ['expr', 'left', 'right', 'group', 'index']) visit(n[key]);
    if (Array.isArray(n.args)) for (const a of n.args as unknown[]) visit(a);
  };
  for (const expr of exprs) {
    if (!/hashfiles/i.test(expr)) continue;
    let tree: Expr;
    try {
      tree = parse(expr, contextNamesFor(contexts), EXTENSION_FUNCTIONS);
    } catch {
      continue; // the evaluation reports the syntax error
    }
    visit(tree);
  }
  return calls;
}

/** Lower-cased names of the contexts an expression reads (e.g. `needs`, `matrix`). */
export function contextsUsedBy(expr: string): string[] {
  let tree: Expr;
  try {
    tree = parse(expr, ALL_CONTEXTS, EXTENSION_FUNCTIONS);
  } catch {
    return [];
  }
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (n.name && typeof n.name === 'object' && 'lexeme' in (n.name as object) && !('functionName' in n)) {
      names.add(String((n.name as { lexeme: string }).lexeme).toLowerCase());
    }
    for (const key of ['expr', 'left', 'right', 'group', 'index']) visit(n[key]);
    if (Array.isArray(n.args)) for (const a of n.args as unknown[]) visit(a);
  };
  visit(tree);
  return [...names];
}

/** Lower-cased names of the functions an expression calls. */
export function functionsUsedBy(expr: string): string[] {
  try {
    return functionNamesIn(parse(expr, ALL_CONTEXTS, EXTENSION_FUNCTIONS));
  } catch {
    return [];
  }
}

/**
 * Checks every `${{ }}` in a template: syntax, context names and function names allowed at that
 * place in a workflow. Returns one error message, or undefined when the template is fine.
 */
export function checkExpressionSyntax(
  template: string,
  allowedContexts: string[],
  allowedFunctions: string[] = ALL_EXTENSION_FUNCTIONS,
): string | undefined {
  let segments: TemplateSegment[];
  try {
    segments = splitTemplate(template);
  } catch (err) {
    return messageOf(err);
  }
  const allowedFns = new Set(allowedFunctions.map((f) => f.toLowerCase()));
  const functions = EXTENSION_FUNCTIONS.filter((f) => allowedFns.has(f.name.toLowerCase()));
  for (const segment of segments) {
    if (segment.kind !== 'expr') continue;
    try {
      parse(segment.expr, allowedContexts, functions);
    } catch (err) {
      return describeSyntaxError(segment.expr, messageOf(err), allowedContexts, functions);
    }
  }
  return undefined;
}

function describeSyntaxError(expr: string, message: string, contexts: string[], functions: FunctionInfo[]): string {
  let hint = '';
  if (message.startsWith('Unrecognized named-value')) {
    hint = contexts.length > 0 ? ` (contexts available here: ${contexts.join(', ')})` : ' (no contexts are available here)';
  } else if (message.startsWith('Unrecognized function')) {
    const known = EXTENSION_FUNCTIONS.map((f) => f.name.toLowerCase());
    const name = /'([^']*)'/.exec(message)?.[1]?.toLowerCase() ?? '';
    if (known.includes(name)) {
      hint = ` (${name}() cannot be used here${functions.length ? `; available: ${functions.map((f) => f.name + '()').join(', ')}` : ''})`;
    }
  }
  return `invalid expression \${{ ${expr} }}: ${message}${hint}`;
}
