/** GitHub Checks API reporter: one check run per job instance. */
import type { GithubClients, GithubOctokit } from '../forge/github-client.ts';
import { batchAnnotations } from './annotations.ts';
import { OUTPUT_FIELD_LIMIT, keepEnd } from './check-output.ts';
import { checkName, type Completion, type ForgeReporter, type ReportHandle, type ReportTarget } from './reporter.ts';
import type { CheckOutput } from './check-output.ts';

const TITLE_LIMIT = 1_000;

function clampOutput(output: CheckOutput): CheckOutput {
  return {
    title: output.title.length > TITLE_LIMIT ? `${output.title.slice(0, TITLE_LIMIT - 1)}…` : output.title,
    summary: keepEnd(output.summary, OUTPUT_FIELD_LIMIT - 1),
    text: keepEnd(output.text, OUTPUT_FIELD_LIMIT - 1),
  };
}

function splitRepo(repo: string): { owner: string; repo: string } {
  const [owner, name] = repo.split('/');
  if (!owner || !name) throw new Error(`"${repo}" is not an owner/name repository`);
  return { owner, repo: name };
}

export class CheckRunReporter implements ForgeReporter {
  constructor(private readonly clients: GithubClients) {}

  #octokit(target: ReportTarget): GithubOctokit {
    if (target.installationId === undefined) throw new Error(`no GitHub App installation for ${target.repo}: install the app on the repository`);
    return this.clients.forInstallation(target.installationId);
  }

  async queued(target: ReportTarget): Promise<ReportHandle> {
    const octokit = this.#octokit(target);
    const name = checkName(target);
    const existing = await this.findByExternalId(target);
    if (existing !== undefined) return { target, checkRunId: existing };
    const { data } = await octokit.rest.checks.create({
      ...splitRepo(target.repo),
      name,
      head_sha: target.sha,
      external_id: target.externalId,
      status: 'queued',
      ...(target.detailsUrl ? { details_url: target.detailsUrl } : {}),
    });
    return { target, checkRunId: data.id };
  }

  /** A check run we made earlier for this job (same external_id), so a crash never duplicates it. */
  async findByExternalId(target: ReportTarget): Promise<number | undefined> {
    const octokit = this.#octokit(target);
    const runs = await octokit.paginate(octokit.rest.checks.listForRef, {
      ...splitRepo(target.repo),
      ref: target.sha,
      check_name: checkName(target),
      app_id: Number(this.clients.appId),
      filter: 'all',
      per_page: 100,
    });
    return runs.find((run) => run.external_id === target.externalId)?.id;
  }

  async inProgress(handle: ReportHandle, startedAt: string): Promise<void> {
    await this.#octokit(handle.target).rest.checks.update({
      ...splitRepo(handle.target.repo),
      check_run_id: this.#id(handle),
      status: 'in_progress',
      started_at: startedAt,
    });
  }

  async progress(handle: ReportHandle, output: CheckOutput): Promise<void> {
    await this.#octokit(handle.target).rest.checks.update({
      ...splitRepo(handle.target.repo),
      check_run_id: this.#id(handle),
      output: clampOutput(output),
    });
  }

  async completed(handle: ReportHandle, completion: Completion): Promise<void> {
    const octokit = this.#octokit(handle.target);
    const output = clampOutput(completion.output);
    // GitHub takes at most 50 annotations per request; later updates append to the list.
    const [first = [], ...rest] = batchAnnotations(completion.annotations ?? []);
    await octokit.rest.checks.update({
      ...splitRepo(handle.target.repo),
      check_run_id: this.#id(handle),
      status: 'completed',
      conclusion: completion.conclusion,
      completed_at: completion.completedAt ?? new Date().toISOString(),
      output: { ...output, ...(first.length > 0 ? { annotations: first } : {}) },
      ...(completion.actions ? { actions: completion.actions } : {}),
    });
    for (const batch of rest) {
      await octokit.rest.checks.update({
        ...splitRepo(handle.target.repo),
        check_run_id: this.#id(handle),
        output: { title: output.title, summary: output.summary, annotations: batch },
      });
    }
  }

  #id(handle: ReportHandle): number {
    if (handle.checkRunId === undefined) throw new Error(`job ${handle.target.externalId} has no check run id yet: report it queued first`);
    return handle.checkRunId;
  }
}
