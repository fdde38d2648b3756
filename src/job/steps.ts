/**
 * The step executor: runs a job's steps in a guest with GitHub Actions semantics and writes a
 * human log. A job, top to bottom:
 *
 *   set up    job env and timeout, the event file, remote actions fetched into the guest
 *   pre       `pre:` stages of the job's remote JavaScript actions, in step order
 *   main      the steps: `run:` scripts, actions/checkout (native), JavaScript actions and
 *             composite actions (whose steps run here too, in a scope of their own)
 *   post      `post:` stages of the actions whose main stage ran, in reverse order
 *   outputs   `jobs.<id>.outputs`
 *
 * Semantics kept from GitHub: shell templates, env precedence, file commands and workflow
 * commands, `if:` with status functions, continue-on-error, step and job timeouts, cancellation
 * with cleanup time for `always()` steps, secrets masked in everything written.
 *
 * Differences from GitHub, on purpose:
 * - The job timeout covers the steps only (the VM boot is bounded elsewhere).
 * - `timeout-minutes` may be fractional (GitHub documents integers only); handy for tests.
 * - actions/checkout is native (checkout-step.ts): the workspace is uploaded before the steps.
 */
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import type { Guest, GuestFile } from '../ssh/guest.ts';
import type { JobLog } from '../log/job-log.ts';
import { LogCapExceeded } from '../log/job-log.ts';
import type { GithubContext, JobInstance, NeedsEntry, StepDef } from '../workflow/model.ts';
import { evaluateCondition, evaluateExpression, hashFilesCallsIn, interpolate, type ExpressionFunctions, type StatusFunctions } from '../workflow/expressions.ts';
import { HashFiles } from './hash-files.ts';
import type { JobConclusion, StepConclusion, StepResult } from './result.ts';
import { FileCommandError, addPathEntries, composePath, isValidEnvName, isValidActionEnvName, parseKeyValueFile, parsePathFile } from './env-files.ts';
import { commandFor, resolveShell } from './step-script.ts';
import { RUNNER_NAME, eventPath, fixedDefaults, overridableDefaults, stepFiles, type StepFiles } from './runner-env.ts';
import { checkoutInputs, runCheckoutStep } from './checkout-step.ts';
import { formatDuration } from './duration.ts';
import { StepOutput, type CommandAnnotation } from './step-output.ts';
import { noActions, type ActionRuntime, type LoadedAction } from './action-runtime.ts';
import { inputEnvName, planInputs } from './action-inputs.ts';

export interface StepsInput {
  instance: JobInstance;
  /** Run-level github context. */
  github: GithubContext;
  needs: Record<string, NeedsEntry>;
  inputs: Record<string, unknown>;
  vars: Record<string, string>;
  /** The `secrets` context (empty for runs that must not see secrets, such as fork PRs). */
  secrets?: Record<string, string>;
  /** Guest path of the checked-out repository, e.g. /root/work/<repo>. */
  workspace: string;
  /** Guest path for RUNNER_TEMP and forgevm's own files. */
  tempDir: string;
  /** 360 unless configured. */
  defaultTimeoutMinutes: number;
  /** Where actions come from; without it, `uses:` steps other than checkout fail clearly. */
  actions?: ActionRuntime;
}

export interface StepsOutcome {
  conclusion: JobConclusion;
  steps: StepResult[];
  outputs: Record<string, string>;
  /** Set when the job failed outside a step's own exit status (log cap, bad job settings): one line. */
  error?: string;
  /** GITHUB_STEP_SUMMARY contents of all steps, in order (Markdown). */
  summary: string;
  /** `::error`/`::warning`/`::notice` commands of all steps, in order. */
  annotations: CommandAnnotation[];
}

/** After a cancel or job timeout, `always()` steps still run, but at most this long (GitHub: 5 min). */
const CLEANUP_LIMIT_MINUTES = 5;
/** GitHub rejects step summaries over 1 MiB. */
const SUMMARY_LIMIT_BYTES = 1024 * 1024;
/** Composite actions may nest this deep (GitHub's limit). */
const MAX_COMPOSITE_DEPTH = 10;

interface StepContextEntry {
  outputs: Record<string, string>;
  outcome: StepConclusion;
  conclusion: StepConclusion;
}

/**
 * The steps of the job, or of one composite action: what `steps.*`, `inputs.*` and the status
 * functions see, and what every step of the scope inherits.
 */
interface Scope {
  steps: Record<string, StepContextEntry>;
  failed: boolean;
  inputs: Record<string, unknown>;
  /** Env over the job env for every step here (a composite action: its caller step's env). */
  env: Record<string, string>;
  /** Additions to the github context (`action_path`, … inside composite actions). */
  github: Record<string, unknown>;
  /** Composite actions see no secrets context (GitHub: pass secrets in as inputs). */
  secrets: boolean;
  depth: number;
  /** For nested step headers: `composite name › `. */
  prefix: string;
  /** The job's own steps: job and workflow `defaults.run` apply. */
  jobLevel: boolean;
  /** GITHUB_ACTION of the composite step this scope runs in. */
  actionId?: string;
}

/** The state an action instance keeps between its pre, main and post stages (GITHUB_STATE). */
interface ActionInstance {
  action: LoadedAction;
  step: StepDef;
  name: string;
  state: Record<string, string>;
  /** Inputs and step env as the main stage evaluated them (post reuses them). */
  env: Record<string, string>;
  scope: Scope;
}

interface Executed {
  outcome: StepConclusion;
  exitCode: number | null;
  outputs: Record<string, string>;
  /** A line for the log before the result line. */
  message?: string;
}

class JobFailure extends Error {}

export async function runSteps(guest: Guest, log: JobLog, input: StepsInput, signal: AbortSignal): Promise<StepsOutcome> {
  return new JobSteps(guest, log, input, signal).run();
}

class JobSteps {
  readonly #guest: Guest;
  readonly #log: JobLog;
  readonly #input: StepsInput;
  readonly #cancel: AbortSignal;
  readonly #actions: ActionRuntime;
  /** Aborted on cancel or job timeout: what running steps listen to. */
  readonly #jobAbort = new AbortController();
  #jobTimedOut = false;
  #fatal: string | undefined;
  #env: Record<string, string> = {};
  #prependPath: string[] = [];
  #basePath: string | undefined;
  #bashAvailable: boolean | undefined;
  readonly #job: Scope;
  readonly #results: StepResult[] = [];
  readonly #annotations: CommandAnnotation[] = [];
  /** Post stages to run, in the order their main stages ran (run in reverse). */
  readonly #posts: ActionInstance[] = [];
  /** Remote actions loaded during set-up, by `uses:` value. */
  readonly #preloaded = new Map<string, LoadedAction>();
  /** GITHUB_STATE written by pre stages, for the same step's main and post stages. */
  readonly #preStates = new Map<StepDef, Record<string, string>>();
  #summary = '';
  #generatedIds = 0;
  /** hashFiles() answers for the step being evaluated (files change between steps). */
  #hashFiles: HashFiles;

  constructor(guest: Guest, log: JobLog, input: StepsInput, signal: AbortSignal) {
    this.#guest = guest;
    this.#log = log;
    this.#input = input;
    this.#cancel = signal;
    this.#actions = input.actions ?? noActions('this runner has no action support');
    this.#hashFiles = new HashFiles(guest, input.workspace);
    this.#job = { steps: {}, failed: false, inputs: input.inputs, env: {}, github: {}, secrets: true, depth: 0, prefix: '', jobLevel: true };
    for (const value of Object.values(input.secrets ?? {})) if (value !== '') log.masker.add(value);
  }

  get #cancelled(): boolean {
    return this.#cancel.aborted || this.#jobTimedOut;
  }

  async run(): Promise<StepsOutcome> {
    const onCancel = (): void => this.#jobAbort.abort();
    if (this.#cancel.aborted) this.#jobAbort.abort();
    else this.#cancel.addEventListener('abort', onCancel, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      this.#env = this.#jobEnv();
      const minutes = this.#jobTimeoutMinutes();
      timer = setTimeout(() => {
        this.#jobTimedOut = true;
        this.#log.meta(`✘ job timed out after ${minutes} minute${minutes === 1 ? '' : 's'} (timeout-minutes)`);
        this.#jobAbort.abort();
      }, minutes * 60_000);
      // Each guest call is a round trip (slow in an emulated guest): ask whether bash exists
      // while the event file is written, instead of before the first step.
      const needsBashProbe = this.#input.instance.job.steps.some((step) => step.run !== undefined);
      await Promise.all([
        this.#writeFiles([{ path: eventPath(this.#input.tempDir), content: JSON.stringify(this.#input.github.event ?? {}) }]),
        needsBashProbe ? this.#hasBash() : undefined,
        this.#loadRemoteActions(),
      ]);
      if (this.#fatal === undefined) await this.#runPreStages();
      for (const step of this.#input.instance.job.steps) {
        if (this.#fatal !== undefined) this.#results.push(this.#skipped(step, this.#job, 'the job already failed'));
        else this.#results.push(await this.#runStep(step, this.#job));
        this.#checkCap();
      }
      await this.#runPostStages();
    } catch (err) {
      // Job-level settings that cannot be evaluated, or the guest refusing the event file.
      this.#fatal = messageOf(err);
      this.#log.meta(`✘ ${this.#fatal}`);
    } finally {
      clearTimeout(timer);
      this.#cancel.removeEventListener('abort', onCancel);
    }
    const outputs = await this.#jobOutputs();
    const conclusion: JobConclusion = this.#jobTimedOut
      ? 'timed_out'
      : this.#cancel.aborted
        ? 'cancelled'
        : this.#job.failed || this.#fatal !== undefined
          ? 'failure'
          : 'success';
    return {
      conclusion,
      steps: this.#results,
      outputs,
      ...(this.#fatal !== undefined ? { error: this.#log.masker.mask(this.#fatal) } : {}),
      summary: this.#summary,
      annotations: this.#annotations,
    };
  }

  #checkCap(): void {
    if (this.#log.capReached && this.#fatal === undefined) this.#fatal = new LogCapExceeded(this.#log.capBytes).message;
  }

  // ---- contexts -------------------------------------------------------------------------------

  #github(scope: Scope = this.#job): GithubContext {
    const github: GithubContext = { ...this.#input.github, job: this.#input.instance.job.id, workspace: this.#input.workspace, ...scope.github };
    // Inside a composite action, its own result so far (GitHub's github.action_status).
    if (!scope.jobLevel) github.action_status = this.#jobStatus(scope);
    return github;
  }

  #strategy(): Record<string, unknown> {
    const s = this.#input.instance.strategy;
    return { 'fail-fast': s.failFast, 'job-index': s.jobIndex, 'job-total': s.jobTotal, 'max-parallel': s.maxParallel ?? s.jobTotal };
  }

  /** Contexts for job-level fields (env, timeout-minutes, continue-on-error), as GitHub allows them. */
  #jobContexts(): Record<string, unknown> {
    return {
      github: this.#github(),
      needs: this.#input.needs,
      strategy: this.#strategy(),
      matrix: this.#input.instance.matrix,
      vars: this.#input.vars,
      inputs: this.#input.inputs,
      secrets: this.#input.secrets ?? {},
    };
  }

  /** Contexts for step fields; `env` is the job env plus GITHUB_ENV (plus scope and step env where given). */
  #stepContexts(scope: Scope, env: Record<string, string> = { ...this.#env, ...scope.env }): Record<string, unknown> {
    return {
      ...this.#jobContexts(),
      github: this.#github(scope),
      inputs: scope.inputs,
      secrets: scope.secrets ? (this.#input.secrets ?? {}) : {},
      env,
      steps: scope.steps,
      job: { status: this.#jobStatus(scope) },
      runner: {
        os: 'Linux',
        arch: 'X64',
        name: RUNNER_NAME,
        temp: this.#input.tempDir,
        tool_cache: posix.join(this.#input.tempDir, '_tool'),
      },
    };
  }

  #jobStatus(scope: Scope): 'success' | 'failure' | 'cancelled' {
    if (this.#cancelled) return 'cancelled';
    return scope.failed ? 'failure' : 'success';
  }

  #status(scope: Scope): StatusFunctions {
    return {
      success: () => !scope.failed && !this.#cancelled,
      failure: () => scope.failed,
      cancelled: () => this.#cancelled,
      hashFiles: (patterns) => this.#hashFiles.lookup(patterns),
    };
  }

  /** Outside `if:`, only hashFiles() (the status functions throw "not available"). */
  #functions(): ExpressionFunctions {
    return { hashFiles: (patterns) => this.#hashFiles.lookup(patterns) };
  }

  /**
   * Computes, in the guest, the hashFiles() calls of templates about to be evaluated with
   * `contexts`, so the synchronous evaluator can look them up.
   */
  async #prepareHashFiles(templates: ReadonlyArray<string | number | boolean | undefined>, contexts: Record<string, unknown>, what: string, condition = false): Promise<void> {
    try {
      const calls = templates.flatMap((t) => (typeof t === 'string' ? hashFilesCallsIn(t, contexts, condition) : []));
      await this.#hashFiles.prepare(calls);
    } catch (err) {
      throw new JobFailure(what === '' ? messageOf(err) : `${what}: ${messageOf(err)}`);
    }
  }

  /** Workflow env, then job env over it, each evaluated with the contexts GitHub allows there. */
  #jobEnv(): Record<string, string> {
    const { workflow, job } = this.#input.instance;
    const env: Record<string, string> = {};
    const workflowContexts = { github: this.#github(), vars: this.#input.vars, inputs: this.#input.inputs, secrets: this.#input.secrets ?? {} };
    for (const [name, value] of Object.entries(workflow.env)) env[name] = this.#evalText(value, workflowContexts, `workflow env ${name}`);
    for (const [name, value] of Object.entries(job.env)) env[name] = this.#evalText(value, this.#jobContexts(), `jobs.${job.id}.env.${name}`);
    return env;
  }

  #jobTimeoutMinutes(): number {
    const { job } = this.#input.instance;
    if (job.timeoutMinutes === undefined) return this.#input.defaultTimeoutMinutes;
    return this.#minutes(job.timeoutMinutes, this.#jobContexts(), `jobs.${job.id}.timeout-minutes`);
  }

  #evalText(template: string, contexts: Record<string, unknown>, what: string): string {
    try {
      return interpolate(template, contexts, this.#functions());
    } catch (err) {
      throw new JobFailure(`${what}: ${messageOf(err)}`);
    }
  }

  /** A number or boolean field that may be a `${{ }}` expression. */
  #evalTyped(value: number | boolean | string, contexts: Record<string, unknown>, what: string): unknown {
    if (typeof value !== 'string') return value;
    const sole = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(value);
    try {
      if (sole?.[1] !== undefined && !sole[1].includes('${{')) return evaluateExpression(sole[1].trim(), contexts, this.#functions());
      return interpolate(value, contexts, this.#functions());
    } catch (err) {
      throw new JobFailure(`${what}: ${messageOf(err)}`);
    }
  }

  #minutes(value: number | string, contexts: Record<string, unknown>, what: string): number {
    const raw = this.#evalTyped(value, contexts, what);
    const minutes = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    if (!Number.isFinite(minutes) || minutes <= 0) {
      throw new JobFailure(`${what}: expected a positive number of minutes, got ${JSON.stringify(raw)}`);
    }
    return minutes;
  }

  #flag(value: boolean | string, contexts: Record<string, unknown>, what: string): boolean {
    const raw = this.#evalTyped(value, contexts, what);
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true') return true;
    if (raw === 'false' || raw === '' || raw === null) return false;
    throw new JobFailure(`${what}: expected true or false, got ${JSON.stringify(raw)}`);
  }

  /** Step env: evaluated with the env context of the scope (job env plus GITHUB_ENV), layered on top. */
  async #stepEnv(step: StepDef, scope: Scope, name: string): Promise<Record<string, string>> {
    const contexts = this.#stepContexts(scope);
    await this.#prepareHashFiles(Object.values(step.env), contexts, `env of step "${name}"`);
    const env: Record<string, string> = {};
    for (const [envName, value] of Object.entries(step.env)) env[envName] = this.#evalText(value, contexts, `env.${envName} of step "${name}"`);
    return env;
  }

  // ---- one step -------------------------------------------------------------------------------

  #displayName(step: StepDef, contexts: Record<string, unknown>): string {
    if (step.name !== undefined) {
      try {
        return interpolate(step.name, contexts, this.#functions());
      } catch {
        return step.name;
      }
    }
    if (step.run !== undefined) return step.run.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'run';
    return step.uses !== undefined ? `Run ${step.uses}` : `step ${step.index + 1}`;
  }

  #record(step: StepDef, scope: Scope, entry: StepContextEntry): void {
    if (step.id !== undefined) scope.steps[step.id] = entry;
  }

  #skipped(step: StepDef, scope: Scope, why: string): StepResult {
    const name = scope.prefix + this.#displayName(step, this.#stepContexts(scope));
    const start = this.#log.size;
    this.#log.meta(`○ ${name} skipped (${why})`);
    this.#record(step, scope, { outputs: {}, outcome: 'skipped', conclusion: 'skipped' });
    return {
      name,
      ...(step.id !== undefined ? { id: step.id } : {}),
      outcome: 'skipped',
      conclusion: 'skipped',
      exitCode: null,
      startedAt: new Date().toISOString(),
      durationMs: 0,
      log: { start, end: this.#log.size },
    };
  }

  async #runStep(step: StepDef, scope: Scope, parent?: AbortSignal): Promise<StepResult> {
    this.#hashFiles = new HashFiles(this.#guest, this.#input.workspace);
    const contexts = this.#stepContexts(scope);
    let runs: boolean;
    try {
      if (step.if !== undefined) await this.#prepareHashFiles([step.if], contexts, '', true);
      runs = evaluateCondition(step.if ?? 'success()', contexts, this.#status(scope));
    } catch (err) {
      // GitHub fails the step (and so the job) when its condition cannot be evaluated.
      return this.#finishEarly(step, scope, `if: ${messageOf(err)}`);
    }
    if (!runs) {
      return this.#skipped(step, scope, step.if !== undefined ? `if: ${step.if.trim()}` : this.#cancelled ? 'the job was cancelled' : 'an earlier step failed');
    }
    // Whether the step runs as cleanup after a cancel or timeout is decided with its `if:`: a
    // cancel that lands while its files are written must still stop it, not grant it cleanup time.
    const asCleanup = this.#cancelled;

    // A name that cannot be computed falls back to its text, as before.
    await this.#prepareHashFiles([step.name], contexts, 'name').catch(() => {});
    const name = scope.prefix + this.#displayName(step, contexts);
    const startedAt = new Date();
    const logStart = this.#log.size;
    this.#log.meta(`▶ ${name}`);

    let executed: Executed;
    let continueOnError = false;
    const control = new StepControl(asCleanup ? AbortSignal.timeout(CLEANUP_LIMIT_MINUTES * 60_000) : (parent ?? this.#jobAbort.signal));
    try {
      await this.#prepareHashFiles([step.continueOnError, step.timeoutMinutes], contexts, `step "${name}"`);
      continueOnError = this.#flag(step.continueOnError, contexts, `continue-on-error of step "${name}"`);
      if (step.timeoutMinutes !== undefined) control.timeoutAfter(this.#minutes(step.timeoutMinutes, contexts, `timeout-minutes of step "${name}"`));
      executed = step.uses !== undefined ? await this.#runUses(step, scope, name, control) : await this.#runScript(step, scope, name, control);
    } catch (err) {
      executed = { outcome: control.signal.aborted && !control.timedOut ? 'cancelled' : 'failure', exitCode: null, outputs: {}, message: `✘ ${name}: ${messageOf(err)}` };
    } finally {
      control.dispose();
    }
    if (control.timedOut && executed.outcome !== 'success') {
      executed = { ...executed, outcome: 'failure', message: `step timed out after ${formatMinutes(control.timeoutMinutes!)} (timeout-minutes)` };
    }
    if (executed.message) this.#log.meta(executed.message);

    const { outcome } = executed;
    const conclusion: StepConclusion = outcome === 'failure' && continueOnError ? 'success' : outcome;
    if (conclusion === 'failure') scope.failed = true;
    const durationMs = Date.now() - startedAt.getTime();
    this.#log.meta(resultLine(name, outcome, executed.exitCode, control.timedOut, continueOnError, durationMs));
    this.#record(step, scope, { outputs: executed.outputs, outcome, conclusion });
    return {
      name,
      ...(step.id !== undefined ? { id: step.id } : {}),
      outcome,
      conclusion,
      exitCode: executed.exitCode,
      ...(control.timedOut ? { timedOut: true } : {}),
      startedAt: startedAt.toISOString(),
      durationMs,
      log: { start: logStart, end: this.#log.size },
    };
  }

  /** A step that failed before it could start (bad `if:`): a failure with its reason logged. */
  #finishEarly(step: StepDef, scope: Scope, reason: string): StepResult {
    const name = scope.prefix + this.#displayName(step, this.#stepContexts(scope));
    const start = this.#log.size;
    this.#log.meta(`✘ ${name}: ${reason}`);
    scope.failed = true;
    this.#record(step, scope, { outputs: {}, outcome: 'failure', conclusion: 'failure' });
    return {
      name,
      ...(step.id !== undefined ? { id: step.id } : {}),
      outcome: 'failure',
      conclusion: 'failure',
      exitCode: null,
      startedAt: new Date().toISOString(),
      durationMs: 0,
      log: { start, end: this.#log.size },
    };
  }

  // ---- run: steps -----------------------------------------------------------------------------

  async #runScript(step: StepDef, scope: Scope, name: string, control: StepControl): Promise<Executed> {
    const { job, workflow } = this.#input.instance;
    const stepEnv = await this.#stepEnv(step, scope, name);
    const envContext = { ...this.#env, ...scope.env, ...stepEnv };
    const contexts = this.#stepContexts(scope, envContext);
    const defaults = scope.jobLevel ? [job.defaults, workflow.defaults] : [];
    const dirSpec = step.workingDirectory ?? defaults.find((d) => d.workingDirectory !== undefined)?.workingDirectory;
    const shellSpec = step.shell ?? defaults.find((d) => d.shell !== undefined)?.shell;
    await this.#prepareHashFiles([step.run, shellSpec, dirSpec], contexts, `step "${name}"`);

    const script = this.#evalText(step.run ?? '', contexts, `run of step "${name}"`);
    const shellText = shellSpec === undefined ? undefined : this.#evalText(shellSpec, contexts, `shell of step "${name}"`);
    const bash = shellText === undefined || shellText.trim() === '' ? await this.#hasBash() : true;
    const shell = resolveShell(shellText, bash);
    const cwd =
      dirSpec === undefined
        ? this.#input.workspace
        : posix.resolve(this.#input.workspace, this.#evalText(dirSpec, contexts, `working-directory of step "${name}"`));
    const key = randomUUID();
    const scriptPath = posix.join(this.#input.tempDir, `${key}${shell.extension}`);
    return this.#runProcess({
      key,
      argv: commandFor(shell, scriptPath),
      script: { path: scriptPath, content: shell.wrap(script) },
      env: envContext,
      cwd,
      checkCwd: dirSpec !== undefined,
      action: this.#actionId(step, scope),
      scope,
      control,
    });
  }

  #actionId(step: StepDef, scope: Scope): string {
    if (scope.actionId !== undefined) return step.id !== undefined ? `${scope.actionId}_${step.id}` : scope.actionId;
    return step.id ?? this.#generatedActionId();
  }

  /**
   * One process in the guest: the step's files written, the command run with its env, its output
   * through workflow commands and masks into the log, then the file commands read back.
   */
  async #runProcess(spec: {
    key: string;
    argv: string[];
    script?: { path: string; content: string };
    env: Record<string, string>;
    cwd: string;
    checkCwd: boolean;
    action: string;
    scope: Scope;
    control: StepControl;
    /** JavaScript actions: GITHUB_STATE is read back into this. */
    state?: Record<string, string>;
    /** Extra variables after the defaults (INPUT_*, STATE_*, ACTIONS_*, GITHUB_ACTION_*). */
    extraEnv?: Record<string, string>;
  }): Promise<Executed> {
    const { job, workflow } = this.#input.instance;
    const files = stepFiles(this.#input.tempDir, spec.key);
    const env: Record<string, string> = {
      ...overridableDefaults(),
      ...spec.env,
      ...fixedDefaults({
        github: this.#input.github,
        jobId: job.id,
        workflowFile: workflow.file,
        workspace: this.#input.workspace,
        tempDir: this.#input.tempDir,
        action: spec.action,
        files,
      }),
      ...spec.extraEnv,
    };
    if (spec.state) env.GITHUB_STATE = files.state;
    if (this.#prependPath.length > 0) env.PATH = composePath(this.#prependPath, spec.env.PATH ?? (await this.#guestPath()));
    const badName = Object.keys(env).find((n) => !(n.startsWith('INPUT_') || n.startsWith('STATE_') ? isValidActionEnvName(n) : isValidEnvName(n)));
    if (badName !== undefined) throw new Error(`environment variable name "${badName}" is invalid: use letters, digits and _ and do not start with a digit`);

    // Each guest call is a round trip that costs processes in the guest: the script and the
    // empty file-command files go in one batch where the guest supports it.
    const toWrite: GuestFile[] = [
      ...(spec.script ? [{ path: spec.script.path, content: spec.script.content, mode: 0o755 }] : []),
      ...[files.env, files.output, files.path, files.summary, ...(spec.state ? [files.state] : [])].map((file) => ({ path: file, content: '' })),
    ];
    const [cwdExists] = await Promise.all([!spec.checkCwd || this.#isDirectory(spec.cwd), this.#writeFiles(toWrite)]);
    if (!cwdExists) {
      throw new Error(`working-directory ${spec.cwd} does not exist in the guest; create it in an earlier step or fix the path`);
    }
    if (spec.control.signal.aborted) return { outcome: 'cancelled', exitCode: null, outputs: {} };

    const output = new StepOutput(this.#log, {
      allowUnsecureCommands: env.ACTIONS_ALLOW_UNSECURE_COMMANDS === 'true',
      debug: env.ACTIONS_STEP_DEBUG === 'true' || this.#input.secrets?.ACTIONS_STEP_DEBUG === 'true' || this.#input.vars.ACTIONS_STEP_DEBUG === 'true',
    });
    let capHit = false;
    const onChunk = (channel: 'stdout' | 'stderr') => (chunk: Buffer) => {
      output.write(chunk, channel);
      if (this.#log.capReached && !capHit) {
        capHit = true;
        spec.control.abort();
      }
    };
    let result;
    try {
      result = await this.#guest.exec(spec.argv, {
        env,
        cwd: spec.cwd,
        signal: spec.control.signal,
        onStdout: onChunk('stdout'),
        onStderr: onChunk('stderr'),
      });
    } finally {
      output.flush();
    }
    this.#annotations.push(...output.annotations);

    let outcome: StepConclusion = result.code === 0 && output.failure === undefined ? 'success' : 'failure';
    let message: string | undefined;
    if (capHit) {
      this.#fatal = new LogCapExceeded(this.#log.capBytes).message;
      outcome = 'failure';
    } else if (spec.control.signal.aborted && !spec.control.timedOut && result.code !== 0) {
      outcome = 'cancelled';
    }
    for (const [name, value] of Object.entries(output.env)) this.#env[name] = value;
    this.#prependPath = addPathEntries(this.#prependPath, output.paths);
    if (spec.state) Object.assign(spec.state, output.state);

    let outputs: Record<string, string> = { ...output.outputs };
    try {
      outputs = { ...outputs, ...(await this.#applyFileCommands(files, spec.state)) };
    } catch (err) {
      if (!(err instanceof FileCommandError)) throw err;
      outcome = outcome === 'cancelled' ? outcome : 'failure';
      message = `✘ ${err.message}`;
    }
    return { outcome, exitCode: result.code, outputs, ...(message ? { message } : {}) };
  }

  /** Reads back GITHUB_ENV, GITHUB_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY (and GITHUB_STATE) after a step. */
  async #applyFileCommands(files: StepFiles, state: Record<string, string> | undefined): Promise<Record<string, string>> {
    // A file the script deleted has nothing to apply; a guest that cannot answer fails the step
    // (losing GITHUB_STATE or GITHUB_ENV silently would break later steps in confusing ways).
    const toRead = [files.env, files.output, files.path, files.summary, ...(state ? [files.state] : [])];
    const contents = await this.#guest.readFiles(toRead);
    const [envText = '', outputText = '', pathText = '', summary = '', stateText = ''] = contents.map((c) => c?.toString('utf8') ?? '');
    const envPairs = parseKeyValueFile(envText, 'GITHUB_ENV');
    for (const [name] of envPairs) {
      if (!isValidEnvName(name)) {
        throw new FileCommandError(`GITHUB_ENV: "${name}" is not a valid environment variable name (letters, digits, _; not starting with a digit)`);
      }
    }
    const outputPairs = parseKeyValueFile(outputText, 'GITHUB_OUTPUT');
    const statePairs = parseKeyValueFile(stateText, 'GITHUB_STATE');
    const paths = parsePathFile(pathText);
    for (const [name, value] of envPairs) this.#env[name] = value;
    this.#prependPath = addPathEntries(this.#prependPath, paths);
    if (state) for (const [name, value] of statePairs) state[name] = value;
    if (Buffer.byteLength(summary) > SUMMARY_LIMIT_BYTES) {
      this.#log.meta(`⚠ step summary is over 1 MiB and was dropped (GitHub's limit too)`);
    } else if (summary !== '') {
      this.#summary += this.#log.masker.mask(summary.endsWith('\n') ? summary : `${summary}\n`);
    }
    return Object.fromEntries(outputPairs);
  }

  // ---- uses: steps ----------------------------------------------------------------------------

  async #runUses(step: StepDef, scope: Scope, name: string, control: StepControl): Promise<Executed> {
    const uses = step.uses!.trim();
    const stepEnv = await this.#stepEnv(step, scope, name);
    const contexts = this.#stepContexts(scope, { ...this.#env, ...scope.env, ...stepEnv });
    await this.#prepareHashFiles(Object.values(step.with), contexts, `with of step "${name}"`);
    const withValues: Record<string, string> = {};
    for (const [key, value] of Object.entries(step.with)) withValues[key] = this.#evalText(value, contexts, `with.${key} of step "${name}"`);

    if (/^actions\/checkout@/i.test(uses)) {
      const failure = await runCheckoutStep(this.#guest, checkoutInputs(withValues), {
        repository: this.#input.github.repository,
        sha: this.#input.github.sha,
        refs: [this.#input.github.ref, this.#input.github.ref_name, this.#input.github.head_ref],
        workspace: this.#input.workspace,
        log: (line) => this.#log.meta(line),
      });
      return { outcome: failure ? 'failure' : 'success', exitCode: null, outputs: {}, ...(failure ? { message: `✘ ${failure}` } : {}) };
    }

    const action = this.#preloaded.get(uses) ?? (await this.#actions.load(uses, control.signal));
    const { definition } = action;
    // The pre stage's GITHUB_STATE carries over to main and post.
    const instance: ActionInstance = { action, step, name, state: this.#preStates.get(step) ?? {}, env: {}, scope };
    const inputs = await this.#evaluateInputs(definition, withValues, contexts, name);
    switch (definition.runs.using) {
      case 'docker':
        throw new Error(`${uses} is a Docker container action, which forgevm does not run (jobs run in VMs without Docker); use a JavaScript or composite action, or run the tool in a run: step`);
      case 'composite':
        return this.#runComposite(instance, definition.runs.steps, inputs, stepEnv, control);
      default: {
        instance.env = { ...stepEnv, ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [inputEnvName(k), String(v)])) };
        const executed = await this.#runNodeStage(instance, 'main', control);
        if (definition.runs.post !== undefined) this.#posts.push(instance);
        return executed;
      }
    }
  }

  /** `with:` values over action.yml defaults (evaluated with the step's contexts), as GitHub passes them. */
  async #evaluateInputs(definition: LoadedAction['definition'], withValues: Record<string, string>, contexts: Record<string, unknown>, name: string): Promise<Record<string, string>> {
    const plan = planInputs(definition.inputs, withValues, definition.name);
    for (const warning of plan.warnings) this.#log.meta(warning);
    const inputs: Record<string, string> = {};
    const defaults = Object.entries(plan.templates).filter(([key]) => !plan.fromWith.has(key));
    await this.#prepareHashFiles(defaults.map(([, template]) => template), contexts, `inputs of step "${name}"`);
    for (const [key, template] of Object.entries(plan.templates)) {
      inputs[key] = plan.fromWith.has(key) ? (withValues[key] ?? template) : this.#evalText(template, contexts, `default of input "${key}" (${definition.name})`);
    }
    return inputs;
  }

  /** One stage (pre, main or post) of a JavaScript action: `node <action dir>/<file>`. */
  async #runNodeStage(instance: ActionInstance, stage: 'pre' | 'main' | 'post', control: StepControl): Promise<Executed> {
    const runs = instance.action.definition.runs;
    if (runs.using === 'composite' || runs.using === 'docker') throw new Error(`internal: ${runs.using} action has no ${stage} stage`);
    const file = runs[stage];
    if (file === undefined) throw new Error(`internal: ${instance.action.definition.name} has no ${stage} stage`);
    const node = await this.#actions.node(control.signal);
    const entry = posix.resolve(instance.action.dir, file);
    if (!entry.startsWith(`${instance.action.dir}/`)) throw new Error(`${instance.action.definition.name}: runs.${stage} "${file}" points outside the action's folder`);
    const state: Record<string, string> = {};
    for (const [name, value] of Object.entries(instance.state)) {
      // The runner passes any name; a shell's `env` cannot pass one with `=`, spaces and the like.
      if (isValidActionEnvName(`STATE_${name}`)) state[`STATE_${name}`] = value;
      else this.#log.meta(`⚠ state "${name}" saved by ${instance.action.definition.name} is not passed to its ${stage} stage: use letters, digits, _, - and . in state names`);
    }
    return this.#runProcess({
      key: randomUUID(),
      argv: [node, entry],
      env: { ...this.#env, ...instance.scope.env, ...instance.env },
      cwd: this.#input.workspace,
      checkCwd: false,
      action: this.#actionId(instance.step, instance.scope),
      scope: instance.scope,
      control,
      state: instance.state,
      extraEnv: { ...this.#actionEnv(instance.action), ...state, ...this.#actions.serviceEnv() },
    });
  }

  #actionEnv(action: LoadedAction): Record<string, string> {
    return {
      GITHUB_ACTION_PATH: action.dir,
      ...(action.repository ? { GITHUB_ACTION_REPOSITORY: action.repository } : {}),
      ...(action.ref ? { GITHUB_ACTION_REF: action.ref } : {}),
    };
  }

  async #runComposite(instance: ActionInstance, steps: StepDef[], inputs: Record<string, string>, stepEnv: Record<string, string>, control: StepControl): Promise<Executed> {
    const { action, scope: parent } = instance;
    if (parent.depth + 1 > MAX_COMPOSITE_DEPTH) throw new Error(`composite actions nest deeper than ${MAX_COMPOSITE_DEPTH} levels (GitHub's limit)`);
    const scope: Scope = {
      steps: {},
      failed: false,
      inputs,
      env: { ...parent.env, ...stepEnv },
      github: {
        action_path: action.dir,
        ...(action.repository ? { action_repository: action.repository } : {}),
        ...(action.ref ? { action_ref: action.ref } : {}),
      },
      secrets: false,
      depth: parent.depth + 1,
      prefix: `${instance.name} › `,
      jobLevel: false,
      actionId: this.#actionId(instance.step, parent),
    };
    // Composite steps see GITHUB_ACTION_PATH in their env too.
    scope.env.GITHUB_ACTION_PATH = action.dir;
    let cancelled = false;
    for (const step of steps) {
      const result = await this.#runStep(step, scope, control.signal);
      if (result.outcome === 'cancelled') cancelled = true;
      this.#checkCap();
      if (this.#fatal !== undefined) break;
    }
    const outputs: Record<string, string> = {};
    const contexts = this.#stepContexts(scope);
    for (const [key, output] of Object.entries(action.definition.outputs)) {
      if (output.value === undefined) continue;
      try {
        await this.#prepareHashFiles([output.value], contexts, '');
        outputs[key] = interpolate(output.value, contexts, this.#functions());
      } catch (err) {
        this.#log.meta(`⚠ output ${key} of ${action.definition.name} could not be evaluated: ${messageOf(err)}`);
      }
    }
    const outcome: StepConclusion = scope.failed ? 'failure' : cancelled || control.signal.aborted ? 'cancelled' : 'success';
    return { outcome, exitCode: null, outputs };
  }

  // ---- set up, pre and post -----------------------------------------------------------------

  /**
   * Set-up: every remote action of the job's steps (and of the remote composite actions they
   * use) is fetched and copied into the guest before the first step, as GitHub's "Set up job"
   * does, so a missing action fails the job before anything ran. Local actions load when their
   * step runs (the workspace may change before then).
   */
  async #loadRemoteActions(): Promise<void> {
    const visit = async (steps: StepDef[], depth: number): Promise<void> => {
      for (const step of steps) {
        const uses = step.uses?.trim();
        if (!uses || uses.startsWith('./') || /^actions\/checkout@/i.test(uses) || uses.startsWith('docker://') || this.#preloaded.has(uses)) continue;
        if (uses.includes('${{')) continue; // evaluated when the step runs
        const action = await this.#actions.load(uses, this.#jobAbort.signal);
        this.#preloaded.set(uses, action);
        const runs = action.definition.runs;
        if (runs.using === 'composite' && depth < MAX_COMPOSITE_DEPTH) await visit(runs.steps, depth + 1);
      }
    };
    try {
      await visit(this.#input.instance.job.steps, 0);
    } catch (err) {
      this.#fatal = messageOf(err);
      this.#job.failed = true;
      this.#log.meta(`✘ set up job: ${this.#fatal}`);
    }
  }

  /**
   * `pre:` stages of remote JavaScript actions, in step order, before the first step (nested
   * ones of remote composite actions in their place). Local actions have none: they are not
   * known until their step runs (GitHub behaves the same).
   */
  async #runPreStages(): Promise<void> {
    const collect = (steps: StepDef[], scope: Scope, into: ActionInstance[]): void => {
      for (const step of steps) {
        const action = step.uses ? this.#preloaded.get(step.uses.trim()) : undefined;
        if (!action) continue;
        const runs = action.definition.runs;
        const name = this.#displayName(step, this.#stepContexts(scope));
        if (runs.using === 'composite') collect(runs.steps, scope, into);
        else if (runs.using !== 'docker' && runs.pre !== undefined) into.push({ action, step, name, state: {}, env: {}, scope });
      }
    };
    const pres: ActionInstance[] = [];
    collect(this.#input.instance.job.steps, this.#job, pres);
    for (const instance of pres) {
      const runs = instance.action.definition.runs as { preIf: string };
      this.#preStates.set(instance.step, instance.state);
      this.#results.push(await this.#runStage(instance, 'pre', runs.preIf ?? 'always()'));
      this.#checkCap();
    }
  }

  /** `post:` stages of the actions whose main stage ran, last first. */
  async #runPostStages(): Promise<void> {
    while (this.#posts.length > 0) {
      const instance = this.#posts.pop()!;
      const runs = instance.action.definition.runs as { postIf?: string };
      this.#results.push(await this.#runStage(instance, 'post', runs.postIf ?? 'always()'));
      this.#checkCap();
    }
  }

  /** A pre or post stage as a step of its own, with its own condition (`pre-if` / `post-if`). */
  async #runStage(instance: ActionInstance, stage: 'pre' | 'post', condition: string): Promise<StepResult> {
    const label = `${stage === 'pre' ? 'Pre' : 'Post'} ${instance.name}`;
    const pseudo: StepDef = { ...instance.step, name: label, if: condition, continueOnError: false, id: undefined };
    this.#hashFiles = new HashFiles(this.#guest, this.#input.workspace);
    const contexts = this.#stepContexts(this.#job);
    let runs: boolean;
    try {
      runs = evaluateCondition(condition, contexts, this.#status(this.#job));
    } catch (err) {
      return this.#finishEarly(pseudo, this.#job, `${stage}-if: ${messageOf(err)}`);
    }
    if (!runs) return this.#skipped(pseudo, this.#job, `${stage}-if: ${condition}`);
    const asCleanup = this.#cancelled;
    const startedAt = new Date();
    const logStart = this.#log.size;
    this.#log.meta(`▶ ${label}`);
    const control = new StepControl(asCleanup ? AbortSignal.timeout(CLEANUP_LIMIT_MINUTES * 60_000) : this.#jobAbort.signal);
    let executed: Executed;
    try {
      if (stage === 'pre') {
        // Inputs and env as the main stage will see them, with what is known before any step.
        const stepEnv = await this.#stepEnv(instance.step, this.#job, instance.name);
        const withContexts = this.#stepContexts(this.#job, { ...this.#env, ...stepEnv });
        const withValues: Record<string, string> = {};
        for (const [key, value] of Object.entries(instance.step.with)) withValues[key] = this.#evalText(value, withContexts, `with.${key} of step "${instance.name}"`);
        const inputs = await this.#evaluateInputs(instance.action.definition, withValues, withContexts, instance.name);
        instance.env = { ...stepEnv, ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [inputEnvName(k), String(v)])) };
      }
      executed = await this.#runNodeStage(instance, stage, control);
    } catch (err) {
      executed = { outcome: 'failure', exitCode: null, outputs: {}, message: `✘ ${label}: ${messageOf(err)}` };
    } finally {
      control.dispose();
    }
    if (executed.message) this.#log.meta(executed.message);
    if (executed.outcome === 'failure') this.#job.failed = true;
    const durationMs = Date.now() - startedAt.getTime();
    this.#log.meta(resultLine(label, executed.outcome, executed.exitCode, false, false, durationMs));
    return {
      name: label,
      outcome: executed.outcome,
      conclusion: executed.outcome,
      exitCode: executed.exitCode,
      startedAt: startedAt.toISOString(),
      durationMs,
      log: { start: logStart, end: this.#log.size },
    };
  }

  // ---- guest helpers ------------------------------------------------------------------------

  /** One batch write where the guest supports it (fewer guest processes), else file by file. */
  async #writeFiles(files: GuestFile[]): Promise<void> {
    const guest = this.#guest;
    if (guest.writeFiles) await guest.writeFiles(files);
    else await Promise.all(files.map((file) => guest.writeFile(file.path, file.content, file.mode)));
  }

  #generatedActionId(): string {
    this.#generatedIds += 1;
    return this.#generatedIds === 1 ? '__run' : `__run_${this.#generatedIds}`;
  }

  async #hasBash(): Promise<boolean> {
    if (this.#bashAvailable === undefined) {
      try {
        this.#bashAvailable = (await this.#guest.exec(['bash', '-c', 'true'])).code === 0;
      } catch {
        this.#bashAvailable = false;
      }
    }
    return this.#bashAvailable;
  }

  /** The guest's login PATH, for putting GITHUB_PATH folders in front of it. */
  async #guestPath(): Promise<string> {
    if (this.#basePath === undefined) {
      let out = '';
      const res = await this.#guest.exec(['printenv', 'PATH'], { onStdout: (c) => (out += c.toString('utf8')) });
      this.#basePath = res.code === 0 ? out.replace(/\n$/, '') : '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    }
    return this.#basePath;
  }

  async #isDirectory(path: string): Promise<boolean> {
    return (await this.#guest.exec(['test', '-d', path])).code === 0;
  }

  async #jobOutputs(): Promise<Record<string, string>> {
    const { job } = this.#input.instance;
    const outputs: Record<string, string> = {};
    const contexts = this.#stepContexts(this.#job);
    this.#hashFiles = new HashFiles(this.#guest, this.#input.workspace);
    for (const [name, template] of Object.entries(job.outputs)) {
      try {
        await this.#prepareHashFiles([template], contexts, '');
        outputs[name] = interpolate(template, contexts, this.#functions());
      } catch (err) {
        this.#log.meta(`⚠ output ${name} of job ${job.id} could not be evaluated: ${messageOf(err)}`);
      }
    }
    return outputs;
  }
}

/**
 * What stops a running step: its parent signal (the job's cancel or timeout, or the cleanup
 * limit), its own `timeout-minutes`, and the log cap.
 */
class StepControl {
  readonly #own = new AbortController();
  readonly signal: AbortSignal;
  #timer: NodeJS.Timeout | undefined;
  timedOut = false;
  timeoutMinutes: number | undefined;

  constructor(parent: AbortSignal) {
    this.signal = AbortSignal.any([parent, this.#own.signal]);
  }

  timeoutAfter(minutes: number): void {
    this.timeoutMinutes = minutes;
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.#own.abort();
    }, minutes * 60_000);
  }

  abort(): void {
    this.#own.abort();
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

function formatMinutes(minutes: number): string {
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

function resultLine(name: string, outcome: StepConclusion, exitCode: number | null, timedOut: boolean, continueOnError: boolean, ms: number): string {
  const took = formatDuration(ms);
  if (outcome === 'success') return `✔ ${name} (${took})`;
  if (outcome === 'cancelled') return `⊘ ${name} cancelled (${took})`;
  if (outcome === 'skipped') return `○ ${name} skipped (${took})`;
  const how = timedOut ? 'timed out' : exitCode !== null ? `failed with exit code ${exitCode}` : 'failed';
  return `✘ ${name} ${how}${continueOnError ? ', continuing (continue-on-error)' : ''} (${took})`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
