/** `on.workflow_call`: the inputs, outputs and secrets a reusable workflow declares. */
import { isScalar } from 'yaml';
import type { CallInput, WorkflowCallTrigger } from './model.ts';
import { checkExpressions } from './parse-values.ts';
import { CALL_INPUT_KEYS, CALL_INPUT_TYPES, CALL_OUTPUT_KEYS, CALL_SECRET_KEYS, SCOPES } from './schema.ts';
import { type AnyNode, didYouMean, isNullScalar, type YamlReader } from './yaml-reader.ts';

const WHERE = 'on.workflow_call';

export function parseWorkflowCall(r: YamlReader, config: AnyNode): WorkflowCallTrigger {
  const trigger: WorkflowCallTrigger = { inputs: {}, outputs: {}, secrets: {} };
  const n = r.resolve(config);
  if (!n || isNullScalar(n)) return trigger;
  const map = r.map(n, WHERE);
  if (!map) return trigger;
  for (const { key, keyNode, value } of r.entries(map, WHERE)) {
    const section = r.resolve(value);
    if (key !== 'inputs' && key !== 'outputs' && key !== 'secrets') {
      r.problem(keyNode, `unknown key "${key}" in ${WHERE}${didYouMean(key, ['inputs', 'outputs', 'secrets'])}`);
      continue;
    }
    if (!section || isNullScalar(section)) continue;
    const entries = r.map(section, `${WHERE}.${key}`);
    if (!entries) continue;
    for (const entry of r.entries(entries, `${WHERE}.${key}`)) {
      const at = `${WHERE}.${key}.${entry.key}`;
      if (key === 'inputs') {
        const input = parseInput(r, entry.value, entry.keyNode, at);
        if (input) trigger.inputs[entry.key] = input;
      } else if (key === 'outputs') {
        const output = parseOutput(r, entry.value, entry.keyNode, at);
        if (output) trigger.outputs[entry.key] = output;
      } else {
        const secret = parseSecret(r, entry.value, at);
        if (secret) trigger.secrets[entry.key] = secret;
      }
    }
  }
  return trigger;
}

function parseInput(r: YamlReader, node: AnyNode, keyNode: AnyNode, where: string): CallInput | undefined {
  const map = r.map(node, where);
  if (!map) return undefined;
  const input: CallInput = { required: false, type: 'string' };
  let typed = false;
  let defaultNode: AnyNode;
  for (const { key, keyNode: k, value } of r.entries(map, where)) {
    const v = r.resolve(value);
    switch (key) {
      case 'description': {
        const s = r.string(value, `${where}.description`);
        if (s !== undefined) input.description = s;
        break;
      }
      case 'required':
        if (isScalar(v) && typeof v.value === 'boolean') input.required = v.value;
        else r.problem(v ?? k, `${where}.required must be true or false`);
        break;
      case 'type': {
        const s = r.string(value, `${where}.type`);
        if (s === undefined) break;
        typed = true;
        if ((CALL_INPUT_TYPES as readonly string[]).includes(s)) input.type = s as CallInput['type'];
        else r.problem(value, `${where}.type "${s}" is not one of ${CALL_INPUT_TYPES.join(', ')} (the types a reusable workflow input can have)${didYouMean(s, CALL_INPUT_TYPES)}`);
        break;
      }
      case 'default':
        defaultNode = v ?? k;
        if (isScalar(v) && v.value !== null && ['string', 'number', 'boolean'].includes(typeof v.value)) input.default = v.value as string | number | boolean;
        else r.problem(v ?? k, `${where}.default must be a string, number or boolean`);
        break;
      default:
        r.problem(k, `unknown key "${key}" in ${where}${didYouMean(key, CALL_INPUT_KEYS)}`);
    }
  }
  if (!typed) r.problem(keyNode, `${where} has no "type" (string, boolean or number); GitHub requires one for reusable workflow inputs`);
  const d = input.default;
  if (typeof d === 'string' && d.includes('${{')) {
    checkExpressions(r, defaultNode, d, SCOPES.callInputDefault, `${where}.default`);
  } else if (d !== undefined && typed && ((input.type === 'boolean' && typeof d !== 'boolean') || (input.type === 'number' && typeof d !== 'number'))) {
    r.problem(defaultNode, `${where}.default ${JSON.stringify(d)} is not a ${input.type}`);
  }
  return input;
}

function parseOutput(r: YamlReader, node: AnyNode, keyNode: AnyNode, where: string): { value: string; description?: string } | undefined {
  const map = r.map(node, where);
  if (!map) return undefined;
  let value: string | undefined;
  let description: string | undefined;
  for (const { key, keyNode: k, value: v } of r.entries(map, where)) {
    if (key === 'value') {
      value = r.string(v, `${where}.value`);
      if (value !== undefined) checkExpressions(r, v, value, SCOPES.callOutput, `${where}.value`);
    } else if (key === 'description') {
      description = r.string(v, `${where}.description`);
    } else {
      r.problem(k, `unknown key "${key}" in ${where}${didYouMean(key, CALL_OUTPUT_KEYS)}`);
    }
  }
  if (value === undefined) {
    r.problem(keyNode, `${where} has no "value" (an expression such as \${{ jobs.<job>.outputs.<name> }})`);
    return undefined;
  }
  return description === undefined ? { value } : { value, description };
}

function parseSecret(r: YamlReader, node: AnyNode, where: string): { required: boolean; description?: string } | undefined {
  const n = r.resolve(node);
  const secret: { required: boolean; description?: string } = { required: false };
  if (!n || isNullScalar(n)) return secret;
  const map = r.map(n, where);
  if (!map) return undefined;
  for (const { key, keyNode, value } of r.entries(map, where)) {
    const v = r.resolve(value);
    if (key === 'required') {
      if (isScalar(v) && typeof v.value === 'boolean') secret.required = v.value;
      else r.problem(v ?? keyNode, `${where}.required must be true or false`);
    } else if (key === 'description') {
      const s = r.string(value, `${where}.description`);
      if (s !== undefined) secret.description = s;
    } else {
      r.problem(keyNode, `unknown key "${key}" in ${where}${didYouMean(key, CALL_SECRET_KEYS)}`);
    }
  }
  return secret;
}
