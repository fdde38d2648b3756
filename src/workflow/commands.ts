/**
 * `forgevm plan` and `forgevm validate`, as functions the CLI wires to commander. They take
 * an output callback and return the exit code, so tests can run them without a process.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { labelAliases, resolveImage, type ImageCatalog } from '../config/catalog.ts';
import { DEFAULT_WORKFLOW_FOLDERS, directorySource, gitCommitSource, isWorkflowPath, loadWorkflows, parseAndResolve, type LoadedWorkflows } from './load.ts';
import type { PlannedWorkflow, Workflow, WorkflowProblem } from './model.ts';
import { parseWorkflow } from './parse.ts';
import { localGithubContext } from './local-context.ts';
import { planWorkflows, type PlanEvent } from './planner.ts';
import type { ParsedFile } from './resolve-calls.ts';
import { runsOnWarnings, type LabelCatalog } from './runs-on-labels.ts';

export interface PlanOptions {
  repoDir: string;
  event: string;
  ref?: string;
  base?: string;
  sha?: string;
  json?: boolean;
  folders?: string[];
}

export interface ValidateOptions {
  repoDir: string;
  files: string[];
  folders?: string[];
  /** The configuration's image catalog: `runs-on` labels missing from it are warned about. */
  catalog?: ImageCatalog;
}

const formatProblem = (p: WorkflowProblem) => `${p.file}:${p.line}:${p.column}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message}`;

async function git(repoDir: string, args: string[]): Promise<string | undefined> {
  const result = await execa('git', args, { cwd: repoDir, reject: false });
  return result.exitCode === 0 ? result.stdout.trim() : undefined;
}

async function resolveCommit(repoDir: string, rev: string): Promise<string> {
  // `--end-of-options` keeps a user-supplied revision from being read as a flag.
  const sha = await git(repoDir, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
  if (!sha) throw new Error(`"${rev}" is not a commit in ${repoDir}: pass --sha with a commit, branch or tag of this repository`);
  return sha;
}

function fullRef(ref: string): string {
  return ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
}

/** Files changed by the event, or undefined when git cannot tell (then path filters pass). */
async function changedFiles(repoDir: string, event: string, sha: string, base: string | undefined): Promise<string[] | undefined> {
  let from: string | undefined;
  if (event === 'pull_request') {
    if (!base) return undefined;
    from = await git(repoDir, ['merge-base', '--end-of-options', base, sha]);
  } else if (event === 'push') {
    from = base ? await git(repoDir, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${base}^{commit}`]) : await git(repoDir, ['rev-parse', '--verify', '--quiet', `${sha}^`]);
    if (!base && !from) {
      // The first commit of a repository: everything in it changed.
      const listed = await git(repoDir, ['diff-tree', '--root', '--no-commit-id', '--name-only', '-r', sha]);
      return listed === undefined ? undefined : lines(listed);
    }
  } else {
    return undefined;
  }
  if (!from) return undefined;
  const diff = await git(repoDir, ['diff', '--name-only', '--no-renames', from, sha, '--']);
  return diff === undefined ? undefined : lines(diff);
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}


export async function planCommand(opts: PlanOptions, out: (s: string) => void): Promise<number> {
  const folders = opts.folders?.length ? opts.folders : DEFAULT_WORKFLOW_FOLDERS;
  const sha = await resolveCommit(opts.repoDir, opts.sha ?? 'HEAD');
  let ref = opts.ref ? fullRef(opts.ref) : undefined;
  if (!ref) {
    const branch = await git(opts.repoDir, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
    if (!branch) throw new Error('HEAD is detached: pass --ref with the branch or tag to plan for');
    ref = `refs/heads/${branch}`;
  }
  if (opts.event === 'pull_request' && !opts.base) {
    throw new Error('pull_request needs --base <branch> (the branch the pull request merges into)');
  }
  const baseRef = opts.base?.replace(/^refs\/heads\//, '');
  const event: PlanEvent = {
    name: opts.event,
    ref,
    sha,
    headCommitMessage: (await git(opts.repoDir, ['log', '-1', '--format=%B', sha])) ?? '',
    payload: {},
    ...(opts.event === 'pull_request' ? { action: 'opened', baseRef } : {}),
    ...(opts.event === 'workflow_dispatch' ? { inputs: {} } : {}),
  };
  const changed = await changedFiles(opts.repoDir, opts.event, sha, opts.base);
  const loaded = await loadWorkflows(gitCommitSource(opts.repoDir, sha), folders);
  const valid = loaded.workflows.filter((w) => !loaded.invalidFiles.includes(w.file));
  const planned = planWorkflows(event, valid, changed, localGithubContext(event, opts.repoDir));

  if (opts.json) {
    out(JSON.stringify(planJson(event, changed, planned, loaded.problems), null, 2));
  } else {
    out(`${event.name} ${event.ref} at ${sha.slice(0, 12)}; ${changed === undefined ? 'changed files unknown' : `${changed.length} changed file(s)`}`);
    for (const problem of loaded.problems) out(formatProblem(problem));
    if (valid.length === 0 && loaded.invalidFiles.length === 0) out(`no workflow files in ${folders.join(', ')} at ${sha.slice(0, 12)}`);
    else out(formatTable(planRows(planned, loaded.invalidFiles)));
  }
  return loaded.problems.length > 0 ? 1 : 0;
}

interface PlanRow {
  workflow: string;
  job: string;
  runsOn: string;
  verdict: string;
  reason: string;
}

function planRows(planned: PlannedWorkflow[], invalidFiles: string[]): PlanRow[] {
  const rows: PlanRow[] = [];
  for (const p of planned) {
    if (p.skipped) {
      rows.push({ workflow: p.workflow.name, job: '*', runsOn: '', verdict: 'skipped', reason: p.skipped });
      continue;
    }
    for (const j of p.jobs) {
      rows.push({
        workflow: p.workflow.name,
        job: j.instance.displayName,
        runsOn: j.instance.runsOn,
        verdict: j.decision.runs ? 'runs' : j.decision.failure ? 'fails' : 'skipped',
        reason: j.decision.runs ? '' : j.decision.reason,
      });
    }
  }
  for (const file of invalidFiles) rows.push({ workflow: file, job: '*', runsOn: '', verdict: 'invalid', reason: 'see the problems above' });
  return rows;
}

function formatTable(rows: PlanRow[]): string {
  const header: PlanRow = { workflow: 'WORKFLOW', job: 'JOB', runsOn: 'RUNS-ON', verdict: 'VERDICT', reason: 'REASON' };
  const all = [header, ...rows];
  const keys = ['workflow', 'job', 'runsOn', 'verdict', 'reason'] as const;
  const widths = keys.map((k) => Math.max(...all.map((r) => r[k].length)));
  return all.map((r) => keys.map((k, i) => (i === keys.length - 1 ? r[k] : r[k].padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function planJson(event: PlanEvent, changed: string[] | undefined, planned: PlannedWorkflow[], problems: WorkflowProblem[]) {
  return {
    event: { name: event.name, ref: event.ref, sha: event.sha, baseRef: event.baseRef },
    changedFiles: changed ?? null,
    workflows: planned.map((p) => ({
      file: p.workflow.file,
      name: p.workflow.name,
      runs: !p.skipped,
      ...(p.skipped ? { reason: p.skipped } : {}),
      jobs: p.jobs.map((j) => ({
        id: j.instance.job.id,
        key: j.instance.key,
        name: j.instance.displayName,
        runsOn: j.instance.runsOn,
        matrix: j.instance.matrix,
        runs: !p.skipped && j.decision.runs,
        ...(p.skipped ? { reason: p.skipped } : j.decision.runs ? {} : { reason: j.decision.reason, ...(j.decision.failure ? { fails: true } : {}) }),
      })),
    })),
    problems,
  };
}

export async function validateCommand(opts: ValidateOptions, out: (s: string) => void): Promise<number> {
  const folders = opts.folders?.length ? opts.folders : DEFAULT_WORKFLOW_FOLDERS;
  const source = directorySource(opts.repoDir);
  const problems: WorkflowProblem[] = [];
  let loaded: LoadedWorkflows;
  let count: number;
  if (opts.files.length === 0) {
    loaded = await loadWorkflows(source, folders);
    // The files in the folders (called files elsewhere are checked, not counted).
    count = new Set([...loaded.workflows.map((w) => w.file), ...loaded.invalidFiles.filter((f) => isWorkflowPath(f, folders))]).size;
    if (count === 0) {
      out(`no workflow files (*.yml, *.yaml) in ${folders.join(', ')}: pass files to check, or set the workflow folders`);
      return 1;
    }
  } else {
    const parsed: ParsedFile[] = [];
    for (const file of opts.files) {
      let text: string;
      try {
        text = await readFile(path.resolve(opts.repoDir, file), 'utf8');
      } catch (err) {
        problems.push({ file, line: 1, column: 1, message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
        continue;
      }
      parsed.push({ path: file, ...parseWorkflow(file, text) });
    }
    loaded = await parseAndResolve(parsed, source);
    count = opts.files.length;
  }
  problems.push(...loaded.problems);
  const warnings = opts.catalog ? labelWarnings(loaded.workflows, catalogLabels(opts.catalog)) : [];
  const byFile = [...new Set([...opts.files, ...[...problems, ...warnings].map((p) => p.file)])];
  const all = [...problems, ...warnings].sort((a, b) => byFile.indexOf(a.file) - byFile.indexOf(b.file) || a.line - b.line || a.column - b.column);
  for (const problem of all) out(formatProblem(problem));
  const warned = warnings.length > 0 ? `, ${warnings.length} warning(s)` : '';
  const bad = new Set(problems.map((p) => p.file)).size;
  out(problems.length === 0 ? `ok: ${count} workflow file(s)${warned}` : `${problems.length} problem(s) in ${bad} of ${count} workflow file(s)${warned}`);
  return problems.length === 0 ? 0 : 1;
}

/** Labels of the catalog (images and the aliases GitHub users write), as validate checks them. */
function catalogLabels(catalog: ImageCatalog): LabelCatalog {
  const has = (label: string) => {
    try {
      resolveImage(catalog, label);
      return true;
    } catch {
      return false;
    }
  };
  return { labels: [...Object.keys(catalog), ...Object.keys(labelAliases).filter(has)], has };
}

/** runs-on warnings for these workflows and every workflow they call, each file once. */
function labelWarnings(workflows: Workflow[], catalog: LabelCatalog): WorkflowProblem[] {
  const seen = new Set<string>();
  const warnings: WorkflowProblem[] = [];
  const visit = (workflow: Workflow): void => {
    if (seen.has(workflow.file)) return;
    seen.add(workflow.file);
    warnings.push(...runsOnWarnings(workflow, catalog));
    for (const job of workflow.jobs) if (job.call?.workflow) visit(job.call.workflow);
  };
  workflows.forEach(visit);
  return warnings;
}
