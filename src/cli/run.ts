/**
 * `forgevm run`: run a repository's workflows locally, each job in its own fresh VM, with the
 * same engine the forge app uses. Output streams live; a summary table ends the run.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { resolveImage } from '../config/catalog.ts';
import type { Config } from '../config/config.ts';
import { JobLog } from '../log/job-log.ts';
import type { JobConclusion, JobResult, StepResult } from '../job/result.ts';
import type { Engine } from '../job/run-job.ts';
import { runPlannedJob } from '../job/run-planned-job.ts';
import { formatDuration } from '../job/duration.ts';
import { stateDir } from '../vm/state-dir.ts';
import { failureIsAllowed, runConclusion, runJobGraph } from '../workflow/graph.ts';
import type { PlannedJob, Workflow } from '../workflow/model.ts';
import { directorySource, loadWorkflows, parseAndResolve } from '../workflow/load.ts';
import { parseWorkflow } from '../workflow/parse.ts';
import { localGithubContext } from '../workflow/local-context.ts';
import { planWorkflows, type PlanEvent } from '../workflow/planner.ts';
import { LiveOutput } from './live-output.ts';
import { table } from './table.ts';

export interface RunOptions {
  workflow?: string;
  job?: string;
  image?: string;
  event?: string;
  eventFile?: string;
  input: string[];
  maxParallel?: number;
  /** Also write the results as JSON to this file (for scripts and tests; see RunReport). */
  json?: string;
  /** Show each VM's serial console while it boots. */
  console?: boolean;
}

/** What `--json FILE` writes: the run's conclusion and every job instance's result. */
export interface RunReport {
  conclusion: JobConclusion;
  jobs: Array<{
    /** The instance key shown in the summary, e.g. `build (linux, 2)`. */
    key: string;
    job: string;
    conclusion: JobConclusion;
    /** True when the job failed but `continue-on-error` kept the run from failing. */
    allowedFailure: boolean;
    durationMs: number;
    error?: string;
    logPath: string;
    steps: Array<Pick<StepResult, 'name' | 'id' | 'outcome' | 'conclusion' | 'exitCode' | 'timedOut' | 'durationMs'>>;
    outputs: Record<string, string>;
  }>;
}

export async function runCommand(config: Config, engine: Engine, options: RunOptions, out: (s: string) => void): Promise<number> {
  const repo = await localRepository(process.cwd());
  const workflows = await loadLocalWorkflows(repo.dir, config.workflowDirs, options.workflow);
  const event = await localEvent(repo, options);
  const github = localGithubContext(event, repo.dir, String(Date.now()));
  const plan = planWorkflows(event, workflows, undefined, github)
    .flatMap((planned) => {
      // Without --event, run what was asked for whatever `on:` says; with --event, honour triggers.
      if (planned.skipped && options.event) {
        out(`skipped workflow ${planned.workflow.name}: ${planned.skipped}`);
        return [];
      }
      // A reusable workflow runs as part of its callers, with their inputs, not on its own.
      if (planned.skipped && planned.workflow.on.workflowCall) {
        out(`skipped workflow ${planned.workflow.name}: it runs when another workflow calls it (on: workflow_call)`);
        return [];
      }
      return planned.jobs;
    })
    .filter((job) => !options.job || topLevelJobId(job) === options.job);
  if (options.job && plan.length === 0) throw new Error(`no job "${options.job}" in the selected workflows: check the id under jobs:`);
  if (plan.length === 0) throw new Error('nothing to run: no workflow matched (see "forgevm plan" for why)');
  if (options.image) for (const job of plan) job.instance.runsOn = options.image;
  // Fail before booting anything when a label is already known to be wrong.
  for (const job of plan) if (job.decision.runs && !job.instance.runsOn.includes('${{')) resolveImage(config.images, job.instance.runsOn);
  if (repo.dirty) out(`note: uncommitted changes are not in the VM; the job runs commit ${repo.sha.slice(0, 12)}`);

  const logsDir = stateDir(config.stateDir).logs;
  const live = new LiveOutput(out, plan.filter((p) => p.decision.runs).length > 1);
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const results = await runJobGraph(
    plan,
    async (job, needs, signal) => {
      // Also here, not only on the plan: instances expanded after their needs finished are new.
      if (options.image) job.instance.runsOn = options.image;
      const id = `${runId}-${randomBytes(3).toString('hex')}`;
      const log = new JobLog(join(logsDir, `${id}.log`), config.logCapBytes);
      const detach = live.attach(job.instance.key, log);
      try {
        log.meta(`── ${job.instance.key} on ${job.instance.runsOn}`);
        return await runPlannedJob(engine, {
          id,
          job,
          needs,
          github,
          inputs: event.inputs ?? {},
          workspace: { repoDir: repo.dir, sha: repo.sha, branch: repo.branch },
          repoName: basename(repo.dir),
          log,
          signal,
          defaultTimeoutMinutes: config.defaultTimeoutMinutes,
          onConsole: options.console ? (chunk) => process.stderr.write(chunk) : undefined,
        });
      } finally {
        detach();
        log.close();
      }
    },
    { maxParallel: options.maxParallel ?? config.concurrency.maxJobs, contexts: { github, vars: {}, inputs: event.inputs ?? {} } },
  );
  out('');
  out(summaryTable(plan, results));
  const conclusion = runConclusion(results.values());
  if (options.json) await writeFile(options.json, `${JSON.stringify(runReport(conclusion, results), null, 2)}\n`);
  return conclusion === 'success' || conclusion === 'skipped' ? 0 : 1;
}

/** The id under the run's own `jobs:`: a called workflow's jobs belong to the job that calls it. */
function topLevelJobId(job: PlannedJob): string {
  let frame = job.instance.call;
  while (frame?.parent) frame = frame.parent;
  return frame ? frame.job.id : job.instance.job.id;
}

export function runReport(conclusion: JobConclusion, results: Map<string, JobResult>): RunReport {
  return {
    conclusion,
    jobs: [...results].map(([key, r]) => ({
      key,
      job: key.replace(/ \(.*\)$/, ''),
      conclusion: r.conclusion,
      allowedFailure: failureIsAllowed(r),
      durationMs: r.durationMs,
      ...(r.error ? { error: r.error } : {}),
      logPath: r.logPath,
      steps: r.steps.map(({ name, id, outcome, conclusion: c, exitCode, timedOut, durationMs }) => ({ name, id, outcome, conclusion: c, exitCode, timedOut, durationMs })),
      outputs: r.outputs,
    })),
  };
}

export function summaryTable(plan: PlannedJob[], results: Map<string, JobResult>): string {
  // Plan order; a job whose matrix reads `needs` was planned as one placeholder and expanded
  // once its needs finished: its real instances come from the results instead.
  const planned = new Map(plan.map((job) => [job.instance.key, job]));
  const keys = [...new Set([...plan.map((job) => job.instance.key).filter((key) => results.has(key)), ...results.keys()])];
  const ranJobs = new Set(keys.map((key) => key.replace(/ \(.*\)$/, '')));
  for (const job of plan) if (!results.has(job.instance.key) && !ranJobs.has(job.instance.job.id)) keys.push(job.instance.key);
  const rows = keys.map((key) => {
    const job = planned.get(key);
    const result = results.get(key);
    if (!result) return [key, 'not run', '', ''];
    // The step that failed the job; else one that failed under continue-on-error.
    const failedStep = result.steps.find((step) => step.conclusion === 'failure') ?? result.steps.find((step) => step.outcome === 'failure');
    const detail = result.error
      ? result.error.split('\n')[0]!
      : failedStep
        ? `step "${failedStep.name}" ${failedStep.timedOut ? 'timed out' : 'failed'}${failedStep.exitCode !== null ? ` (exit ${failedStep.exitCode})` : ''}${failedStep.conclusion === 'failure' ? '' : ', continued (continue-on-error)'}`
        : !job || job.decision.runs
          ? ''
          : job.decision.reason;
    const shown = failureIsAllowed(result) ? `${result.conclusion} (allowed)` : result.conclusion;
    return [key, shown, result.conclusion === 'skipped' ? '' : formatDuration(result.durationMs), detail];
  });
  return table(['JOB', 'RESULT', 'TIME', 'DETAIL'], rows);
}

interface LocalRepo {
  dir: string;
  sha: string;
  branch?: string;
  dirty: boolean;
}

async function localRepository(cwd: string): Promise<LocalRepo> {
  const top = await execa('git', ['rev-parse', '--show-toplevel'], { cwd, reject: false });
  if (top.exitCode !== 0) throw new Error('not inside a git repository: run forgevm run from a clone of the project to build');
  const dir = top.stdout.trim();
  const head = await execa('git', ['rev-parse', '--verify', 'HEAD'], { cwd: dir, reject: false });
  if (head.exitCode !== 0) throw new Error('the repository has no commits yet: commit something first');
  const branch = await execa('git', ['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd: dir, reject: false });
  const status = await execa('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: dir });
  return { dir, sha: head.stdout.trim(), branch: branch.exitCode === 0 ? branch.stdout.trim() : undefined, dirty: status.stdout.trim() !== '' };
}

/** Workflows from the working tree (so an edited workflow can be tried before committing it). */
async function loadLocalWorkflows(repoDir: string, folders: string[], only?: string): Promise<Workflow[]> {
  let loaded;
  if (only) {
    const path = relative(repoDir, resolve(only));
    let text: string;
    try {
      text = await readFile(join(repoDir, path), 'utf8');
    } catch {
      throw new Error(`cannot read workflow ${only}: check the path`);
    }
    // The workflows it calls are read from the working tree too.
    loaded = await parseAndResolve([{ path, ...parseWorkflow(path, text) }], directorySource(repoDir));
  } else {
    loaded = await loadWorkflows(directorySource(repoDir), folders);
    if (loaded.workflows.length === 0) {
      throw new Error(`no workflow files in ${folders.join(', ')}: add one (see workflows/ in forgevm's repository for examples) or pass --workflow FILE`);
    }
  }
  if (loaded.problems.length > 0) {
    throw new Error(`invalid workflow:\n${loaded.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n')}`);
  }
  return loaded.workflows;
}

async function localEvent(repo: LocalRepo, options: RunOptions): Promise<PlanEvent> {
  const name = options.event ?? 'push';
  let payload: Record<string, unknown> = {};
  if (options.eventFile) {
    try {
      payload = JSON.parse(await readFile(options.eventFile, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`cannot read --event-file ${options.eventFile}: ${(error as Error).message}`);
    }
  }
  const inputs: Record<string, string> = {};
  for (const pair of options.input) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--input "${pair}" must be NAME=VALUE`);
    inputs[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const ref = repo.branch ? `refs/heads/${repo.branch}` : repo.sha;
  const pr = payload.pull_request as { head?: { ref?: string }; base?: { ref?: string } } | undefined;
  return {
    name,
    action: typeof payload.action === 'string' ? payload.action : name === 'pull_request' ? 'opened' : undefined,
    ref: name === 'pull_request' && pr?.head?.ref ? `refs/heads/${pr.head.ref}` : ref,
    baseRef: pr?.base?.ref,
    sha: repo.sha,
    headCommitMessage: (await execa('git', ['log', '-1', '--format=%B', repo.sha], { cwd: repo.dir })).stdout,
    payload: { ...payload, ...(name === 'workflow_dispatch' ? { inputs } : {}) },
    inputs,
  };
}

