/**
 * `runs-on` labels that no image answers to, found before anything runs: warnings for
 * `forgevm validate`. A label is checked when it can be known without a run: written out, or
 * read from a matrix written out in full (`${{ matrix.os }}`). Others are left to run time.
 */
import { conditionExpression, contextsUsedBy, interpolate } from './expressions.ts';
import { expandMatrix } from './matrix.ts';
import type { JobDef, Workflow, WorkflowProblem } from './model.ts';

export interface LabelCatalog {
  /** Labels a job may name (images and their aliases), for the message. */
  labels: string[];
  has(label: string): boolean;
}

export function runsOnWarnings(workflow: Workflow, catalog: LabelCatalog): WorkflowProblem[] {
  const warnings: WorkflowProblem[] = [];
  for (const job of workflow.jobs) {
    if (job.call) continue;
    for (const label of staticLabels(job)) {
      if (catalog.has(label)) continue;
      warnings.push({
        file: workflow.file,
        line: job.pos.line,
        column: job.pos.column,
        severity: 'warning',
        message: `jobs.${job.id}.runs-on: "${label}" is not an image in the catalog (${catalog.labels.join(', ')}), so the job fails when it starts; add it under images: in the configuration, or name one of these`,
      });
    }
  }
  return warnings;
}

/** The labels a job can boot, when they are known before the run; [] when they are not. */
function staticLabels(job: JobDef): string[] {
  const runsOn = job.runsOn;
  if (runsOn.trim() === '') return [];
  if (!runsOn.includes('${{')) return [runsOn];
  let used: string[];
  try {
    used = contextsUsedBy(conditionExpression(runsOn));
  } catch {
    return [];
  }
  const matrix = job.strategy?.matrix;
  if (!used.every((c) => c === 'matrix') || matrix === undefined || typeof matrix === 'string' || JSON.stringify(matrix).includes('${{')) return [];
  try {
    return [...new Set(expandMatrix(matrix).map((combination) => interpolate(runsOn, { matrix: combination })))].filter((label) => label !== '');
  } catch {
    return []; // a matrix the parser already reported
  }
}
