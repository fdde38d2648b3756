/**
 * The keys of a job that calls a reusable workflow (`uses:`, `with:`, `secrets:`), and
 * `environment:`. Whether the called file exists and takes these inputs is checked by the
 * loader (resolve-calls.ts), which reads it.
 */
import path from 'node:path';
import { isMap, isScalar } from 'yaml';
import type { JobEnvironment, SecretsRule, SourcePos } from './model.ts';
import { checkExpressions } from './parse-values.ts';
import { SCOPES } from './schema.ts';
import { type AnyNode, didYouMean, isNullScalar, type YamlReader } from './yaml-reader.ts';

/** `./path/to/x.yml` → `path/to/x.yml`; a remote or malformed reference is a problem. */
export function parseCallUses(r: YamlReader, node: AnyNode, at: string): { uses: string; path: string } | undefined {
  const uses = r.string(node, at);
  if (uses === undefined) return undefined;
  const fail = (why: string) => {
    r.problem(node, `${at}: ${why}`);
    return undefined;
  };
  if (uses.includes('${{')) return fail(`"${uses}" holds an expression; the called workflow must be a literal path`);
  if (!uses.startsWith('./')) {
    if (/^[^./][^@]*\/[^@]+@.+$/.test(uses) || /^https?:\/\//.test(uses)) {
      return fail(`reusable workflows from other repositories ("${uses}") are not supported by forgevm; copy the workflow into this repository and call it as ./path/to/it.yml`);
    }
    return fail(`"${uses}" is not a reusable workflow reference; write ./path/to/workflow.yml (a file of this repository)`);
  }
  if (uses.includes('@')) return fail(`"${uses}": a workflow of this repository runs at the caller's commit, so it takes no @ref; drop it`);
  const relative = path.posix.normalize(uses.slice(2));
  if (relative.startsWith('../') || relative === '..' || path.posix.isAbsolute(relative)) return fail(`"${uses}" leaves the repository`);
  if (!/\.ya?ml$/.test(relative)) return fail(`"${uses}" is not a workflow file; name a .yml or .yaml file`);
  return { uses, path: relative };
}

/** `with:`: scalars only; strings may hold expressions (checked with the contexts GitHub allows there). */
export function parseCallWith(r: YamlReader, node: AnyNode, at: string, keyPos: Record<string, SourcePos>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  const n = r.resolve(node);
  if (!n || isNullScalar(n)) return out;
  const map = r.map(n, at);
  if (!map) return out;
  for (const { key, keyNode, value } of r.entries(map, at)) {
    keyPos[`with.${key}`] = r.pos(keyNode);
    const v = r.resolve(value);
    if (isScalar(v) && (typeof v.value === 'number' || typeof v.value === 'boolean')) {
      out[key] = v.value;
      continue;
    }
    const s = r.string(v, `${at}.${key}`);
    if (s === undefined) continue;
    out[key] = s;
    checkExpressions(r, v, s, SCOPES.jobWith, `${at}.${key}`);
  }
  return out;
}

/** `secrets: inherit`, or a mapping of the called workflow's secret names to expressions. */
export function parseCallSecrets(r: YamlReader, node: AnyNode, at: string, keyPos: Record<string, SourcePos>): SecretsRule {
  const n = r.resolve(node);
  if (!n || isNullScalar(n)) return {};
  if (isScalar(n)) {
    if (n.value === 'inherit') return 'inherit';
    r.problem(n, `${at} must be "inherit" or a mapping of secret names to values`);
    return {};
  }
  const map = r.map(n, at);
  if (!map) return {};
  const out: Record<string, string> = {};
  for (const { key, keyNode, value } of r.entries(map, at)) {
    keyPos[`secrets.${key}`] = r.pos(keyNode);
    const s = r.string(value, `${at}.${key}`);
    if (s === undefined) continue;
    out[key] = s;
    checkExpressions(r, value, s, SCOPES.jobSecrets, `${at}.${key}`);
  }
  return out;
}

/** `environment: name` or `{ name, url }`: kept by name; no protection rules, no deployments. */
export function parseEnvironment(r: YamlReader, node: AnyNode, at: string): JobEnvironment | undefined {
  const n = r.resolve(node);
  if (isMap(n)) {
    const env: Partial<JobEnvironment> = {};
    for (const { key, keyNode, value } of r.entries(n, at)) {
      if (key !== 'name' && key !== 'url') {
        r.problem(keyNode, `unknown key "${key}" in ${at}${didYouMean(key, ['name', 'url'])}`);
        continue;
      }
      const s = r.string(value, `${at}.${key}`);
      if (s === undefined) continue;
      env[key] = s;
      checkExpressions(r, value, s, key === 'url' ? SCOPES.jobEnvironmentUrl : SCOPES.jobEnvironment, `${at}.${key}`);
    }
    if (env.name === undefined) {
      r.problem(n, `${at} needs a "name"`);
      return undefined;
    }
    return env as JobEnvironment;
  }
  const name = r.string(n, at);
  if (name === undefined) return undefined;
  checkExpressions(r, n, name, SCOPES.jobEnvironment, at);
  return { name };
}
