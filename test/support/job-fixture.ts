/** Turn workflow YAML into a runnable job for engine tests, through the real parser and executor. */
import { join } from 'node:path';
import { JobLog } from '../../src/log/job-log.ts';
import type { RunSteps } from '../../src/job/run-job.ts';
import { runSteps } from '../../src/job/steps.ts';
import type { GithubContext, JobInstance } from '../../src/workflow/model.ts';
import { localGithubContext } from '../../src/workflow/local-context.ts';
import { parseWorkflow } from '../../src/workflow/parse.ts';
import { expandJob } from '../../src/workflow/planner.ts';

export function jobFromYaml(yaml: string, jobId?: string): JobInstance {
  const { workflow, problems } = parseWorkflow('.forgevm/workflows/test.yml', /^on:/m.test(yaml) ? yaml : `on: push\n${yaml}`);
  if (!workflow || problems.length) throw new Error(problems.map((p) => `${p.line}:${p.column} ${p.message}`).join('\n'));
  const job = jobId ? workflow.jobs.find((j) => j.id === jobId) : workflow.jobs[0];
  if (!job) throw new Error(`no job ${jobId}`);
  // The planner's own expansion: the same instance a real run would get.
  const [instance] = expandJob(workflow, job, { github: testGithub('0'.repeat(40)) });
  if (!instance) throw new Error(`job ${job.id} expands to no instance`);
  return instance;
}

export function testGithub(sha: string): GithubContext {
  return localGithubContext({ name: 'push', ref: 'refs/heads/main', sha, payload: {} }, '/work/repo', '1');
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
