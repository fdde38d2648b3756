/**
 * An action's metadata file (`action.yml`, or `action.yaml`), read into a typed manifest with
 * GitHub's rules, or into problems with file:line:column. Composite steps go through the
 * workflow parser's own step parsing, so they come out as the same StepDef the executor already
 * runs. Manifests come from strangers: any input yields a manifest or problems, never a throw,
 * and the file is size-limited and never read through a symlink that leads out of its repository.
 *
 * Like GitHub's runner, the reader is lenient where the runner is (unknown top-level, input and
 * `runs` keys are ignored; `name` and `description` may be missing) and strict where it is strict
 * (output and composite step keys, `using`, expressions and the contexts each place allows).
 */
import { lstat, open, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import type { StepDef, WorkflowProblem } from '../workflow/model.ts';
import { parseSteps, type StepRules } from '../workflow/parse-steps.ts';
import { checkCondition, checkExpressions } from '../workflow/parse-values.ts';
import type { ExpressionScope } from '../workflow/schema.ts';
import { type AnyNode, didYouMean, isNullScalar, YamlReader } from '../workflow/yaml-reader.ts';
import { parseActionRef } from './reference.ts';

export const NODE_VERSIONS = ['node12', 'node16', 'node20', 'node24'] as const;
export type NodeVersion = (typeof NODE_VERSIONS)[number];

export interface ActionInput {
  description?: string;
  /** GitHub does not enforce it either; the executor may warn. */
  required: boolean;
  /** Raw: may hold `${{ }}` (e.g. `${{ github.token }}`), evaluated when the step runs. */
  default?: string;
  deprecationMessage?: string;
}

export interface ActionOutput {
  description?: string;
  /** Composite actions: the expression that gives the output (raw). */
  value?: string;
}

/** `using: node12|node16|node20|node24`: file paths relative to the action's folder. */
export interface NodeRuns {
  using: NodeVersion;
  main: string;
  pre?: string;
  /** Raw condition; `always()` when the manifest gives none, as on GitHub. */
  preIf: string;
  post?: string;
  /** Raw condition; `always()` when the manifest gives none, as on GitHub. */
  postIf: string;
}

export interface CompositeRuns {
  using: 'composite';
  steps: StepDef[];
}

/** Recognised so the caller can refuse it by name; forgevm does not run containers. */
export interface DockerRuns {
  using: 'docker';
  /** `Dockerfile`, a path to one, or `docker://image`. */
  image: string;
}

export type ActionRuns = NodeRuns | CompositeRuns | DockerRuns;

export interface ActionManifest {
  /** The file read, as named in problems (e.g. `.github/actions/x/action.yml`). */
  file: string;
  /** `name:`, or the folder's display name when the manifest has none. */
  name: string;
  description?: string;
  author?: string;
  /** In file order. Input ids are matched case-insensitively by GitHub. */
  inputs: Record<string, ActionInput>;
  outputs: Record<string, ActionOutput>;
  runs: ActionRuns;
}

export interface ManifestResult {
  /** Present when there are no problems. */
  manifest?: ActionManifest;
  problems: WorkflowProblem[];
}

/** Real manifests are a few kilobytes; the largest known ones stay well below this. */
export const MAX_MANIFEST_BYTES = 512 * 1024;

const STATUS = ['success', 'failure', 'cancelled', 'always'];
const STEP_CONTEXTS = ['github', 'inputs', 'strategy', 'matrix', 'steps', 'job', 'runner', 'env'];
/** Contexts per place, from GitHub's action schema (no `secrets`, `vars` or `needs` in an action). */
const SCOPES = {
  inputDefault: { contexts: ['github', 'strategy', 'matrix', 'job', 'runner'], functions: ['hashFiles'] },
  outputValue: { contexts: ['github', 'strategy', 'matrix', 'steps', 'inputs', 'job', 'runner', 'env'], functions: [] },
  runsIf: { contexts: ['runner', 'github', 'job', 'strategy', 'matrix', 'env', 'inputs'], functions: [...STATUS, 'hashFiles'] },
} satisfies Record<string, ExpressionScope>;

export const COMPOSITE_STEP_RULES: StepRules = {
  scope: { contexts: STEP_CONTEXTS, functions: ['hashFiles'] },
  ifScope: { contexts: STEP_CONTEXTS, functions: [...STATUS, 'hashFiles'] },
  composite: true,
};

const USING = [...NODE_VERSIONS, 'composite', 'docker'];

export interface ReadManifestOptions {
  /** How the folder is named in problems: `.github/actions/x` or `acme/setup@v1`. */
  displayDir: string;
  /** Folder a symlinked action.yml must stay inside (the repository or workspace); default `dir`. */
  root?: string;
  maxBytes?: number;
}

/**
 * Reads the action in `dir`: action.yml (preferred, as on GitHub) or action.yaml. A folder with
 * only a Dockerfile is a Docker action, as GitHub's runner treats it.
 */
export async function readActionManifest(dir: string, options: ReadManifestOptions): Promise<ManifestResult> {
  const at = (name: string) => (options.displayDir === '' || options.displayDir === '.' ? name : `${options.displayDir.replace(/\/+$/, '')}/${name}`);
  const problem = (file: string, message: string): ManifestResult => ({ problems: [{ file, line: 1, column: 1, message }] });
  try {
    for (const name of ['action.yml', 'action.yaml']) {
      const file = at(name);
      const path = join(dir, name);
      const info = await lstat(path).catch(() => undefined);
      if (!info) continue;
      if (info.isSymbolicLink()) {
        const real = await realpath(path).catch(() => undefined);
        const root = await realpath(options.root ?? dir).catch(() => undefined);
        if (!real || !root || !real.startsWith(root + sep)) return problem(file, `${name} is a symbolic link that leads out of the action's repository; refusing to read it`);
      } else if (!info.isFile()) {
        return problem(file, `${name} is not a regular file`);
      }
      const text = await readCapped(path, options.maxBytes ?? MAX_MANIFEST_BYTES);
      if (text === undefined) return problem(file, `${name} is larger than ${Math.round((options.maxBytes ?? MAX_MANIFEST_BYTES) / 1024)} KiB; an action's metadata file is a few kilobytes`);
      return parseActionManifest(file, text, options.displayDir);
    }
    for (const name of ['Dockerfile', 'dockerfile']) {
      const info = await lstat(join(dir, name)).catch(() => undefined);
      if (info?.isFile()) {
        const manifest: ActionManifest = { file: at(name), name: options.displayDir, inputs: {}, outputs: {}, runs: { using: 'docker', image: name } };
        return { manifest, problems: [] };
      }
    }
    const exists = await lstat(dir).then((s) => s.isDirectory(), () => false);
    return problem(
      at('action.yml'),
      exists
        ? `no action.yml or action.yaml in ${options.displayDir || 'the folder'}; an action needs its metadata file there`
        : `there is no folder ${options.displayDir || '.'}; check the path in uses:`,
    );
  } catch (error) {
    return problem(at('action.yml'), `cannot read the action's metadata: ${(error as Error).message}`);
  }
}

/** Reads at most `max` bytes; undefined when the file is larger. */
async function readCapped(path: string, max: number): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(max + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return length > max ? undefined : buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The manifest text of `file` (named so in problems). `fallbackName` is used when `name:` is absent. */
export function parseActionManifest(file: string, text: string, fallbackName = file): ManifestResult {
  try {
    return parseUnsafe(file, text.replace(/^\uFEFF/, ''), fallbackName);
  } catch (error) {
    // A bug here must not take a job or the forge down: report it like any other problem.
    return { problems: [{ file, line: 1, column: 1, message: `internal error while reading the action: ${(error as Error).message}` }] };
  }
}

function parseUnsafe(file: string, text: string, fallbackName: string): ManifestResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const r = new YamlReader(file, doc, lines);
  for (const error of doc.errors.slice(0, 5)) {
    const pos = lines.linePos(error.pos[0]);
    r.problemAt({ line: pos.line, column: pos.col }, `YAML: ${error.message.split('\n')[0]}`);
  }
  if (doc.errors.length > 0) return { problems: r.problems };
  const root = r.resolve(doc.contents as AnyNode);
  if (!isMap(root)) {
    r.problem(root, 'an action metadata file must be a mapping with "name", "description", "inputs" and "runs"');
    return { problems: r.problems };
  }
  const manifest: ActionManifest = { file, name: fallbackName, inputs: {}, outputs: {}, runs: { using: 'composite', steps: [] } };
  let runsNode: AnyNode;
  let outputsNode: AnyNode;
  for (const { key, value } of r.entries(root, 'the action')) {
    switch (key) {
      case 'name': {
        const s = r.string(value, 'name');
        if (s !== undefined && s.trim() !== '') manifest.name = s;
        break;
      }
      case 'description':
      case 'author': {
        const s = r.string(value, key);
        if (s !== undefined) manifest[key] = s;
        break;
      }
      case 'inputs':
        manifest.inputs = parseInputs(r, value);
        break;
      case 'outputs':
        outputsNode = value;
        break;
      case 'runs':
        runsNode = value;
        break;
      default:
        break; // branding and anything else: GitHub's runner ignores unknown keys, and so does forgevm
    }
  }
  if (runsNode === undefined) r.problem(root, 'the action has no "runs:" (how to run it: using node20, node24 or composite)');
  else {
    const runs = parseRuns(r, runsNode);
    if (runs) manifest.runs = runs;
  }
  if (outputsNode !== undefined) manifest.outputs = parseOutputs(r, outputsNode, manifest.runs.using === 'composite');
  const problems = [...r.problems].sort((a, b) => a.line - b.line || a.column - b.column);
  return problems.length > 0 ? { problems } : { manifest, problems };
}

/** `inputs:` / `outputs:`: each name with the entries under it (a bare `name:` has none). */
function definitions(r: YamlReader, node: AnyNode, what: string) {
  if (isNullScalar(r.resolve(node))) return [];
  const map = r.map(node, what);
  if (!map) return [];
  return r.entries(map, what).map(({ key, keyNode, value }) => {
    const where = `${what}.${key}`;
    const fields = isNullScalar(r.resolve(value)) ? undefined : r.map(value, where);
    return { key, keyNode, where, fields: fields ? r.entries(fields, where) : [] };
  });
}

function parseInputs(r: YamlReader, node: AnyNode): Record<string, ActionInput> {
  const inputs: Record<string, ActionInput> = {};
  for (const { key, keyNode, where, fields } of definitions(r, node, 'inputs')) {
    if (key.trim() === '') r.problem(keyNode, 'an input needs a name');
    const input: ActionInput = { required: false };
    inputs[key] = input;
    for (const entry of fields) {
      const at = `${where}.${entry.key}`;
      const v = r.resolve(entry.value);
      if (entry.key === 'default') {
        const s = r.string(entry.value, at);
        if (s !== undefined) {
          input.default = s;
          checkExpressions(r, entry.value, s, SCOPES.inputDefault, at);
        }
      } else if (entry.key === 'required') {
        // GitHub never enforces `required` and does not check its type; real actions quote it.
        input.required = isScalar(v) && (v.value === true || (typeof v.value === 'string' && v.value.trim().toLowerCase() === 'true'));
      } else if ((entry.key === 'description' || entry.key === 'deprecationMessage') && isScalar(v) && v.value !== null) {
        input[entry.key] = String(v.value);
      }
      // Other keys (type, options, …) are ignored by GitHub's runner too.
    }
  }
  return inputs;
}

function parseOutputs(r: YamlReader, node: AnyNode, composite: boolean): Record<string, ActionOutput> {
  const outputs: Record<string, ActionOutput> = {};
  for (const { key, where, fields } of definitions(r, node, 'outputs')) {
    const output: ActionOutput = {};
    outputs[key] = output;
    for (const entry of fields) {
      const at = `${where}.${entry.key}`;
      if (entry.key === 'description') {
        const s = r.string(entry.value, at);
        if (s !== undefined) output.description = s;
      } else if (entry.key === 'value') {
        const s = r.string(entry.value, at);
        if (s === undefined) continue;
        output.value = s;
        if (composite) checkExpressions(r, entry.value, s, SCOPES.outputValue, at);
      } else {
        r.problem(entry.keyNode, `unknown key "${entry.key}" in ${where}${didYouMean(entry.key, ['description', 'value'])}`);
      }
    }
  }
  return outputs;
}

function parseRuns(r: YamlReader, node: AnyNode): ActionRuns | undefined {
  const map = r.map(node, 'runs');
  if (!map) return undefined;
  const usingNode = r.resolve(map.get('using', true) as AnyNode);
  if (!usingNode) {
    r.problem(map, `runs has no "using" (one of ${USING.join(', ')})`);
    return undefined;
  }
  const using = r.string(usingNode, 'runs.using')?.trim().toLowerCase();
  if (using === undefined) return undefined;
  if ((NODE_VERSIONS as readonly string[]).includes(using)) return parseNodeRuns(r, map, using as NodeVersion);
  if (using === 'composite') return parseCompositeRuns(r, map);
  if (using === 'docker') {
    const image = field(r, map, 'image');
    if (image === undefined) r.problem(map, 'runs.image is required for a Docker action (a Dockerfile or docker://image)');
    return { using: 'docker', image: image ?? '' };
  }
  const hint = /^node/.test(using) ? ' (use node20 or node24)' : didYouMean(using, USING);
  r.problem(usingNode, `runs.using "${using}" is not one of ${USING.join(', ')}${hint}`);
  return undefined;
}

/** A non-empty string field of `runs`, or undefined when absent (a wrong type is reported). */
function field(r: YamlReader, map: YAMLMap, key: string): string | undefined {
  const node = map.get(key, true) as AnyNode;
  if (node === undefined) return undefined;
  const s = r.string(node, `runs.${key}`);
  if (s !== undefined && s.trim() === '') {
    r.problem(node, `runs.${key} is empty`);
    return undefined;
  }
  return s;
}

function parseNodeRuns(r: YamlReader, map: YAMLMap, using: NodeVersion): NodeRuns | undefined {
  const main = field(r, map, 'main');
  if (main === undefined) {
    if (!map.has('main')) r.problem(map, `runs.main is required for a ${using} action (the script to run, e.g. dist/index.js)`);
    return undefined;
  }
  const runs: NodeRuns = { using, main, preIf: 'always()', postIf: 'always()' };
  const pre = field(r, map, 'pre');
  const post = field(r, map, 'post');
  if (pre !== undefined) runs.pre = pre;
  if (post !== undefined) runs.post = post;
  for (const [key, prop] of [['pre-if', 'preIf'], ['post-if', 'postIf']] as const) {
    const condition = field(r, map, key);
    if (condition === undefined) continue;
    runs[prop] = condition;
    checkCondition(r, map.get(key, true), condition, SCOPES.runsIf, `runs.${key}`);
  }
  return runs;
}

function parseCompositeRuns(r: YamlReader, map: YAMLMap): CompositeRuns | undefined {
  const stepsNode = map.get('steps', true) as AnyNode;
  if (stepsNode === undefined) {
    r.problem(map, 'runs.steps is required for a composite action');
    return undefined;
  }
  const seq = r.resolve(stepsNode);
  if (isSeq(seq) && seq.items.length === 0) {
    r.problem(seq, 'runs.steps is empty; a composite action needs at least one step');
    return { using: 'composite', steps: [] };
  }
  const steps = parseSteps(r, stepsNode, 'runs.steps', COMPOSITE_STEP_RULES);
  // parseSteps leaves `uses:` to the action loader in composite actions: check its form here.
  if (isSeq(seq)) {
    seq.items.forEach((item, index) => {
      const step = r.resolve(item as AnyNode);
      const usesNode = isMap(step) ? r.resolve(step.get('uses', true) as AnyNode) : undefined;
      if (!isScalar(usesNode) || typeof usesNode.value !== 'string') return;
      const parsed = parseActionRef(usesNode.value);
      if (!parsed.ok) r.problem(usesNode, `runs.steps[${index}].${parsed.error}`);
    });
  }
  return { using: 'composite', steps };
}

/** One line for an action forgevm recognises but does not run, or undefined when it runs it. */
export function unsupportedActionReason(uses: string, manifest: ActionManifest): string | undefined {
  if (manifest.runs.using !== 'docker') return undefined;
  return `uses: "${uses}" is a Docker container action (${manifest.file}), which forgevm does not run; use a JavaScript or composite action, or run the tool in a run: step`;
}
