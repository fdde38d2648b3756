/** `on:` in its string, list and map forms. */
import { isScalar, isSeq, type YAMLMap } from 'yaml';
import { filterPatternError } from './filters.ts';
import type { DispatchInput, PullRequestTrigger, PushTrigger, Triggers } from './model.ts';
import { parseWorkflowCall } from './parse-workflow-call.ts';
import {
  DISPATCH_INPUT_KEYS,
  DISPATCH_INPUT_TYPES,
  KNOWN_EVENTS,
  PULL_REQUEST_KEYS,
  PULL_REQUEST_TYPES,
  PUSH_KEYS,
} from './schema.ts';
import { type AnyNode, didYouMean, isNullScalar, type YamlReader } from './yaml-reader.ts';

export const DEFAULT_PULL_REQUEST_TYPES = ['opened', 'synchronize', 'reopened'];

export function parseTriggers(r: YamlReader, node: AnyNode, workflowNode: AnyNode): Triggers {
  const triggers: Triggers = {};
  const n = r.resolve(node);
  if (!n) {
    r.problem(workflowNode, 'the workflow has no "on:" (which events start it)');
    return triggers;
  }
  if (isScalar(n) || isSeq(n)) {
    const names = r.stringList(n, 'on') ?? [];
    for (const name of names) addEvent(r, triggers, name, undefined, n);
    return triggers;
  }
  const map = r.map(n, 'on');
  if (!map) return triggers;
  for (const { key, keyNode, value } of r.entries(map, 'on')) addEvent(r, triggers, key, value, keyNode);
  return triggers;
}

function addEvent(r: YamlReader, triggers: Triggers, name: string, config: AnyNode, at: AnyNode): void {
  switch (name) {
    case 'push':
      triggers.push = parsePush(r, config);
      return;
    case 'pull_request':
      triggers.pullRequest = parsePullRequest(r, config);
      return;
    case 'workflow_dispatch':
      triggers.workflowDispatch = { inputs: parseDispatchInputs(r, config) };
      return;
    case 'workflow_call':
      triggers.workflowCall = parseWorkflowCall(r, config);
      return;
    default:
      // Other GitHub events are valid workflow syntax; forgevm never receives them, so they never match.
      if (!(KNOWN_EVENTS as readonly string[]).includes(name)) {
        r.problem(at, `unknown event "${name}" in on:${didYouMean(name, KNOWN_EVENTS)}`);
      }
  }
}

/** Reads the filter lists shared by push and pull_request; reports bad patterns and conflicts. */
function readFilters(r: YamlReader, map: YAMLMap, event: string, allowed: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const { key, keyNode, value } of r.entries(map, `on.${event}`)) {
    if (!allowed.includes(key)) {
      r.problem(keyNode, `unknown key "${key}" in on.${event}${didYouMean(key, allowed)}`);
      continue;
    }
    const list = r.stringList(value, `on.${event}.${key}`);
    if (!list) continue;
    if (key !== 'types') {
      for (const pattern of list) {
        const error = filterPatternError(pattern);
        if (error) r.problem(value, `on.${event}.${key}: ${error}`);
      }
    }
    out[key] = list;
  }
  for (const base of ['branches', 'tags', 'paths']) {
    if (out[base] && out[`${base}-ignore`]) {
      r.problem(map, `on.${event} cannot use both "${base}" and "${base}-ignore" (use "!" patterns in "${base}" instead)`);
    }
  }
  return out;
}

function filtersOf(r: YamlReader, config: AnyNode, event: string, allowed: readonly string[]): Record<string, string[]> {
  const n = r.resolve(config);
  if (!n || isNullScalar(n)) return {};
  const map = r.map(n, `on.${event}`);
  return map ? readFilters(r, map, event, allowed) : {};
}

function parsePush(r: YamlReader, config: AnyNode): PushTrigger {
  const f = filtersOf(r, config, 'push', PUSH_KEYS);
  return compact({
    branches: f.branches,
    branchesIgnore: f['branches-ignore'],
    tags: f.tags,
    tagsIgnore: f['tags-ignore'],
    paths: f.paths,
    pathsIgnore: f['paths-ignore'],
  });
}

function parsePullRequest(r: YamlReader, config: AnyNode): PullRequestTrigger {
  const f = filtersOf(r, config, 'pull_request', PULL_REQUEST_KEYS);
  for (const type of f.types ?? []) {
    if (!(PULL_REQUEST_TYPES as readonly string[]).includes(type) && type !== 'synchronized') {
      r.problem(config, `unknown pull_request type "${type}"${didYouMean(type, PULL_REQUEST_TYPES)}`);
    }
  }
  return compact({
    types: f.types ?? [...DEFAULT_PULL_REQUEST_TYPES],
    branches: f.branches,
    branchesIgnore: f['branches-ignore'],
    paths: f.paths,
    pathsIgnore: f['paths-ignore'],
  });
}

function parseDispatchInputs(r: YamlReader, config: AnyNode): Record<string, DispatchInput> {
  const inputs: Record<string, DispatchInput> = {};
  const n = r.resolve(config);
  if (!n || isNullScalar(n)) return inputs;
  const map = r.map(n, 'on.workflow_dispatch');
  if (!map) return inputs;
  for (const { key, keyNode, value } of r.entries(map, 'on.workflow_dispatch')) {
    if (key !== 'inputs') {
      r.problem(keyNode, `unknown key "${key}" in on.workflow_dispatch${didYouMean(key, ['inputs'])}`);
      continue;
    }
    const inputsMap = r.resolve(value);
    if (isNullScalar(inputsMap)) continue;
    const m = r.map(inputsMap, 'on.workflow_dispatch.inputs');
    if (!m) continue;
    for (const entry of r.entries(m, 'on.workflow_dispatch.inputs')) {
      const input = parseDispatchInput(r, entry.key, entry.value);
      if (input) inputs[entry.key] = input;
    }
  }
  return inputs;
}

function parseDispatchInput(r: YamlReader, name: string, node: AnyNode): DispatchInput | undefined {
  const where = `on.workflow_dispatch.inputs.${name}`;
  const input: DispatchInput = { required: false, type: 'string' };
  if (isNullScalar(r.resolve(node))) return input;
  const map = r.map(node, where);
  if (!map) return undefined;
  for (const { key, keyNode, value } of r.entries(map, where)) {
    switch (key) {
      case 'description': {
        const s = r.string(value, `${where}.description`);
        if (s !== undefined) input.description = s;
        break;
      }
      case 'required': {
        const v = r.resolve(value);
        if (isScalar(v) && typeof v.value === 'boolean') input.required = v.value;
        else r.problem(v ?? keyNode, `${where}.required must be true or false`);
        break;
      }
      case 'default': {
        const v = r.resolve(value);
        if (isScalar(v) && ['string', 'number', 'boolean'].includes(typeof v.value)) {
          input.default = v.value as string | number | boolean;
        } else r.problem(v ?? keyNode, `${where}.default must be a string, number or boolean`);
        break;
      }
      case 'type': {
        const s = r.string(value, `${where}.type`);
        if (s === undefined) break;
        if ((DISPATCH_INPUT_TYPES as readonly string[]).includes(s)) input.type = s as DispatchInput['type'];
        else r.problem(value, `${where}.type "${s}" is not one of ${DISPATCH_INPUT_TYPES.join(', ')}${didYouMean(s, DISPATCH_INPUT_TYPES)}`);
        break;
      }
      case 'options': {
        const list = r.stringList(value, `${where}.options`);
        if (list) input.options = list;
        break;
      }
      default:
        r.problem(keyNode, `unknown key "${key}" in ${where}${didYouMean(key, DISPATCH_INPUT_KEYS)}`);
    }
  }
  if (input.type === 'choice' && !input.options?.length) {
    r.problem(map, `${where} has type choice but no options`);
  }
  if (input.type === 'choice' && input.default !== undefined && input.options && !input.options.includes(String(input.default))) {
    r.problem(map, `${where}.default "${String(input.default)}" is not one of its options`);
  }
  return input;
}

/** Drops undefined properties so the model stays clean for deep equality in tests and JSON. */
function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] === undefined) delete value[key];
  return value;
}
