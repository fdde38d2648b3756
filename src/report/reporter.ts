/**
 * How a job's life is shown on the forge: queued → in_progress → progress… → completed.
 * GitHub gets check runs (src/report/check-run-reporter.ts), Forgejo/Gitea commit statuses
 * (src/report/commit-status-reporter.ts).
 */
import type { Forge } from '../forge/event-types.ts';
import type { Annotation } from './annotations.ts';
import type { CheckOutput } from './check-output.ts';

/** GitHub's check-run conclusions; commit statuses map them onto success/failure/error. */
export type ReportConclusion = 'success' | 'failure' | 'cancelled' | 'timed_out' | 'skipped' | 'neutral' | 'action_required';

export interface ReportTarget {
  forge: Forge;
  /** `owner/name` of the repository the result is shown on (the base repository for fork PRs). */
  repo: string;
  sha: string;
  installationId?: number;
  workflowName: string;
  /** JobInstance.displayName, matrix values included. */
  jobName: string;
  /** Store job's external id: finds the check run again after a crash. */
  externalId: string;
  detailsUrl?: string;
}

/** What the store keeps so a reporter can continue after a restart. */
export interface ReportHandle {
  target: ReportTarget;
  checkRunId?: number;
  statusContext?: string;
}

export interface ReportButton {
  label: string;
  identifier: string;
  description: string;
}

export interface Completion {
  conclusion: ReportConclusion;
  output: CheckOutput;
  annotations?: Annotation[];
  actions?: ReportButton[];
  completedAt?: string;
}

export interface ForgeReporter {
  /** Creates the job's check (or finds the one made before a crash), status queued. */
  queued(target: ReportTarget): Promise<ReportHandle>;
  /** The VM is up and steps are starting. */
  inProgress(handle: ReportHandle, startedAt: string): Promise<void>;
  /** Live log tail; callers send at most one per 10 s per check (see LiveTail). */
  progress(handle: ReportHandle, output: CheckOutput): Promise<void>;
  completed(handle: ReportHandle, completion: Completion): Promise<void>;
}

/** `<workflow name> / <job display name>`, as GitHub Actions names its checks. */
export function checkName(target: Pick<ReportTarget, 'workflowName' | 'jobName'>): string {
  return `${target.workflowName} / ${target.jobName}`;
}
