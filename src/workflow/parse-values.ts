/** Values shared by the workflow, job and step parsers: expression checks, defaults, concurrency. */
import { isScalar } from 'yaml';
import { checkExpressionSyntax } from './expressions.ts';
import type { Concurrency, RunDefaults } from './model.ts';
import type { ExpressionScope } from './schema.ts';
import { type AnyNode, didYouMean, isNullScalar, type YamlReader } from './yaml-reader.ts';

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
