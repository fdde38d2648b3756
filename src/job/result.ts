/** What a job run produces, for the CLI summary, the store and the forge reporters. */
import type { CommandAnnotation } from './step-output.ts';

export type JobConclusion = 'success' | 'failure' | 'cancelled' | 'timed_out' | 'skipped';
export type StepConclusion = 'success' | 'failure' | 'cancelled' | 'skipped';

export interface StepResult {
  /** Display name: `name:` or the first line of `run:`. */
  name: string;
  id?: string;
  /** Result before continue-on-error is applied (GitHub's `steps.<id>.outcome`). */
  outcome: StepConclusion;
  /** Result after continue-on-error (GitHub's `steps.<id>.conclusion`). */
  conclusion: StepConclusion;
  exitCode: number | null;
  /** True when the step's own timeout-minutes expired. */
  timedOut?: boolean;
  startedAt: string;
  durationMs: number;
  /** Byte range of this step's output inside the job log file. */
  log: { start: number; end: number };
}

export interface JobResult {
  conclusion: JobConclusion;
  steps: StepResult[];
  /** `jobs.<id>.outputs`, evaluated at the end of the job. */
  outputs: Record<string, string>;
  /**
   * Set when the job failed outside any step (VM did not boot, SSH never came up, log cap hit,
   * runner restarted): one actionable line.
   */
  error?: string;
  /** Last serial-console lines, kept when the VM never became reachable. */
  consoleTail?: string;
  /** A failure that job `continue-on-error` allows: dependents and the run see success. */
  allowedFailure?: boolean;
  /** `::error`/`::warning`/`::notice` commands the steps printed (messages masked). */
  annotations?: CommandAnnotation[];
  /**
   * What the steps wrote to GITHUB_STEP_SUMMARY, in order (Markdown, masked), shown in the check
   * run as GitHub shows job summaries; at most JOB_SUMMARY_LIMIT characters, its start kept.
   */
  summary?: string;
  /** Artifacts of the run as the job left them (upload-artifact), for the check run. */
  artifacts?: { name: string; size: number }[];
  /** Full job log on the host (step headers and output). */
  logPath: string;
  startedAt: string;
  durationMs: number;
}

/** A check run's summary holds 65,535 characters: a job summary longer than this is cut. */
export const JOB_SUMMARY_LIMIT = 60_000;

/** The job summary as a JobResult keeps it: its start, with a line saying what was cut. */
export function keptJobSummary(summary: string): string | undefined {
  if (summary.trim() === '') return undefined;
  if (summary.length <= JOB_SUMMARY_LIMIT) return summary;
  const notice = `\n\n… (the job summary was cut here: ${summary.length} characters, a check run shows ${JOB_SUMMARY_LIMIT})\n`;
  const cut = summary.slice(0, JOB_SUMMARY_LIMIT - notice.length);
  return cut.slice(0, Math.max(cut.lastIndexOf('\n'), 0) || cut.length) + notice;
}
