/**
 * Workflow file → model plus problems. Reads the YAML AST (not plain JS) to keep line:column
 * for every message. Never throws: any input yields problems, and a workflow when the file is
 * at least a mapping (so validation can report as much as possible at once).
 */
import { isMap, LineCounter, parseDocument } from 'yaml';
import type { JobDef, Workflow, WorkflowProblem } from './model.ts';
import { parseJobs } from './parse-jobs.ts';
import { checkExpressions, checkStringMap, parseConcurrency, parseDefaults } from './parse-values.ts';
import { parseTriggers } from './parse-triggers.ts';
import { SCOPES, WORKFLOW_KEYS } from './schema.ts';
import { type AnyNode, didYouMean, YamlReader } from './yaml-reader.ts';

export interface ParseResult {
  workflow?: Workflow;
  problems: WorkflowProblem[];
}

export function parseWorkflow(file: string, text: string): ParseResult {
  try {
    return parseUnsafe(file, text);
  } catch (err) {
    // A bug in the parser must not take the forge down with it: report it as a problem.
    const message = err instanceof Error ? err.message : String(err);
    return { problems: [{ file, line: 1, column: 1, message: `internal error while reading the workflow: ${message}` }] };
  }
}

function parseUnsafe(file: string, text: string): ParseResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const r = new YamlReader(file, doc, lines);
  // One broken bracket can cascade into dozens of errors; the first few locate it.
  for (const error of doc.errors.slice(0, 5)) {
    const pos = lines.linePos(error.pos[0]);
    r.problemAt({ line: pos.line, column: pos.col }, `YAML: ${firstLine(error.message)}`);
  }
  if (doc.errors.length > 0) return { problems: r.problems };

  const root = r.resolve(doc.contents as AnyNode);
  if (!isMap(root)) {
    r.problem(root, 'a workflow file must be a mapping with "on:" and "jobs:"');
    return { problems: r.problems };
  }
  const workflow: Workflow = { file, name: file, on: {}, env: {}, defaults: {}, jobs: [] };
  let onNode: AnyNode;
  let jobsNode: AnyNode;
  for (const { key, keyNode, value } of r.entries(root, 'the workflow')) {
    switch (key) {
      case 'name': {
        const s = r.string(value, 'name');
        if (s !== undefined && s.trim() !== '') workflow.name = s;
        break;
      }
      case 'run-name': {
        const s = r.string(value, 'run-name');
        if (s !== undefined) {
          workflow.runName = s;
          checkExpressions(r, value, s, SCOPES.runName, 'run-name');
        }
        break;
      }
      case 'on':
        onNode = value ?? keyNode;
        break;
      case 'env':
        workflow.env = r.stringMap(value, 'env');
        checkStringMap(r, value, workflow.env, SCOPES.workflowEnv, 'env');
        break;
      case 'defaults':
        workflow.defaults = parseDefaults(r, value, 'defaults', SCOPES.workflowDefaults);
        break;
      case 'concurrency': {
        const c = parseConcurrency(r, value, 'concurrency', SCOPES.workflowConcurrency);
        if (c) workflow.concurrency = c;
        break;
      }
      case 'jobs':
        jobsNode = value ?? keyNode;
        break;
      case 'permissions':
        break; // token scopes: nothing to restrict in forgevm
      default:
        r.problem(keyNode, `unknown top-level key "${key}"${didYouMean(key, WORKFLOW_KEYS)}`);
    }
  }
  // YAML 1.1 reads a bare `on` key as boolean true; yaml 2 (YAML 1.2) keeps it as "on".
  workflow.on = parseTriggers(r, onNode, root);
  workflow.jobs = parseJobs(r, jobsNode, root);
  checkNeeds(r, workflow.jobs);
  return { workflow, problems: sortProblems(r.problems) };
}

/** Unknown jobs in `needs`, and cycles, reported at the job that declares them. */
function checkNeeds(r: YamlReader, jobs: JobDef[]): void {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  for (const job of jobs) {
    for (const need of job.needs) {
      if (!byId.has(need)) {
        r.problemAt(job.pos, `jobs.${job.id}.needs: unknown job "${need}"${didYouMean(need, [...byId.keys()])}`);
      } else if (need === job.id) {
        r.problemAt(job.pos, `jobs.${job.id}.needs itself`);
      }
    }
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const reported = new Set<string>();
  const visit = (id: string, path: string[]): void => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = path.slice(path.indexOf(id));
      const key = [...cycle].sort().join(',');
      if (cycle.length > 1 && !reported.has(key)) {
        reported.add(key);
        const job = byId.get(id)!;
        r.problemAt(job.pos, `jobs.${id}: "needs" forms a cycle: ${[...cycle, id].join(' → ')}`);
      }
      return;
    }
    state.set(id, 'visiting');
    for (const need of byId.get(id)?.needs ?? []) if (byId.has(need)) visit(need, [...path, id]);
    state.set(id, 'done');
  };
  for (const job of jobs) visit(job.id, []);
}

function sortProblems(problems: WorkflowProblem[]): WorkflowProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
