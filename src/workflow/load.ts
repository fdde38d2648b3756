/**
 * Finding and parsing the workflow files of a repository. Where the files come from is a
 * parameter: a working tree on disk, a git commit (the CLI), or files fetched from a forge API.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { Workflow, WorkflowProblem } from './model.ts';
import { parseWorkflow } from './parse.ts';

export const DEFAULT_WORKFLOW_FOLDERS = ['.forgevm/workflows'];

export interface WorkflowFile {
  /** Relative to the repository root, with `/` separators. */
  path: string;
  text: string;
}

/** Returns the workflow files found directly in the given folders. */
export type WorkflowSource = (folders: string[]) => Promise<WorkflowFile[]>;

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
  return async (folders) => {
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
  };
}

/** Workflow files as they are in a commit (`git ls-tree` + `git show`), without a checkout. */
export function gitCommitSource(repoDir: string, sha: string): WorkflowSource {
  return async (folders) => {
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
  };
}

/** A source over files already in memory (fetched from a forge API, or tests). */
export function memorySource(files: WorkflowFile[]): WorkflowSource {
  return async (folders) => files.filter((f) => isWorkflowPath(f.path, folders));
}

export interface LoadedWorkflows {
  /** Parsed workflows, including those with problems (validation decides what to do with them). */
  workflows: Workflow[];
  /** Workflows with problems should not run: report these instead. */
  problems: WorkflowProblem[];
  /** Files that have at least one problem. */
  invalidFiles: string[];
}

export async function loadWorkflows(
  source: string | WorkflowSource,
  folders: string[] = DEFAULT_WORKFLOW_FOLDERS,
): Promise<LoadedWorkflows> {
  const read = typeof source === 'string' ? directorySource(source) : source;
  const files = await read(folders);
  const result: LoadedWorkflows = { workflows: [], problems: [], invalidFiles: [] };
  for (const file of files) {
    const parsed = parseWorkflow(file.path, file.text);
    if (parsed.workflow) result.workflows.push(parsed.workflow);
    if (parsed.problems.length > 0) {
      result.problems.push(...parsed.problems);
      result.invalidFiles.push(file.path);
    }
  }
  return result;
}
