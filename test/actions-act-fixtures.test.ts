/**
 * The fixtures in workflows/actions on this host: first what can be checked without running
 * them (headers, README table, action metadata, scripts, references between files), then each
 * fixture run through the real parser, planner, job graph runner and step executor on a
 * LocalGuest (this host's bash, and the Node.js guests get), checked against its headers: job
 * conclusions, the run's conclusion, log expectations and step summaries. The same files run
 * later in tiny VMs through `forgevm run` (actions-act-vm.test.ts).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { Script } from 'node:vm';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../src/job/result.ts';
import { runSteps } from '../src/job/steps.ts';
import { JobLog } from '../src/log/job-log.ts';
import { secretsForJob } from '../src/workflow/call-secrets.ts';
import { runConclusion, runJobGraph } from '../src/workflow/graph.ts';
import { directorySource, parseAndResolve } from '../src/workflow/load.ts';
import { parseWorkflow } from '../src/workflow/parse.ts';
import { planWorkflows } from '../src/workflow/planner.ts';
import { ensureHostNode } from '../src/vm/guest-node/host-cache.ts';
import { defaultStateRoot, stateDir } from '../src/vm/state-dir.ts';
import type { ActionsHost } from './support/actions-host.ts';
import { HOSTED_ACTIONS, hostedActionRepos, startFixtureActionsHost } from './support/fixture-actions-host.ts';
import { githubContext } from './support/job-model.ts';
import { LocalGuest } from './support/local-guest.ts';
import { logChecksOf, logProblems, summaryChecksOf } from './support/log-expectations.ts';
import { ActionFetcher } from '../src/actions/fetch.ts';
import { actionLoader } from '../src/job/action-loader.ts';
import { expectationsOf } from './support/semantics-expectations.ts';

const REPO_ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(REPO_ROOT, 'workflows', 'actions');
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.yml')).sort();
const textOf = (file: string) => readFileSync(join(FIXTURES, file), 'utf8');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}
const allFiles = filesUnder(FIXTURES);
const actionManifests = allFiles.filter((f) => basename(f) === 'action.yml');

/** `uses:` values anywhere in a parsed YAML document. */
function usesIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(usesIn);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, v]) => (key === 'uses' && typeof v === 'string' ? [v] : usesIn(v)));
}

describe('action fixtures, before running them', () => {
  it('every fixture says what it mirrors and how it must end', () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
    for (const file of files) {
      const text = textOf(file);
      expect(text, `${file} names no act case and claims no GitHub semantics`).toMatch(/^# (Mirrors act's (testdata case|testdata cases|post-stage cases) |GitHub semantics )/);
      const expected = expectationsOf(text);
      expect(Object.keys(expected.jobs).length, `${file} has no "# expect:" line`).toBeGreaterThan(0);
      expect(expected.run, `${file} has no "# expect-run:" line`).toMatch(/^(success|failure|cancelled|skipped)$/);
      for (const check of [...logChecksOf(text), ...summaryChecksOf(text)]) expect(Object.keys(expected.jobs), `${file}: a log check names an unknown job`).toContain(check.job);
    }
  });

  it('the README table lists every fixture, and only those', () => {
    const readme = readFileSync(join(FIXTURES, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/^\| \[`([^`]+\.yml)`\]/gm)].map((m) => m[1]).sort();
    expect(listed).toEqual(files);
  });

  it('every file is valid YAML, every action.yml is a node20, node24 or composite action with what it needs', () => {
    for (const file of allFiles.filter((f) => /\.ya?ml$/.test(f))) expect(() => parseYaml(readFileSync(file, 'utf8')), relative(REPO_ROOT, file)).not.toThrow();
    expect(actionManifests.length).toBeGreaterThan(30);
    for (const manifest of actionManifests) {
      const where = relative(REPO_ROOT, manifest);
      const action = parseYaml(readFileSync(manifest, 'utf8')) as { name?: string; description?: string; runs: Record<string, unknown> };
      expect(action.name && action.description, `${where}: name and description are required`).toBeTruthy();
      expect(['node20', 'node24', 'composite'], where).toContain(action.runs.using);
      if (action.runs.using === 'composite') {
        const steps = action.runs.steps as Array<Record<string, unknown>>;
        expect(steps.length, `${where}: a composite action needs steps`).toBeGreaterThan(0);
        for (const step of steps) {
          expect(step.run !== undefined || step.uses !== undefined, `${where}: a step needs run or uses`).toBe(true);
          if (step.run !== undefined) expect(step.shell, `${where}: composite run steps need shell`).toBeTruthy();
        }
      } else {
        for (const stage of ['pre', 'main', 'post']) {
          const script = action.runs[stage];
          if (script !== undefined) expect(statSync(join(dirname(manifest), String(script))).isFile(), `${where}: runs.${stage}`).toBe(true);
        }
      }
    }
  });

  it('the actions are plain JavaScript: valid syntax, Node.js built-ins and their own files only', () => {
    const scripts = allFiles.filter((f) => f.endsWith('.js'));
    expect(scripts.length).toBeGreaterThan(30);
    for (const script of scripts) {
      const code = readFileSync(script, 'utf8');
      // Compiled as Node.js compiles a CommonJS module (wrapped in a function), never run.
      expect(() => new Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`, { filename: script }), relative(REPO_ROOT, script)).not.toThrow();
      for (const [, required] of code.matchAll(/require\(['"]([^'"]+)['"]\)/g)) {
        expect(required, relative(REPO_ROOT, script)).toMatch(/^(node:|\.\.?\/)/);
      }
    }
  });

  it('every local action a fixture or action uses exists, and every remote one is hosted', () => {
    const hosted = new Set(hostedActionRepos());
    // Local actions some fixtures write at run time, and one that must not exist.
    const madeAtRunTime = /^\.\/generated\/|^\.\/workflows\/actions\/non-existent-action\//;
    for (const file of allFiles.filter((f) => /\.ya?ml$/.test(f))) {
      for (const uses of usesIn(parseYaml(readFileSync(file, 'utf8')))) {
        const where = `${relative(REPO_ROOT, file)}: uses: ${uses}`;
        if (uses.startsWith('./')) {
          if (madeAtRunTime.test(uses)) continue;
          const target = join(REPO_ROOT, uses);
          const isWorkflow = uses.endsWith('.yml');
          expect(statSync(isWorkflow ? target : join(target, 'action.yml')).isFile(), where).toBe(true);
        } else if (!uses.startsWith('actions/checkout@')) {
          const [repo, ref] = uses.split('@');
          expect(hosted.has(repo!.split('/').slice(0, 2).join('/')) && ref === 'v1', `${where}: not in _hosted, or not @v1`).toBe(true);
        }
      }
    }
  });
});

// ---- running them -------------------------------------------------------------------------

const root = mkdtempSync(join(tmpdir(), 'forgevm-action-fixtures-'));
let host: ActionsHost;
/** The Node.js guests get (one Node 24 for node20 and node24 actions), cached with the images. */
let node: string;
beforeAll(async () => {
  host = await startFixtureActionsHost();
  node = (await ensureHostNode(join(stateDir(defaultStateRoot()).images, '.guest-node'))).binary;
}, 300_000);
afterAll(async () => {
  await host?.stop();
  rmSync(root, { recursive: true, force: true });
});

async function runFixture(file: string) {
  const text = textOf(file);
  const path = `workflows/actions/${file}`;
  // The workflows it calls are read from this checkout, as forgevm run reads them from the repository.
  const loaded = await parseAndResolve([{ path, ...parseWorkflow(path, text) }], directorySource(REPO_ROOT));
  expect(loaded.problems).toEqual([]);
  const github = githubContext();
  const [plannedWorkflow] = planWorkflows(
    { name: 'push', ref: github.ref, sha: github.sha, payload: github.event, headCommitMessage: 'test' },
    [loaded.workflows[0]!],
    undefined,
    github,
  );
  expect(plannedWorkflow?.skipped).toBeUndefined();
  const logs: Record<string, string> = {};
  const summaries: Record<string, string> = {};
  let n = 0;
  const results = await runJobGraph(
    plannedWorkflow!.jobs,
    async (p, needs, signal): Promise<JobResult> => {
      const dir = join(root, `${file}-${n++}`);
      const workspace = join(dir, 'work', 'demo');
      await mkdir(workspace, { recursive: true });
      // The repository as checkout leaves it: the fixtures and their local actions, not the remote ones.
      await cp(FIXTURES, join(workspace, 'workflows', 'actions'), { recursive: true, filter: (src) => !src.startsWith(HOSTED_ACTIONS) });
      const logPath = join(dir, 'job.log');
      const log = new JobLog(logPath, 1_000_000);
      const startedAt = new Date();
      try {
        const guest = new LocalGuest(dir, { termAfterMs: 200, killAfterMs: 200 });
        const actions = actionLoader({
          guest,
          workspace,
          actionsDir: join(dir, 'temp', '_actions'),
          fetcher: new ActionFetcher({ cacheRoot: join(dir, 'action-cache'), actionsUrl: host.url }),
          node: async () => node,
          log: (line) => log.meta(line),
        });
        // Jobs of a called workflow get the call's inputs, and the secrets it passes down (the run has none).
        const secrets = secretsForJob(p.instance, {}, { github });
        const input = { instance: p.instance, github, needs, inputs: p.instance.inputs ?? {}, secrets, vars: {}, workspace, tempDir: join(dir, 'temp'), defaultTimeoutMinutes: 5, actions };
        const outcome = await runSteps(guest, log, input, signal);
        summaries[p.instance.key] = outcome.summary;
        return { conclusion: outcome.conclusion, steps: outcome.steps, outputs: outcome.outputs, ...(outcome.error ? { error: outcome.error } : {}), logPath, startedAt: startedAt.toISOString(), durationMs: Date.now() - startedAt.getTime() };
      } finally {
        log.close();
        logs[p.instance.key] = readFileSync(logPath, 'utf8');
      }
    },
    { maxParallel: 2, contexts: { github } },
  );
  const conclusions = Object.fromEntries([...results].map(([k, r]) => [k, r.conclusion]));
  return { text, results, conclusions, logs, summaries };
}

describe('action fixtures on the host', () => {
  for (const file of files) {
    it(`${file}: every job ends as its expect header says`, async () => {
      const { text, results, conclusions, logs, summaries } = await runFixture(file);
      const expected = expectationsOf(text);
      const logTrouble = logProblems(logChecksOf(text), logs);
      if (JSON.stringify(conclusions) !== JSON.stringify({ ...conclusions, ...expected.jobs }) || logTrouble.length > 0) {
        // Show the logs of the jobs that went wrong: far quicker to debug than a bare diff.
        for (const [key, log] of Object.entries(logs)) {
          const error = results.get(key)?.error;
          if (conclusions[key] !== expected.jobs[key] || logTrouble.some((p) => p.startsWith(`${key}:`))) console.log(`--- ${key} (${conclusions[key]}, expected ${expected.jobs[key]}${error ? `: ${error}` : ''}):\n${log}`);
        }
      }
      expect(conclusions).toEqual(expected.jobs);
      expect(logTrouble).toEqual([]);
      for (const { job, texts } of summaryChecksOf(text)) for (const t of texts) expect(summaries[job], `${job}'s step summary`).toContain(t);
      expect(runConclusion(results.values())).toBe(expected.run);
    }, 120_000);
  }
});
