/**
 * Every fixture in workflows/actions (act's offline action cases, in forgevm's own words, and the
 * GitHub action semantics act does not check), run in real `tiny` VMs through the real
 * `forgevm run` (a subprocess, in a git repository holding the fixtures and their local
 * actions), checked against the file's headers: each job's conclusion (from `--json` and from
 * the summary table), the run's conclusion and exit code, and what each job's log must show,
 * lack, or show in order. Fixtures marked `# needs: actions-host` get forgevm's actions URL
 * pointed at a git host serving workflows/actions/_hosted.
 * About 40 VMs, most running Node.js under TCG; two at a time (`--max-parallel 2`).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliStateRoot, forgevm, gitRepo, readRunReport, removeStateRoot, summaryRow } from './support/forgevm-cli.ts';
import type { ActionsHost } from './support/actions-host.ts';
import { startFixtureActionsHost } from './support/fixture-actions-host.ts';
import { logChecksOf, logProblems } from './support/log-expectations.ts';
import { expectationsOf } from './support/semantics-expectations.ts';
import { jobFolders, qemuProcessesUnder } from './support/vm-harness.ts';

const REPO_ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(REPO_ROOT, 'workflows', 'actions');
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.yml')).sort();
const texts = Object.fromEntries(files.map((f) => [f, readFileSync(join(FIXTURES, f), 'utf8')]));
const needsActionsHost = (text: string) => /^# needs: actions-host$/m.test(text);

/** Everything under workflows/actions except the remote actions, keyed by repository path. */
function repositoryFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (full === join(FIXTURES, '_hosted')) continue; // remote actions must come from the host
      if (statSync(full).isDirectory()) walk(full);
      else out[relative(REPO_ROOT, full)] = readFileSync(full, 'utf8');
    }
  };
  walk(FIXTURES);
  return out;
}

let stateRoot: string;
let repo: { dir: string; sha: string };
let host: ActionsHost;
let hostConfig: string;
const started = Date.now();

beforeAll(async () => {
  stateRoot = await cliStateRoot();
  repo = await gitRepo({ 'README.md': 'action fixtures\n', ...repositoryFiles() });
  host = await startFixtureActionsHost();
  hostConfig = join(stateRoot, 'actions-host.yml');
  await writeFile(hostConfig, `actions:\n  url: ${host.url}\n`);
});

afterAll(async () => {
  // The whole project's suite must fit CI's budget: keep an eye on this file's share.
  console.log(`action fixtures in VMs: ${((Date.now() - started) / 1000).toFixed(0)} s for ${files.length} files`);
  await host?.stop();
  if (stateRoot) await removeStateRoot(stateRoot);
  if (repo) await rm(repo.dir, { recursive: true, force: true });
});

describe("act's action cases and GitHub's action semantics in tiny VMs through forgevm run", () => {
  for (const file of files) {
    it(`${file}: every job ends as its expect header says, and its log shows what it must`, async () => {
      const text = texts[file]!;
      const expected = expectationsOf(text);
      const json = join(stateRoot, `${file}.json`);
      const fileStarted = Date.now();
      const config = needsActionsHost(text) ? ['--config', hostConfig] : [];
      const run = await forgevm([...config, 'run', '--workflow', `workflows/actions/${file}`, '--max-parallel', '2', '--json', json], {
        cwd: repo.dir,
        stateRoot,
        timeoutMs: 480_000,
      });
      console.log(`${file}: ${((Date.now() - fileStarted) / 1000).toFixed(0)} s`);
      const report = await readRunReport(json).catch(() => {
        throw new Error(`forgevm run wrote no --json report (${run.timedOut ? 'killed after 480 s' : `exit ${run.exitCode}`}):\n${run.all}`);
      });
      const conclusions = Object.fromEntries(report.jobs.map((j) => [j.key, j.conclusion]));
      const logs: Record<string, string> = {};
      for (const job of report.jobs) logs[job.key] = await readFile(job.logPath, 'utf8').catch(() => '');
      const logTrouble = logProblems(logChecksOf(text), logs);
      if (JSON.stringify(conclusions) !== JSON.stringify({ ...conclusions, ...expected.jobs }) || logTrouble.length > 0) {
        // The logs of the jobs that went wrong say far more than a bare diff.
        for (const [key, log] of Object.entries(logs)) {
          const error = report.jobs.find((j) => j.key === key)?.error;
          if (conclusions[key] !== expected.jobs[key] || logTrouble.some((p) => p.startsWith(`${key}:`))) console.log(`--- ${key}: ${conclusions[key]}, expected ${expected.jobs[key]}${error ? ` (${error})` : ''}\n${log}`);
        }
        console.log(run.all);
      }
      expect(conclusions).toEqual(expected.jobs);
      expect(logTrouble).toEqual([]);
      // The summary table a person reads agrees with the JSON.
      for (const [key, conclusion] of Object.entries(expected.jobs)) {
        expect(summaryRow(run.stdout, key)?.[1], `summary row of ${key}`).toMatch(new RegExp(`^${conclusion}( \\(allowed\\))?$`));
      }
      expect(report.conclusion).toBe(expected.run);
      expect(run.exitCode).toBe(expected.run === 'success' || expected.run === 'skipped' ? 0 : 1);
      // Each job's VM is gone, and its folder with it.
      expect(await qemuProcessesUnder(stateRoot)).toEqual([]);
      expect(await jobFolders(stateRoot)).toEqual([]);
    }, 540_000);
  }
});
