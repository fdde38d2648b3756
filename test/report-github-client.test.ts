import { afterEach, describe, expect, it } from 'vitest';
import { GithubClients, type ForgeLogger } from '../src/forge/github-client.ts';
import { CheckRunReporter } from '../src/report/check-run-reporter.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';

let github: FakeGithub | undefined;
afterEach(async () => {
  await github?.stop();
  github = undefined;
});

function logger(): ForgeLogger & { lines: string[] } {
  const lines: string[] = [];
  const push = (l: string) => lines.push(l);
  return { lines, info: push, warn: push, error: push };
}

const target = { forge: 'github' as const, repo: 'acme/app', sha: 'd'.repeat(40), installationId: 3, workflowName: 'CI', jobName: 'build', externalId: 'job-42' };

describe('GitHub client', () => {
  it('keeps one Octokit per installation', async () => {
    github = await startFakeGithub();
    const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false } });
    expect(clients.forInstallation(1)).toBe(clients.forInstallation(1));
    expect(clients.forInstallation(1)).not.toBe(clients.forInstallation(2));
  });

  it('reuses an installation token while it has time left and renews it before it expires', async () => {
    github = await startFakeGithub({ tokenTtlMs: 30 * 60_000 });
    const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false }, tokenRenewMarginMs: 10 * 60_000 });
    const first = await clients.installationToken(3);
    expect(await clients.installationToken(3)).toBe(first);
    expect(first.length).toBeGreaterThan(40);
    expect(github.tokensIssued).toEqual([3]);

    // Tokens that would expire within the margin are never handed out again.
    github.tokenTtlMs = 5 * 60_000;
    const other = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false }, tokenRenewMarginMs: 10 * 60_000 });
    const a = await other.installationToken(4);
    const b = await other.installationToken(4);
    expect(a).not.toBe(b);
    expect(github.tokensIssued).toEqual([3, 4, 4]);
  });

  it('waits out primary and secondary rate limits, retries 5xx, and logs each failure on one line', async () => {
    github = await startFakeGithub();
    const log = logger();
    const clients = new GithubClients({
      appId: github.appId,
      privateKey: github.privateKey,
      apiUrl: github.url,
      log,
      // 1 ms per second of retry-after keeps the test fast; the lanes stay on.
      throttle: { retryAfterBaseValue: 1 },
      retry: { retryAfterBaseValue: 1 },
    });
    const reset = String(Math.floor(Date.now() / 1000) + 2);
    github.failNext('GET', /check-runs$/, 403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset }, { message: 'API rate limit exceeded for installation ID 3.' });
    github.failNext('POST', /check-runs$/, 403, { 'retry-after': '3' }, { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' });
    github.failNext('PATCH', /check-runs\/\d+$/, 502, {}, { message: 'Server Error' });
    const reporter = new CheckRunReporter(clients);
    const handle = await reporter.queued(target);
    await reporter.inProgress(handle, new Date().toISOString());
    expect(github.checkRuns).toHaveLength(1);
    expect(github.checkRuns[0]!.status).toBe('in_progress');
    expect(log.lines.some((l) => /^GitHub rate limit hit on GET .*retrying in \d+s/.test(l))).toBe(true);
    expect(log.lines.some((l) => /^GitHub secondary rate limit hit on POST .*retrying in 3s/.test(l))).toBe(true);
    // The 502 was retried away; a failure that stays is logged once, on one line.
    const octokit = clients.forInstallation(3);
    await expect(octokit.rest.checks.get({ owner: 'acme', repo: 'app', check_run_id: 999_999 })).rejects.toMatchObject({ status: 404 });
    expect(log.lines.filter((l) => /^GitHub API GET \/repos\/\{owner\}\/\{repo\}\/check-runs\/\{check_run_id\} failed \(installation-3\): 404: Not Found$/.test(l))).toHaveLength(1);
    // Each failed attempt is logged with its cause, the retried 502 too.
    expect(log.lines.some((l) => /^GitHub API PATCH \/repos\/\{owner\}\/\{repo\}\/check-runs\/\{check_run_id\} attempt failed: 502: Server Error$/.test(l))).toBe(true);
    for (const line of log.lines) expect(line).not.toContain('\n');
  });

  it('finds the check run made before a crash by external_id instead of creating another', async () => {
    github = await startFakeGithub();
    const clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false } });
    const reporter = new CheckRunReporter(clients);
    const first = await reporter.queued(target);
    const again = await reporter.queued(target);
    const otherJob = await reporter.queued({ ...target, externalId: 'job-43' });
    expect(again.checkRunId).toBe(first.checkRunId);
    expect(otherJob.checkRunId).not.toBe(first.checkRunId);
    expect(github.checkRuns).toHaveLength(2);
    expect(github.validationErrors).toEqual([]);
  });
});
