/** Turn workflow YAML into a runnable job for engine tests, through the real parser and executor. */
import { join } from 'node:path';
import { JobLog } from '../../src/log/job-log.ts';
import type { RunSteps } from '../../src/job/run-job.ts';
import { runSteps } from '../../src/job/steps.ts';
import type { GithubContext, JobInstance } from '../../src/workflow/model.ts';
import { parseWorkflow } from '../../src/workflow/parse.ts';

export function jobFromYaml(yaml: string, jobId?: string): JobInstance {
  const { workflow, problems } = parseWorkflow('.forgevm/workflows/test.yml', /^on:/m.test(yaml) ? yaml : `on: push\n${yaml}`);
  if (!workflow || problems.length) throw new Error(problems.map((p) => `${p.line}:${p.column} ${p.message}`).join('\n'));
  const job = jobId ? workflow.jobs.find((j) => j.id === jobId) : workflow.jobs[0];
  if (!job) throw new Error(`no job ${jobId}`);
  return {
    workflow,
    job,
    key: job.id,
    displayName: job.name ?? job.id,
    matrix: {},
    strategy: { failFast: true, jobIndex: 0, jobTotal: 1 },
    runsOn: job.runsOn,
  };
}

export function testGithub(sha: string): GithubContext {
  return {
    event_name: 'push',
    event: {},
    sha,
    ref: 'refs/heads/main',
    ref_name: 'main',
    ref_type: 'branch',
    head_ref: '',
    base_ref: '',
    repository: 'test/repo',
    repository_owner: 'test',
    run_id: '1',
    run_number: '1',
    run_attempt: '1',
    actor: 'tester',
    workflow: 'test',
    server_url: 'https://github.com',
    api_url: 'https://api.github.com',
  };
}

export function stepsOf(instance: JobInstance, sha: string): RunSteps {
  return (guest, log, layout, signal) =>
    runSteps(
      guest,
      log,
      {
        instance,
        github: testGithub(sha),
        needs: {},
        inputs: {},
        vars: {},
        workspace: layout.workspace,
        tempDir: layout.tempDir,
        defaultTimeoutMinutes: 10,
      },
      signal,
    );
}

export function logIn(dir: string, name: string): JobLog {
  return new JobLog(join(dir, `${name}.log`), 50 * 1024 * 1024);
}
