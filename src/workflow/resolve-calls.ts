/**
 * Reusable workflows: reads the workflows that jobs call (`jobs.<id>.uses: ./path.yml`), attaches
 * each to its call job (`call.workflow`), and checks what GitHub checks before a run starts:
 * the called file exists at the same commit, is valid, declares `on: workflow_call`, takes the
 * inputs and secrets given (names, required ones, literal types), no call chain loops, and no
 * chain is deeper than GitHub's ten levels (the top-level caller and nine called workflows).
 */
import type { JobDef, SourcePos, Workflow, WorkflowProblem } from './model.ts';
import { parseWorkflow } from './parse.ts';
import { MAX_WORKFLOW_LEVELS } from './schema.ts';
import { didYouMean } from './yaml-reader.ts';

export interface ParsedFile {
  path: string;
  workflow?: Workflow;
  problems: WorkflowProblem[];
}

export type ReadFile = (filePath: string) => Promise<string | undefined>;

export interface ResolvedCalls {
  /** Problems found in callers (missing or invalid called file, inputs, secrets, loops, depth). */
  problems: WorkflowProblem[];
  /** Called files that were not among the given ones (their own problems included). */
  called: ParsedFile[];
}

export async function resolveCalls(files: ParsedFile[], read: ReadFile | undefined): Promise<ResolvedCalls> {
  return new CallResolver(files, read).run();
}

class CallResolver {
  readonly #given: ParsedFile[];
  readonly #read: ReadFile | undefined;
  /** Parsed files by path; undefined when the file does not exist. */
  readonly #files = new Map<string, Promise<ParsedFile | undefined>>();
  readonly #problems: WorkflowProblem[] = [];
  readonly #state = new Map<string, 'visiting' | 'done'>();
  /** The files being visited, outermost first. */
  readonly #chain: string[] = [];
  /** The longest call chain below each finished file, itself first. */
  readonly #deepest = new Map<string, string[]>();

  constructor(given: ParsedFile[], read: ReadFile | undefined) {
    this.#given = given;
    this.#read = read;
    for (const file of given) this.#files.set(file.path, Promise.resolve(file));
  }

  async run(): Promise<ResolvedCalls> {
    for (const file of this.#given) if (!this.#state.has(file.path)) await this.#visit(file);
    for (const file of this.#given) this.#checkDepth(file);
    const all = (await Promise.all([...this.#files.values()])).filter((f): f is ParsedFile => f !== undefined);
    this.#propagateInvalid(all);
    const called = all.filter((f) => !this.#given.includes(f));
    return { problems: this.#problems, called };
  }

  #load(filePath: string): Promise<ParsedFile | undefined> {
    let file = this.#files.get(filePath);
    if (!file) {
      file = (this.#read ? this.#read(filePath) : Promise.resolve(undefined)).then((text) =>
        text === undefined ? undefined : { path: filePath, ...parseWorkflow(filePath, text) },
      );
      this.#files.set(filePath, file);
    }
    return file;
  }

  #problem(file: string, pos: SourcePos, message: string): void {
    this.#problems.push({ file, line: pos.line, column: pos.column, message });
  }

  /** Depth-first over the call graph; an edge back into the current chain is a loop. */
  async #visit(file: ParsedFile): Promise<void> {
    this.#state.set(file.path, 'visiting');
    this.#chain.push(file.path);
    let deepest: string[] = [];
    for (const job of file.workflow?.jobs ?? []) {
      const call = job.call;
      if (!call) continue;
      const at = `jobs.${job.id}.uses`;
      if (!this.#read) {
        this.#problem(file.path, call.pos, `${at}: cannot read ${call.path} here (this source lists workflow folders only); run forgevm from the repository`);
        continue;
      }
      const target = await this.#load(call.path);
      if (!target) {
        this.#problem(file.path, call.pos, `${at}: ${call.uses}: no such file in the repository (at the commit being built); the path is relative to the repository root`);
        continue;
      }
      if (!target.workflow) continue; // not even a mapping: its own problems say why, and #propagateInvalid marks this call
      if (!target.workflow.on.workflowCall) {
        this.#problem(file.path, call.pos, `${at}: ${call.path} cannot be called: its on: does not list workflow_call`);
        continue;
      }
      this.#checkInterface(file.path, job, target.workflow);
      const state = this.#state.get(target.path);
      if (state === 'visiting') {
        const loop = [...this.#chain.slice(this.#chain.indexOf(target.path)), target.path];
        this.#problem(file.path, call.pos, `${at}: calling ${call.path} here makes a loop (${loop.join(' → ')}); a workflow cannot call itself, directly or through others`);
        continue;
      }
      if (state === undefined) await this.#visit(target);
      call.workflow = target.workflow;
      const below = this.#deepest.get(target.path) ?? [target.path];
      if (below.length > deepest.length) deepest = below;
    }
    this.#deepest.set(file.path, [file.path, ...deepest]);
    this.#chain.pop();
    this.#state.set(file.path, 'done');
  }

  /** Reported once, at the top-level file's first call on the deepest chain. */
  #checkDepth(file: ParsedFile): void {
    const chain = this.#deepest.get(file.path) ?? [];
    if (chain.length <= MAX_WORKFLOW_LEVELS) return;
    const job = file.workflow?.jobs.find((j) => j.call?.path === chain[1]);
    if (!job?.call) return;
    this.#problem(
      file.path,
      job.call.pos,
      `jobs.${job.id}.uses: reusable workflows nest ${chain.length} levels deep here (${chain.join(' → ')}); GitHub allows ${MAX_WORKFLOW_LEVELS} (the caller and ${MAX_WORKFLOW_LEVELS - 1} called workflows)`,
    );
  }

  /** A caller of a file with problems cannot run either: says so at each such call, up the chains. */
  #propagateInvalid(files: ParsedFile[]): void {
    const invalid = new Set([...files.filter((f) => f.problems.length > 0).map((f) => f.path), ...this.#problems.map((p) => p.file)]);
    const reported = new Set<string>();
    for (let changed = true; changed; ) {
      changed = false;
      for (const file of files) {
        for (const job of file.workflow?.jobs ?? []) {
          const call = job.call;
          const key = `${file.path}\0${job.id}`;
          if (!call || !invalid.has(call.path) || call.path === file.path || reported.has(key)) continue;
          reported.add(key);
          delete call.workflow;
          this.#problem(file.path, call.pos, `jobs.${job.id}.uses: the called workflow ${call.path} has problems (listed under its name); fix them first`);
          if (!invalid.has(file.path)) {
            invalid.add(file.path);
            changed = true;
          }
        }
      }
    }
  }

  /** `with:` and `secrets:` against what the called workflow declares (names match case-insensitively, as on GitHub). */
  #checkInterface(file: string, job: JobDef, called: Workflow): void {
    const call = job.call!;
    const declared = called.on.workflowCall!;
    const where = `jobs.${job.id}`;
    const inputNames = Object.keys(declared.inputs);
    const given = new Map(Object.keys(call.with).map((name) => [name.toLowerCase(), name]));
    for (const [name, value] of Object.entries(call.with)) {
      const pos = call.keyPos[`with.${name}`] ?? call.pos;
      const inputName = inputNames.find((n) => n.toLowerCase() === name.toLowerCase());
      if (inputName === undefined) {
        const known = inputNames.length > 0 ? `its inputs: ${inputNames.join(', ')}` : 'it declares no inputs';
        this.#problem(file, pos, `${where}.with.${name}: "${name}" is not an input of ${call.path}${didYouMean(name, inputNames)}; ${known}`);
        continue;
      }
      const type = declared.inputs[inputName]!.type;
      const literal = typeof value !== 'string' || !value.includes('${{');
      if (literal && type === 'boolean' && typeof value !== 'boolean') {
        this.#problem(file, pos, `${where}.with.${name}: input "${inputName}" of ${call.path} is a boolean; write true or false, not ${JSON.stringify(value)}`);
      } else if (literal && type === 'number' && typeof value !== 'number') {
        this.#problem(file, pos, `${where}.with.${name}: input "${inputName}" of ${call.path} is a number, not ${JSON.stringify(value)}`);
      }
    }
    for (const [name, input] of Object.entries(declared.inputs)) {
      if (input.required && !given.has(name.toLowerCase())) {
        this.#problem(file, call.pos, `${where}: input "${name}" of ${call.path} is required, but with: does not give it`);
      }
    }
    if (call.secrets === 'inherit') return;
    const secretNames = Object.keys(declared.secrets);
    const passed = new Set(Object.keys(call.secrets).map((n) => n.toLowerCase()));
    for (const name of Object.keys(call.secrets)) {
      if (secretNames.some((n) => n.toLowerCase() === name.toLowerCase())) continue;
      const known = secretNames.length > 0 ? `its secrets: ${secretNames.join(', ')}` : 'it declares no secrets (pass them all with secrets: inherit)';
      this.#problem(file, call.keyPos[`secrets.${name}`] ?? call.pos, `${where}.secrets.${name}: "${name}" is not a secret of ${call.path}${didYouMean(name, secretNames)}; ${known}`);
    }
    for (const [name, secret] of Object.entries(declared.secrets)) {
      if (secret.required && !passed.has(name.toLowerCase())) {
        this.#problem(file, call.pos, `${where}: secret "${name}" of ${call.path} is required; pass it under secrets: or use secrets: inherit`);
      }
    }
  }
}
