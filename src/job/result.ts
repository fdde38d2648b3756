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
  /** Artifacts of the run as the job left them (upload-artifact), for the check run. */
  artifacts?: { name: string; size: number }[];
  /** Full job log on the host (step headers and output). */
  logPath: string;
  startedAt: string;
  durationMs: number;
}
