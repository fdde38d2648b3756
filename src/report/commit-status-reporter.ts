/**
 * Forgejo/Gitea reporter: commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`).
 * There is no Checks API: a status has a state, a ≤140-character description and a link.
 */
import type { CommitState, ForgejoClient } from '../forge/forgejo-client.ts';
import type { CheckOutput } from './check-output.ts';
import type { Completion, ForgeReporter, ReportConclusion, ReportHandle, ReportTarget } from './reporter.ts';

const DESCRIPTION_LIMIT = 140;

export function statusContext(target: Pick<ReportTarget, 'workflowName' | 'jobName'>): string {
  return `forgevm / ${target.workflowName} / ${target.jobName}`;
}

export function statusState(conclusion: ReportConclusion): CommitState {
  switch (conclusion) {
    case 'success':
    case 'skipped':
    case 'neutral':
      return 'success';
    case 'failure':
    case 'timed_out':
      return 'failure';
    case 'cancelled':
    case 'action_required':
      return 'error';
  }
}

export function statusDescription(text: string): string {
  const line = text.split('\n')[0]!.trim();
  return line.length > DESCRIPTION_LIMIT ? `${line.slice(0, DESCRIPTION_LIMIT - 1)}…` : line;
}

export class CommitStatusReporter implements ForgeReporter {
  constructor(private readonly client: ForgejoClient) {}

  async #post(handle: ReportHandle, state: CommitState, description: string): Promise<void> {
    const { target } = handle;
    await this.client.createStatus(target.repo, target.sha, {
      state,
      context: handle.statusContext ?? statusContext(target),
      description: statusDescription(description),
      ...(target.detailsUrl ? { target_url: target.detailsUrl } : {}),
    });
  }

  async queued(target: ReportTarget): Promise<ReportHandle> {
    // Statuses are keyed by context: posting again after a crash replaces, never duplicates.
    const handle: ReportHandle = { target, statusContext: statusContext(target) };
    await this.#post(handle, 'pending', 'Queued');
    return handle;
  }

  async inProgress(handle: ReportHandle): Promise<void> {
    await this.#post(handle, 'pending', 'Running');
  }

  /** Commit statuses keep a history per context: live tails would flood it, so they are not sent. */
  async progress(_handle: ReportHandle, _output: CheckOutput): Promise<void> {}

  async completed(handle: ReportHandle, completion: Completion): Promise<void> {
    await this.#post(handle, statusState(completion.conclusion), completion.output.title);
  }
}
