/**
 * Finding and parsing the workflow files of a repository. Where the files come from is a
 * parameter: a working tree on disk, a git commit (the CLI), or files fetched from a forge API.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { Workflow, WorkflowProblem } from './model.ts';
import { parseWorkflow } from './parse.ts';
import { resolveCalls, type ParsedFile } from './resolve-calls.ts';

export const DEFAULT_WORKFLOW_FOLDERS = ['.forgevm/workflows'];

export interface WorkflowFile {
  /** Relative to the repository root, with `/` separators. */
  path: string;
  text: string;
}

/**
 * Where workflow files come from. Called as a function, it lists the workflow files found
 * directly in the given folders; `readFile` reads any one file of the same tree by path (a
 * called workflow may live outside those folders). A source without `readFile` cannot load
 * called workflows: their callers are reported invalid.
 */
export interface WorkflowSource {
  (folders: string[]): Promise<WorkflowFile[]>;
  /** The file's text, or undefined when the tree has no such file. */
  readFile?(filePath: string): Promise<string | undefined>;
}

/** A source from its two operations. */
export function workflowSource(list: (folders: string[]) => Promise<WorkflowFile[]>, readFile: (filePath: string) => Promise<string | undefined>): WorkflowSource {
  return Object.assign(list, { readFile });
}

/** A repository path that stays inside the tree (no `..`, not absolute), normalized; else undefined. */
export function repositoryPath(filePath: string): string | undefined {
  const normal = path.posix.normalize(filePath.replace(/\\/g, '/')).replace(/^\.\//, '');
  if (normal === '..' || normal.startsWith('../') || path.posix.isAbsolute(normal) || normal === '.') return undefined;
  return normal;
}

/** GitHub reads `*.yml` / `*.yaml` directly inside the folder, not in subfolders. */
export function isWorkflowPath(filePath: string, folders: string[]): boolean {
  if (!/\.ya?ml$/.test(filePath)) return false;
  const dir = path.posix.dirname(filePath);
  return folders.some((folder) => normalizeFolder(folder) === dir);
}

function normalizeFolder(folder: string): string {
  return path.posix.normalize(folder.replace(/\\/g, '/')).replace(/^\.\//, '').replace(/\/+$/, '');
}

/** Workflow files in a working tree. Missing folders are simply empty. */
export function directorySource(repoDir: string): WorkflowSource {
  const readOne = async (filePath: string): Promise<string | undefined> => {
    const rel = repositoryPath(filePath);
    if (rel === undefined) return undefined;
    try {
      return await readFile(path.join(repoDir, rel), 'utf8');
    } catch {
      return undefined; // missing, or a directory: not a workflow file
    }
  };
  return workflowSource(async (folders) => {
    const files: WorkflowFile[] = [];
    for (const folder of folders.map(normalizeFolder)) {
      let names: string[];
      try {
        names = await readdir(path.join(repoDir, folder));
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        const rel = `${folder}/${name}`;
        if (!isWorkflowPath(rel, [folder])) continue;
        try {
          files.push({ path: rel, text: await readFile(path.join(repoDir, rel), 'utf8') });
        } catch {
          // a directory named like a workflow, or a file removed meanwhile: not a workflow
        }
      }
    }
    return files;
  }, readOne);
}

/** Workflow files as they are in a commit (`git ls-tree` + `git show`), without a checkout. */
export function gitCommitSource(repoDir: string, sha: string): WorkflowSource {
  const readOne = async (filePath: string): Promise<string | undefined> => {
    const rel = repositoryPath(filePath);
    if (rel === undefined) return undefined;
    const shown = await execa('git', ['show', `${sha}:${rel}`], { cwd: repoDir, reject: false, stripFinalNewline: false });
    return shown.exitCode === 0 ? shown.stdout : undefined;
  };
  return workflowSource(async (folders) => {
    const files: WorkflowFile[] = [];
    for (const folder of folders.map(normalizeFolder)) {
      // `--` ends options: the folder name comes from configuration, never parsed as a flag.
      const listing = await execa('git', ['ls-tree', '-z', '--name-only', `${sha}`, '--', `${folder}/`], {
        cwd: repoDir,
        reject: false,
      });
      if (listing.exitCode !== 0) {
        throw new Error(`git ls-tree ${sha} ${folder} failed in ${repoDir}: ${listing.stderr.trim()} (is ${sha} a commit of this repository?)`);
      }
      const paths = listing.stdout.split('\0').filter((p) => p && isWorkflowPath(p, [folder]));
      for (const p of paths.sort()) {
        const shown = await execa('git', ['show', `${sha}:${p}`], { cwd: repoDir, reject: false, stripFinalNewline: false });
        if (shown.exitCode === 0) files.push({ path: p, text: shown.stdout });
      }
    }
    return files;
  }, readOne);
}

/** A source over files already in memory (fetched from a forge API, or tests). */
export function memorySource(files: WorkflowFile[]): WorkflowSource {
  return workflowSource(
    async (folders) => files.filter((f) => isWorkflowPath(f.path, folders)),
    async (filePath) => files.find((f) => f.path === repositoryPath(filePath))?.text,
  );
}

export interface LoadedWorkflows {
  /** Parsed workflows, including those with problems (validation decides what to do with them). */
  workflows: Workflow[];
  /**
   * Problems of these workflows and of the workflows they call: files with any should not run.
   * Warnings (severity) are not among them.
   */
  problems: WorkflowProblem[];
  /** Files that have at least one problem (called files included). */
  invalidFiles: string[];
}

/**
 * Reads and parses the workflows in `folders`, and the workflows their jobs call (attached to
 * each call job's `call.workflow`).
 */
export async function loadWorkflows(
  source: string | WorkflowSource,
  folders: string[] = DEFAULT_WORKFLOW_FOLDERS,
): Promise<LoadedWorkflows> {
  const read = typeof source === 'string' ? directorySource(source) : source;
  const files = await read(folders);
  return parseAndResolve(files.map((file) => ({ path: file.path, ...parseWorkflow(file.path, file.text) })), read);
}

/** Like loadWorkflows, for files already read (validate given file names). */
export async function parseAndResolve(parsed: ParsedFile[], source: WorkflowSource): Promise<LoadedWorkflows> {
  const resolved = await resolveCalls(parsed, source.readFile?.bind(source));
  const result: LoadedWorkflows = { workflows: [], problems: [], invalidFiles: [] };
  for (const file of [...parsed, ...resolved.called]) {
    if (parsed.includes(file) && file.workflow) result.workflows.push(file.workflow);
    result.problems.push(...file.problems);
  }
  result.problems.push(...resolved.problems);
  // Each file's problems together, in file order, then by position.
  const order = new Map([...parsed, ...resolved.called].map((file, index) => [file.path, index]));
  result.problems.sort((a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line || a.column - b.column);
  result.invalidFiles = [...new Set(result.problems.map((p) => p.file))];
  return result;
}
