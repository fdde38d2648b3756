import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GithubClients } from '../src/forge/github-client.ts';
import { CheckRunReporter } from '../src/report/check-run-reporter.ts';
import type { Annotation } from '../src/report/annotations.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';

let github: FakeGithub;
let clients: GithubClients;

beforeAll(async () => {
  github = await startFakeGithub();
  clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false } });
});
afterAll(() => github.stop());

describe("the fake GitHub checks bodies against GitHub's OpenAPI description", () => {
  it('rejects a check run whose conclusion GitHub does not know', async () => {
    const token = await clients.installationToken(7);
    const response = await fetch(`${github.url}/repos/acme/app/check-runs`, {
      method: 'POST',
      headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ci / test', head_sha: 'a'.repeat(40), status: 'completed', conclusion: 'passed' }),
    });
    expect(response.status).toBe(422);
    expect(github.validationErrors.join('\n')).toMatch(/conclusion must be equal to one of the allowed values/);
    expect(github.checkRuns).toHaveLength(0);
    github.validationErrors.length = 0;
  });

  it('rejects a completed check run without a conclusion and too many annotations', async () => {
    const token = await clients.installationToken(7);
    const annotations = Array.from({ length: 51 }, (_, i) => ({ path: 'a.c', start_line: i + 1, end_line: i + 1, annotation_level: 'failure', message: 'm' }));
    const response = await fetch(`${github.url}/repos/acme/app/check-runs`, {
      method: 'POST',
      headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', head_sha: 'b'.repeat(40), output: { title: 't', summary: 's', annotations } }),
    });
    expect(response.status).toBe(422);
    expect(github.validationErrors.join('\n')).toMatch(/annotations must NOT have more than 50 items/);
    github.validationErrors.length = 0;
  });

  it("accepts every body our check-run reporter sends through a job's life", async () => {
    const reporter = new CheckRunReporter(clients);
    const sha = 'c'.repeat(40);
    const handle = await reporter.queued({ forge: 'github', repo: 'acme/app', sha, installationId: 7, workflowName: 'CI', jobName: 'test (20, debian)', externalId: 'job-1', detailsUrl: 'https://ci.example/jobs/1' });
    await reporter.inProgress(handle, new Date().toISOString());
    await reporter.progress(handle, { title: 'Running step "Test"', summary: 'running', text: 'line 1\nline 2' });
    const annotations: Annotation[] = Array.from({ length: 120 }, (_, i) => ({ path: 'src/a.c', start_line: i + 1, end_line: i + 1, start_column: 2, end_column: 2, annotation_level: 'warning', message: `w${i}`, title: 'compiler' }));
    await reporter.completed(handle, {
      conclusion: 'action_required',
      output: { title: 'Waiting for approval', summary: 'A maintainer must approve', text: 'x'.repeat(70_000) },
      annotations,
      actions: [{ label: 'Approve and run', identifier: 'approve', description: 'Run this fork PR in a VM' }],
    });
    expect(github.validationErrors).toEqual([]);
    const [run] = github.checkRuns;
    expect(run).toMatchObject({ name: 'CI / test (20, debian)', external_id: 'job-1', status: 'completed', conclusion: 'action_required' });
    expect(run!.annotations).toHaveLength(120);
    expect(run!.output.text!.length).toBeLessThan(65_536);
    // 50 per request: the completing PATCH plus two appending ones.
    expect(run!.history.filter((b) => (b.output as { annotations?: unknown[] } | undefined)?.annotations).map((b) => (b.output as { annotations: unknown[] }).annotations.length)).toEqual([50, 50, 20]);
  });
});
