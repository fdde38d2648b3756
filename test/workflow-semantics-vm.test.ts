/**
 * Every fixture in workflows/semantics, run in real `tiny` VMs through the real `forgevm run`
 * (a subprocess, in a git repository with the fixtures committed), checked against the file's
 * `# expect…:` headers: each job's conclusion (from `--json` and from the summary table), the
 * number of matrix instances, the run's conclusion and exit code.
 * About 21 VMs in all; two at a time (`--max-parallel 2`) on this 2-core machine.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliStateRoot, forgevm, gitRepo, readRunReport, removeStateRoot, summaryRow } from './support/forgevm-cli.ts';
import { expectationsOf, instancesOf } from './support/semantics-expectations.ts';
import { jobFolders, qemuProcessesUnder } from './support/vm-harness.ts';

const FIXTURES = join(import.meta.dirname, '..', 'workflows', 'semantics');
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.yml')).sort();
const texts = Object.fromEntries(files.map((f) => [f, readFileSync(join(FIXTURES, f), 'utf8')]));
// Workflows the fixtures call (reusable.yml): in the repository too, not fixtures of their own.
const called = readdirSync(join(FIXTURES, 'called')).filter((f) => f.endsWith('.yml'));

let stateRoot: string;
let repo: { dir: string; sha: string };
const started = Date.now();

beforeAll(async () => {
  stateRoot = await cliStateRoot();
  repo = await gitRepo({
    'README.md': 'semantics fixtures\n',
    ...Object.fromEntries(files.map((f) => [`workflows/semantics/${f}`, texts[f]!])),
    ...Object.fromEntries(called.map((f) => [`workflows/semantics/called/${f}`, readFileSync(join(FIXTURES, 'called', f), 'utf8')])),
  });
});

afterAll(async () => {
  // The whole project's suite must fit CI's budget: keep an eye on this file's share.
  console.log(`semantics fixtures in VMs: ${((Date.now() - started) / 1000).toFixed(0)} s for ${files.length} files`);
  if (stateRoot) await removeStateRoot(stateRoot);
  if (repo) await rm(repo.dir, { recursive: true, force: true });
});

describe('semantics fixtures in tiny VMs through forgevm run', () => {
  it('finds the fixtures, each with an expect header', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) {
      const expected = expectationsOf(texts[file]!);
      expect(Object.keys(expected.jobs).length, `${file} has no "# expect:" line`).toBeGreaterThan(0);
      expect(expected.run, `${file} has no "# expect-run:" line`).toMatch(/^(success|failure|cancelled|skipped)$/);
    }
  });

  for (const file of files) {
    it(`${file}: every job ends as its expect header says`, async () => {
      const expected = expectationsOf(texts[file]!);
      const json = join(stateRoot, `${file}.json`);
      const fileStarted = Date.now();
      const run = await forgevm(['run', '--workflow', `workflows/semantics/${file}`, '--max-parallel', '2', '--json', json], {
        cwd: repo.dir,
        stateRoot,
        timeoutMs: 270_000,
      });
      console.log(`${file}: ${((Date.now() - fileStarted) / 1000).toFixed(0)} s`);
      const report = await readRunReport(json).catch(() => {
        throw new Error(`forgevm run wrote no --json report (${run.timedOut ? 'killed after 270 s' : `exit ${run.exitCode}`}):\n${run.all}`);
      });
      const conclusions = Object.fromEntries(report.jobs.map((j) => [j.key, j.conclusion]));
      const logs: Record<string, string> = {};
      for (const job of report.jobs) logs[job.key] = await readFile(job.logPath, 'utf8').catch(() => '');
      if (JSON.stringify(conclusions) !== JSON.stringify({ ...conclusions, ...expected.jobs })) {
        // The logs of the jobs that went wrong say far more than a bare diff.
        for (const [key, want] of Object.entries(expected.jobs)) {
          if (conclusions[key] !== want) console.log(`--- ${key}: ${conclusions[key]}, expected ${want}\n${logs[key] ?? '(no log)'}`);
        }
        console.log(run.all);
      }
      expect(conclusions).toEqual(expected.jobs);
      // The summary table a person reads agrees with the JSON.
      for (const [key, conclusion] of Object.entries(expected.jobs)) {
        expect(summaryRow(run.stdout, key)?.[1], `summary row of ${key}`).toMatch(new RegExp(`^${conclusion}( \\(allowed\\))?$`));
      }
      for (const [job, count] of Object.entries(expected.instances)) expect(instancesOf(Object.keys(conclusions), job)).toHaveLength(count);
      expect(report.conclusion).toBe(expected.run);
      expect(run.exitCode).toBe(expected.run === 'success' || expected.run === 'skipped' ? 0 : 1);
      if (file === 'timeouts.yml') {
        // The job timed out, yet its if: always() step still ran.
        expect(logs.job_timeout).toContain('cleanup after job timeout\n');
        expect(report.jobs.find((j) => j.key === 'job_timeout')?.steps.map((s) => [s.name, s.conclusion])).toEqual([
          ['sleep 120', 'cancelled'],
          ['skipped after the timeout', 'skipped'],
          ['cleanup', 'success'],
        ]);
      }
      // Each job's VM is gone, and its folder with it.
      expect(await qemuProcessesUnder(stateRoot)).toEqual([]);
      expect(await jobFolders(stateRoot)).toEqual([]);
    }, 300_000);
  }
});
