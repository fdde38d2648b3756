/**
 * Runs the VM fixtures in workflows/semantics on this host (LocalGuest, bash) through the real
 * parser, planner, job graph runner and step executor, and checks every job against the file's
 * `# expect:` header. The same files run later in tiny VMs through `forgevm run`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../src/job/result.ts';
import { runSteps } from '../src/job/steps.ts';
import { JobLog } from '../src/log/job-log.ts';
import { runConclusion, runJobGraph } from '../src/workflow/graph.ts';
import { directorySource, parseAndResolve } from '../src/workflow/load.ts';
import { parseWorkflow } from '../src/workflow/parse.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { LocalGuest } from './support/local-guest.ts';
import { githubContext } from './support/job-model.ts';
import { expectationsOf, instancesOf } from './support/semantics-expectations.ts';

const FIXTURES = join(import.meta.dirname, '..', 'workflows', 'semantics');
const root = mkdtempSync(join(tmpdir(), 'forgevm-fixtures-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function runFixture(file: string) {
  const text = readFileSync(join(FIXTURES, file), 'utf8');
  const path = `workflows/semantics/${file}`;
  // The workflows it calls are read from this checkout, as forgevm run reads them from the repository.
  const loaded = await parseAndResolve([{ path, ...parseWorkflow(path, text) }], directorySource(join(import.meta.dirname, '..')));
  expect(loaded.problems).toEqual([]);
  const parsed = { workflow: loaded.workflows[0] };
  const github = githubContext();
  const [plannedWorkflow] = planWorkflows(
    { name: 'push', ref: github.ref, sha: github.sha, payload: github.event, headCommitMessage: 'test' },
    [parsed.workflow!],
    undefined,
    github,
  );
  expect(plannedWorkflow?.skipped).toBeUndefined();
  const logs: Record<string, string> = {};
  let n = 0;
  const results = await runJobGraph(
    plannedWorkflow!.jobs,
    async (p, needs, signal): Promise<JobResult> => {
      const dir = join(root, `${file}-${n++}`);
      const workspace = join(dir, 'work', 'demo');
      await mkdir(workspace, { recursive: true });
      const logPath = join(dir, 'job.log');
      const log = new JobLog(logPath, 1_000_000);
      const startedAt = new Date();
      try {
        const guest = new LocalGuest(dir, { termAfterMs: 200, killAfterMs: 200 });
        const outcome = await runSteps(
          guest,
          log,
          { instance: p.instance, github, needs, inputs: p.instance.inputs ?? {}, vars: {}, workspace, tempDir: join(dir, 'temp'), defaultTimeoutMinutes: 5 },
          signal,
        );
        return { conclusion: outcome.conclusion, steps: outcome.steps, outputs: outcome.outputs, ...(outcome.error ? { error: outcome.error } : {}), logPath, startedAt: startedAt.toISOString(), durationMs: Date.now() - startedAt.getTime() };
      } finally {
        log.close();
        logs[p.instance.key] = readFileSync(logPath, 'utf8');
      }
    },
    { maxParallel: 4, contexts: { github } },
  );
  const conclusions = Object.fromEntries([...results].map(([k, r]) => [k, r.conclusion]));
  return { text, results, conclusions, logs };
}

const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.yml')).sort();

describe('semantics fixtures on the host', () => {
  it('has fixtures for every area the VM runs must cover', () => {
    expect(files).toEqual(['env-and-files.yml', 'fail-fast.yml', 'matrix-needs.yml', 'reusable.yml', 'status-functions.yml', 'timeouts.yml']);
  });

  for (const file of files) {
    it(`${file}: every job ends as its expect header says`, async () => {
      const { text, results, conclusions, logs } = await runFixture(file);
      const expected = expectationsOf(text);
      if (JSON.stringify(conclusions) !== JSON.stringify({ ...conclusions, ...expected.jobs })) {
        // Show the logs of the jobs that went wrong: far quicker to debug than a bare diff.
        for (const [key, want] of Object.entries(expected.jobs)) if (conclusions[key] !== want) console.log(`--- ${key} (${conclusions[key]}):\n${logs[key] ?? ''}`);
      }
      expect(conclusions).toEqual(expected.jobs);
      for (const [job, count] of Object.entries(expected.instances)) {
        expect(instancesOf(results.keys(), job)).toHaveLength(count);
      }
      expect(runConclusion(results.values())).toBe(expected.run);
      if (file === 'timeouts.yml') expect(logs.job_timeout).toContain('cleanup after job timeout\n');
    }, 60_000);
  }
});
