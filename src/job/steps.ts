/**
 * The step executor: runs a job's steps in a guest with GitHub Actions semantics (shell templates,
 * env precedence, file commands, `if:` with status functions, continue-on-error, step and job
 * timeouts, cancellation) and writes a human log.
 *
 * Differences from GitHub, on purpose:
 * - The job timeout covers the steps only (the VM boot is bounded elsewhere).
 * - `timeout-minutes` may be fractional (GitHub documents integers only); handy for tests.
 * - `uses:` only knows `actions/checkout`, done natively (see checkout-step.ts).
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
import { FileCommandError, addPathEntries, composePath, isValidEnvName, parseKeyValueFile, parsePathFile } from './env-files.ts';
import { commandFor, resolveShell } from './step-script.ts';
import { RUNNER_NAME, eventPath, fixedDefaults, overridableDefaults, stepFiles, type StepFiles } from './runner-env.ts';
import { runCheckoutStep } from './checkout-step.ts';
import { formatDuration } from './duration.ts';

export interface StepsInput {
  instance: JobInstance;
  /** Run-level github context. */
  github: GithubContext;
  needs: Record<string, NeedsEntry>;
  inputs: Record<string, unknown>;
  vars: Record<string, string>;
  /** Guest path of the checked-out repository, e.g. /root/work/<repo>. */
  workspace: string;
  /** Guest path for RUNNER_TEMP and forgevm's own files. */
  tempDir: string;
  /** 360 unless configured. */
  defaultTimeoutMinutes: number;
}

export interface StepsOutcome {
  conclusion: JobConclusion;
  steps: StepResult[];
  outputs: Record<string, string>;
  /** Set when the job failed outside a step's own exit status (log cap, bad job settings): one line. */
  error?: string;
  /** GITHUB_STEP_SUMMARY contents of all steps, in order (Markdown). */
  summary: string;
}

/** After a cancel or job timeout, `always()` steps still run, but at most this long (GitHub: 5 min). */
const CLEANUP_LIMIT_MINUTES = 5;
/** GitHub rejects step summaries over 1 MiB. */
const SUMMARY_LIMIT_BYTES = 1024 * 1024;

interface StepContextEntry {
  outputs: Record<string, string>;
  outcome: StepConclusion;
  conclusion: StepConclusion;
}

class JobFailure extends Error {}

export async function runSteps(guest: Guest, log: JobLog, input: StepsInput, signal: AbortSignal): Promise<StepsOutcome> {
  return new StepsRun(guest, log, input, signal).run();
}

class StepsRun {
  readonly #guest: Guest;
  readonly #log: JobLog;
  readonly #input: StepsInput;
  readonly #cancel: AbortSignal;
  /** Aborted on cancel or job timeout: what running steps listen to. */
  readonly #jobAbort = new AbortController();
  #jobTimedOut = false;
  #failed = false;
  #fatal: string | undefined;
  #env: Record<string, string> = {};
  #prependPath: string[] = [];
  #basePath: string | undefined;
  #bashAvailable: boolean | undefined;
  readonly #steps: Record<string, StepContextEntry> = {};
  readonly #results: StepResult[] = [];
  #summary = '';
  #generatedIds = 0;
  /** hashFiles() answers for the step being evaluated (files change between steps). */
  #hashFiles: HashFiles;

  constructor(guest: Guest, log: JobLog, input: StepsInput, signal: AbortSignal) {
    this.#guest = guest;
    this.#log = log;
    this.#input = input;
    this.#cancel = signal;
    this.#hashFiles = new HashFiles(guest, input.workspace);
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
      ]);
      for (const step of this.#input.instance.job.steps) {
        if (this.#fatal !== undefined) this.#results.push(this.#skipped(step, 'the job already failed'));
        else this.#results.push(await this.#runStep(step));
        if (this.#log.capReached && this.#fatal === undefined) this.#fatal = new LogCapExceeded(this.#log.capBytes).message;
      }
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
        : this.#failed || this.#fatal !== undefined
          ? 'failure'
          : 'success';
    return {
      conclusion,
      steps: this.#results,
      outputs,
      ...(this.#fatal !== undefined ? { error: this.#fatal } : {}),
      summary: this.#summary,
    };
  }

  // ---- contexts -------------------------------------------------------------------------------

  #github(): GithubContext {
    return { ...this.#input.github, job: this.#input.instance.job.id, workspace: this.#input.workspace };
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
      secrets: {},
    };
  }

  /** Contexts for step fields; `env` is the job env plus GITHUB_ENV (plus step env where given). */
  #stepContexts(env: Record<string, string> = this.#env): Record<string, unknown> {
    return {
      ...this.#jobContexts(),
      env,
      steps: this.#steps,
      job: { status: this.#jobStatus() },
      runner: {
        os: 'Linux',
        arch: 'X64',
        name: RUNNER_NAME,
        temp: this.#input.tempDir,
        tool_cache: posix.join(this.#input.tempDir, '_tool'),
      },
    };
  }

  #jobStatus(): 'success' | 'failure' | 'cancelled' {
    if (this.#cancelled) return 'cancelled';
    return this.#failed ? 'failure' : 'success';
  }

  #status(): StatusFunctions {
    return {
      success: () => !this.#failed && !this.#cancelled,
      failure: () => this.#failed,
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
    const workflowContexts = { github: this.#github(), vars: this.#input.vars, inputs: this.#input.inputs, secrets: {} };
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
    return step.uses ?? `step ${step.index + 1}`;
  }

  #record(step: StepDef, entry: StepContextEntry): void {
    if (step.id !== undefined) this.#steps[step.id] = entry;
  }

  #skipped(step: StepDef, why: string): StepResult {
    const name = this.#displayName(step, this.#stepContexts());
    const start = this.#log.size;
    this.#log.meta(`○ ${name} skipped (${why})`);
    this.#record(step, { outputs: {}, outcome: 'skipped', conclusion: 'skipped' });
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

  async #runStep(step: StepDef): Promise<StepResult> {
    this.#hashFiles = new HashFiles(this.#guest, this.#input.workspace);
    const contexts = this.#stepContexts();
    let runs: boolean;
    try {
      if (step.if !== undefined) await this.#prepareHashFiles([step.if], contexts, '', true);
      runs = evaluateCondition(step.if ?? 'success()', contexts, this.#status());
    } catch (err) {
      // GitHub fails the step (and so the job) when its condition cannot be evaluated.
      return this.#finishEarly(step, `if: ${messageOf(err)}`);
    }
    if (!runs) return this.#skipped(step, step.if !== undefined ? `if: ${step.if.trim()}` : this.#cancelled ? 'the job was cancelled' : 'an earlier step failed');
    // Whether the step runs as cleanup after a cancel or timeout is decided with its `if:`: a
    // cancel that lands while its files are written must still stop it, not grant it cleanup time.
    const asCleanup = this.#cancelled;

    // A name that cannot be computed falls back to its text, as before.
    await this.#prepareHashFiles([step.name], contexts, 'name').catch(() => {});
    const name = this.#displayName(step, contexts);
    const startedAt = new Date();
    const logStart = this.#log.size;
    this.#log.meta(`▶ ${name}`);

    let outcome: StepConclusion;
    let exitCode: number | null = null;
    let timedOut = false;
    let continueOnError = false;
    let outputs: Record<string, string> = {};
    try {
      await this.#prepareHashFiles([step.continueOnError], contexts, `continue-on-error of step "${name}"`);
      continueOnError = this.#flag(step.continueOnError, contexts, `continue-on-error of step "${name}"`);
      const executed = step.uses !== undefined ? await this.#checkout(step) : await this.#runScript(step, name, asCleanup);
      outcome = executed.outcome;
      exitCode = executed.exitCode;
      timedOut = executed.timedOut;
      outputs = executed.outputs;
      if (executed.message) this.#log.meta(executed.message);
    } catch (err) {
      outcome = 'failure';
      this.#log.meta(`✘ ${name}: ${messageOf(err)}`);
    }

    const conclusion: StepConclusion = outcome === 'failure' && continueOnError ? 'success' : outcome;
    if (conclusion === 'failure') this.#failed = true;
    const durationMs = Date.now() - startedAt.getTime();
    this.#log.meta(resultLine(name, outcome, exitCode, timedOut, continueOnError, durationMs));
    this.#record(step, { outputs, outcome, conclusion });
    return {
      name,
      ...(step.id !== undefined ? { id: step.id } : {}),
      outcome,
      conclusion,
      exitCode,
      ...(timedOut ? { timedOut } : {}),
      startedAt: startedAt.toISOString(),
      durationMs,
      log: { start: logStart, end: this.#log.size },
    };
  }

  /** A step that failed before it could start (bad `if:`): a failure with its reason logged. */
  #finishEarly(step: StepDef, reason: string): StepResult {
    const name = this.#displayName(step, this.#stepContexts());
    const start = this.#log.size;
    this.#log.meta(`✘ ${name}: ${reason}`);
    this.#failed = true;
    this.#record(step, { outputs: {}, outcome: 'failure', conclusion: 'failure' });
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

  async #checkout(step: StepDef): Promise<Executed> {
    const message = runCheckoutStep(step, this.#input.github.repository, this.#input.workspace, (line) => this.#log.meta(line));
    return { outcome: message ? 'failure' : 'success', exitCode: null, timedOut: false, outputs: {}, ...(message ? { message } : {}) };
  }

  async #runScript(step: StepDef, name: string, asCleanup: boolean): Promise<Executed> {
    const { job, workflow } = this.#input.instance;
    const key = randomUUID();
    const files = stepFiles(this.#input.tempDir, key);
    const baseContexts = this.#stepContexts();

    // Step env: evaluated with the env context of the job (plus GITHUB_ENV), then layered on top.
    const stepEnv: Record<string, string> = {};
    await this.#prepareHashFiles(Object.values(step.env), baseContexts, `env of step "${name}"`);
    for (const [envName, value] of Object.entries(step.env)) {
      stepEnv[envName] = this.#evalText(value, baseContexts, `env.${envName} of step "${name}"`);
    }
    const envContext = { ...this.#env, ...stepEnv };
    const contexts = this.#stepContexts(envContext);
    const dirSpec = step.workingDirectory ?? job.defaults.workingDirectory ?? workflow.defaults.workingDirectory;
    const shellSpec = step.shell ?? job.defaults.shell ?? workflow.defaults.shell;
    await this.#prepareHashFiles([step.run, shellSpec, dirSpec, step.timeoutMinutes], contexts, `step "${name}"`);

    const script = this.#evalText(step.run ?? '', contexts, `run of step "${name}"`);
    const shellText = shellSpec === undefined ? undefined : this.#evalText(shellSpec, contexts, `shell of step "${name}"`);
    const bash = shellText === undefined || shellText.trim() === '' ? await this.#hasBash() : true;
    const shell = resolveShell(shellText, bash);
    const cwd =
      dirSpec === undefined
        ? this.#input.workspace
        : posix.resolve(this.#input.workspace, this.#evalText(dirSpec, contexts, `working-directory of step "${name}"`));
    const timeoutMinutes =
      step.timeoutMinutes === undefined ? undefined : this.#minutes(step.timeoutMinutes, contexts, `timeout-minutes of step "${name}"`);

    const env: Record<string, string> = {
      ...overridableDefaults(),
      ...envContext,
      ...fixedDefaults({
        github: this.#input.github,
        jobId: job.id,
        workflowFile: workflow.file,
        workspace: this.#input.workspace,
        tempDir: this.#input.tempDir,
        action: step.id ?? this.#generatedActionId(),
        files,
      }),
    };
    if (this.#prependPath.length > 0) env.PATH = composePath(this.#prependPath, envContext.PATH ?? (await this.#guestPath()));
    const badName = Object.keys(env).find((n) => !isValidEnvName(n));
    if (badName !== undefined) throw new Error(`environment variable name "${badName}" is invalid: use letters, digits and _ and do not start with a digit`);

    const scriptPath = posix.join(this.#input.tempDir, `${key}${shell.extension}`);
    // Each guest call is a round trip that costs processes in the guest: the script and the
    // empty file-command files go in one batch where the guest supports it.
    const stepFilesToWrite: GuestFile[] = [
      { path: scriptPath, content: shell.wrap(script), mode: 0o755 },
      ...Object.values(files).map((file) => ({ path: file, content: '' })),
    ];
    const [cwdExists] = await Promise.all([dirSpec === undefined || this.#isDirectory(cwd), this.#writeFiles(stepFilesToWrite)]);
    if (!cwdExists) {
      throw new Error(`working-directory ${cwd} does not exist in the guest; create it in an earlier step or fix the path`);
    }

    // Cleanup steps after a cancel or job timeout must not be killed by that same signal.
    const parent = asCleanup ? AbortSignal.timeout(CLEANUP_LIMIT_MINUTES * 60_000) : this.#jobAbort.signal;
    if (parent.aborted) return { outcome: 'cancelled', exitCode: null, timedOut: false, outputs: {} };
    const stepAbort = new AbortController();
    let timedOut = false;
    let capHit = false;
    const timer =
      timeoutMinutes === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            stepAbort.abort();
          }, timeoutMinutes * 60_000);
    const onChunk = (channel: 'stdout' | 'stderr') => (chunk: Buffer) => {
      this.#log.write(chunk, channel);
      if (this.#log.capReached && !capHit) {
        capHit = true;
        stepAbort.abort();
      }
    };
    let result;
    try {
      result = await this.#guest.exec(commandFor(shell, scriptPath), {
        env,
        cwd,
        signal: AbortSignal.any([parent, stepAbort.signal]),
        onStdout: onChunk('stdout'),
        onStderr: onChunk('stderr'),
      });
    } finally {
      clearTimeout(timer);
    }

    let outcome: StepConclusion = result.code === 0 ? 'success' : 'failure';
    let message: string | undefined;
    if (capHit) {
      this.#fatal = new LogCapExceeded(this.#log.capBytes).message;
      outcome = 'failure';
    } else if (timedOut) {
      outcome = 'failure';
      message = `step timed out after ${timeoutMinutes} minute${timeoutMinutes === 1 ? '' : 's'} (timeout-minutes)`;
    } else if (parent.aborted && result.code !== 0) {
      outcome = 'cancelled';
    }

    let outputs: Record<string, string> = {};
    try {
      outputs = await this.#applyFileCommands(files);
    } catch (err) {
      if (!(err instanceof FileCommandError)) throw err;
      outcome = outcome === 'cancelled' ? outcome : 'failure';
      message = `✘ ${err.message}`;
    }
    return { outcome, exitCode: result.code, timedOut, outputs, ...(message ? { message } : {}) };
  }

  /** Reads back GITHUB_ENV, GITHUB_PATH, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY after a step. */
  async #applyFileCommands(files: StepFiles): Promise<Record<string, string>> {
    const read = async (path: string): Promise<string> => {
      try {
        return (await this.#guest.readFile(path)).toString('utf8');
      } catch {
        return ''; // the script deleted it: nothing to apply
      }
    };
    const [envText, outputText, pathText, summary] = await Promise.all([read(files.env), read(files.output), read(files.path), read(files.summary)]);
    const envPairs = parseKeyValueFile(envText, 'GITHUB_ENV');
    for (const [name] of envPairs) {
      if (!isValidEnvName(name)) {
        throw new FileCommandError(`GITHUB_ENV: "${name}" is not a valid environment variable name (letters, digits, _; not starting with a digit)`);
      }
    }
    const outputPairs = parseKeyValueFile(outputText, 'GITHUB_OUTPUT');
    const paths = parsePathFile(pathText);
    for (const [name, value] of envPairs) this.#env[name] = value;
    this.#prependPath = addPathEntries(this.#prependPath, paths);
    if (Buffer.byteLength(summary) > SUMMARY_LIMIT_BYTES) {
      this.#log.meta(`⚠ step summary is over 1 MiB and was dropped (GitHub's limit too)`);
    } else if (summary !== '') {
      this.#summary += summary.endsWith('\n') ? summary : `${summary}\n`;
    }
    return Object.fromEntries(outputPairs);
  }

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
    const contexts = this.#stepContexts();
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

interface Executed {
  outcome: StepConclusion;
  exitCode: number | null;
  timedOut: boolean;
  outputs: Record<string, string>;
  /** A line for the log before the result line. */
  message?: string;
}

function resultLine(name: string, outcome: StepConclusion, exitCode: number | null, timedOut: boolean, continueOnError: boolean, ms: number): string {
  const took = formatDuration(ms);
  if (outcome === 'success') return `✔ ${name} (${took})`;
  if (outcome === 'cancelled') return `⊘ ${name} cancelled (${took})`;
  const how = timedOut ? 'timed out' : exitCode !== null ? `failed with exit code ${exitCode}` : 'failed';
  return `✘ ${name} ${how}${continueOnError ? ', continuing (continue-on-error)' : ''} (${took})`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
