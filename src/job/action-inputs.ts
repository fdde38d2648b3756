/**
 * An action's inputs as GitHub's runner hands them over: `with:` values over the defaults of
 * action.yml, matched case-insensitively, and passed to JavaScript actions as `INPUT_<NAME>`
 * (upper-cased, spaces turned into `_`, hyphens kept, as @actions/core's getInput expects).
 */
import type { ActionInput } from '../actions/manifest.ts';

export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

export interface InputPlan {
  /** Input name (as declared, or as written in `with:` when undeclared) → raw template. */
  templates: Record<string, string>;
  /** Declared inputs whose value comes from `with:` (evaluated with the step's contexts) vs defaults. */
  fromWith: Set<string>;
  /** Lines for the log: unexpected inputs, missing required ones, deprecated ones used. */
  warnings: string[];
}

/** Which template gives each input its value: `with:` first, else the action.yml default. */
export function planInputs(declared: Record<string, ActionInput>, given: Record<string, string>, actionName: string): InputPlan {
  const templates: Record<string, string> = {};
  const fromWith = new Set<string>();
  const warnings: string[] = [];
  const byLower = new Map(Object.keys(declared).map((name) => [name.toLowerCase(), name]));
  const unexpected: string[] = [];
  for (const [key, value] of Object.entries(given)) {
    const name = byLower.get(key.toLowerCase());
    if (name === undefined) {
      unexpected.push(key);
      templates[key] = value;
      fromWith.add(key);
      continue;
    }
    templates[name] = value;
    fromWith.add(name);
    const deprecated = declared[name]?.deprecationMessage;
    if (deprecated) warnings.push(`Warning: input "${name}" of ${actionName} is deprecated: ${deprecated}`);
  }
  for (const [name, input] of Object.entries(declared)) {
    if (fromWith.has(name)) continue;
    // Every declared input reaches the action: one with neither value nor default as ''.
    templates[name] = input.default ?? '';
    if (input.default === undefined && input.required) warnings.push(`Warning: input required and not supplied: ${name} (${actionName})`);
  }
  if (unexpected.length > 0) {
    const valid = Object.keys(declared);
    warnings.push(
      `Warning: unexpected input(s) ${unexpected.map((k) => `"${k}"`).join(', ')} for ${actionName}; valid inputs are ${valid.length ? valid.map((k) => `"${k}"`).join(', ') : 'none'}`,
    );
  }
  return { templates, fromWith, warnings };
}
