/**
 * The GitHub App end to end: `forgevm serve` with the real worker and real `tiny` VMs, a fake
 * GitHub that checks every request body against GitHub's OpenAPI description, and signed
 * deliveries built from GitHub's own example payloads.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../src/forge/serve.ts';
import { startFakeGithub, type FakeCheckRun, type FakeGithub } from './support/fake-github.ts';
import { postGithubDelivery, serveWithEngine, waitFor } from './support/forge-e2e.ts';
import { jobFolders, qemuProcessesUnder, vmHarness, type VmHarness } from './support/vm-harness.ts';
import { githubExample, withAction } from './support/webhooks.ts';
import { SecretStore } from '../src/secrets/store.ts';

const SECRET = 'e2e-webhook-secret';
// The example payloads are about this repository: the fake hosts it under the same name.
const REPO = 'Codertocat/Hello-World';

const CI = `name: CI
on: push
jobs:
  build:
    runs-on: tiny
    steps:
      - name: Build
        run: echo "built $GITHUB_SHA"
  compile:
    runs-on: tiny
    steps:
      - name: Compile main.c
        run: |
          test -f src/main.c
          echo "src/main.c:12:5: error: expected ';' before 'return'"
          exit 3
`;

// Twelve lines, so the annotation points at a line that exists.
const MAIN_C = ['#include <stdio.h>', '', 'int main(void)', '{', '  int x = 1;', '  /* ... */', '', '', '', '', '  printf("%d\\n", x)', '    return 0;', '}', ''].join('\n');

// A workflow that uses an action hosted on the (fake) GitHub and a repository secret.
const ACTIONS_CI = `name: Actions
on: push
jobs:
  greet:
    runs-on: tiny
    steps:
      - uses: octo-actions/greet@v1
        id: greet
        with:
          who: \${{ github.actor }}
          token: \${{ secrets.DEPLOY_TOKEN }}
      - name: Use its output
        run: test "\${{ steps.greet.outputs.greeting }}" = "hello \${{ github.actor }}"
`;
const GREET_ACTION = `name: Greet
inputs:
  who: { required: true }
  token: { required: false }
outputs:
  greeting: { description: the greeting }
runs:
  using: node24
  main: index.js
  post: post.js
`;
const GREET_MAIN = [
  "const fs = require('fs');",
  "console.log('token is ' + process.env.INPUT_TOKEN);",
  "console.log('::warning file=src/main.c,line=3::greeting ' + process.env.INPUT_WHO);",
  "fs.appendFileSync(process.env.GITHUB_OUTPUT, 'greeting=hello ' + process.env.INPUT_WHO + '\\n');",
].join('\n');
const SECRET_VALUE = 'tok-e2e-0123456789';

const PR_CI = `name: PR
on: pull_request
jobs:
  check:
    runs-on: tiny
    steps:
      - name: Check
        run: echo "checked the fork's change"
`;

const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
let h: VmHarness;
let github: FakeGithub;
let server: ServeHandle;
/** Job folders seen by the sampler, ever. */
const foldersSeen = new Set<string>();
let sampler: NodeJS.Timeout | undefined;

function installationOf(payload: Record<string, unknown>): number {
  return (payload.installation as { id: number }).id;
}

/** GitHub's example push to a new branch, moved to our commit and our fake's clone URL. */
function pushPayload(sha: string): Record<string, unknown> {
  const p = githubExample('push', (e) => e.ref === 'refs/heads/master' && !!e.installation && Array.isArray(e.commits) && e.commits.length > 0);
  const example = p.after as string;
  (p.repository as Record<string, unknown>).clone_url = github.cloneUrl(REPO);
  p.after = sha;
  (p.head_commit as Record<string, unknown>).id = sha;
  for (const c of p.commits as Record<string, unknown>[]) if (c.id === example) c.id = sha;
  return p;
}

function byName(runs: FakeCheckRun[], name: string): FakeCheckRun {
  const run = runs.find((r) => r.name === name);
  if (!run) throw new Error(`no check run named ${name}; have ${runs.map((r) => r.name).join(', ')}`);
  return run;
}

/** For failure messages: what the check run says, and the job's log on the host. */
async function explain(run: FakeCheckRun): Promise<string> {
  const logsDir = join(h.stateRoot, 'logs');
  const names = (await readdir(logsDir).catch(() => [] as string[])).filter((n) => run.external_id && n.includes(run.external_id));
  const logs = await Promise.all(names.map(async (n) => `--- ${n}\n${await readFile(join(logsDir, n), 'utf8').catch((e: Error) => e.message)}`));
  return `${JSON.stringify(run.output)}\n${logs.join('\n')}`;
}

beforeAll(async () => {
  h = await vmHarness();
  github = await startFakeGithub();
  server = await serveWithEngine(
    {
      APP_ID: String(github.appId),
      PRIVATE_KEY: github.privateKey,
      WEBHOOK_SECRET: SECRET,
      GITHUB_API_URL: github.url,
      FORGEVM_STATE_DIR: h.stateRoot,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      FORGEVM_MAX_JOBS: '2',
      // Actions come from the fake GitHub itself, so they are fetched with the installation token.
      FORGEVM_ACTIONS_URL: github.url,
      FORGEVM_SECRETS_KEY: SECRETS_KEY,
    },
    h.engine,
  );
  // Job folders only exist while a VM runs; sample often so a short-lived one is not missed.
  sampler = setInterval(() => {
    void jobFolders(h.stateRoot).then((names) => names.forEach((n) => foldersSeen.add(n)));
  }, 100);
});

afterAll(async () => {
  if (sampler) clearInterval(sampler);
  await server?.stop();
  await github?.stop();
  if (h) expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
  // `images` in there is a symlink to the shared images: rm removes the link, never its target.
  if (h) await rm(h.stateRoot, { recursive: true, force: true });
});

describe('forgevm serve as a GitHub App, with real VMs', () => {
  it('turns a signed push into two check runs: one passes, one fails with the error line annotated', async () => {
    const sha = github.repos.commit(REPO, 'master', { '.forgevm/workflows/ci.yml': CI, 'src/main.c': MAIN_C }, 'Add CI');
    const payload = pushPayload(sha);
    const answer = await postGithubDelivery(server.url, SECRET, 'push', 'e2e-push-1', payload);
    expect(answer.status, answer.body).toBeGreaterThanOrEqual(200);
    expect(answer.status, answer.body).toBeLessThan(300);

    const runs = await waitFor(
      'two completed check runs',
      () => {
        const all = github.runsFor(REPO).filter((r) => r.head_sha === sha);
        return all.length === 2 && all.every((r) => r.status === 'completed') ? all : undefined;
      },
      240_000,
    );
    const build = byName(runs, 'CI / build');
    const compile = byName(runs, 'CI / compile');
    expect(build.conclusion, await explain(build)).toBe('success');
    expect(compile.conclusion).toBe('failure');
    expect(compile.output.title).toMatch(/^Failed at step "Compile main\.c" \(exit 3\)/);
    expect(compile.output.text).toContain("src/main.c:12:5: error: expected ';' before 'return'");
    expect(compile.annotations).toContainEqual(expect.objectContaining({ path: 'src/main.c', start_line: 12, annotation_level: 'failure' }));
    for (const run of runs) {
      expect(run.external_id).toBeTruthy();
      expect(run.history.some((b) => b.status === 'in_progress' && typeof b.started_at === 'string'), `${run.name} was marked in_progress`).toBe(true);
    }
    // The app authenticated as the installation from the payload, and fetched the commit over git.
    expect(github.tokensIssued).toContain(installationOf(payload));
    expect(github.requests.some((r) => r.path.startsWith(`/${REPO}.git/`) && r.auth === `token:${installationOf(payload)}`)).toBe(true);
    expect(github.validationErrors).toEqual([]);

    // Both VMs are gone, and so are their job folders; the store has both results.
    await waitFor('job folders removed', async () => (await jobFolders(h.stateRoot)).length === 0, 30_000);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
    expect(foldersSeen.size).toBe(2);
    const delivery = await server.store.getDelivery('e2e-push-1');
    expect(delivery?.status).toBe('done');
  });

  it('runs an action fetched from GitHub with the installation token, with a repository secret masked everywhere', async () => {
    const actionSha = github.repos.commit('octo-actions/greet', 'main', { 'action.yml': GREET_ACTION, 'index.js': GREET_MAIN, 'post.js': "console.log('post ran');\n" });
    github.repos.tag('octo-actions/greet', 'v1', actionSha);
    const secrets = new SecretStore({ stateDir: h.stateRoot, key: { key: SECRETS_KEY, keyFile: null } });
    await secrets.set('github', REPO, 'DEPLOY_TOKEN', SECRET_VALUE);
    secrets.close();
    const sha = github.repos.commit(REPO, 'master', { '.forgevm/workflows/actions.yml': ACTIONS_CI }, 'Use an action');
    const payload = pushPayload(sha);
    const answer = await postGithubDelivery(server.url, SECRET, 'push', 'e2e-actions-1', payload);
    expect(answer.status, answer.body).toBeLessThan(300);
    const run = await waitFor('the action job to complete', () => {
      const found = github.runsFor(REPO).find((r) => r.head_sha === sha && r.name === 'Actions / greet');
      return found?.status === 'completed' ? found : undefined;
    }, 240_000);
    const explained = await explain(run);
    expect(run.conclusion, explained).toBe('success');
    // Fetched over git from the fake GitHub, with this installation's token.
    expect(github.requests.some((r) => r.path.startsWith('/octo-actions/greet.git/') && r.auth === `token:${installationOf(payload)}`)).toBe(true);
    // The ::warning became an annotation; the secret reached the action and is masked in the log.
    expect(run.annotations).toContainEqual(expect.objectContaining({ path: 'src/main.c', start_line: 3, annotation_level: 'warning' }));
    expect(explained).toContain('token is ***');
    expect(explained).toContain('post ran');
    expect(explained).not.toContain(SECRET_VALUE);
    expect(JSON.stringify(github.runsFor(REPO))).not.toContain(SECRET_VALUE);
    expect(github.validationErrors).toEqual([]);
    await waitFor('the VM gone', async () => (await jobFolders(h.stateRoot)).length === 0 && (await qemuProcessesUnder(h.stateRoot)).length === 0, 30_000);
  });

  it('holds a fork pull request from an outsider without a VM until a writer approves it', async () => {
    const foldersBefore = new Set(foldersSeen);
    const vmsBefore = (await server.store.listVms()).length;
    const head = github.repos.commit(REPO, 'fork-change', { '.forgevm/workflows/pr.yml': PR_CI }, 'Change from a fork', 'master');
    const pr = githubExample('pull_request', (e) => withAction('opened')(e) && !!e.installation);
    const number = pr.number as number;
    const pull = pr.pull_request as Record<string, Record<string, unknown>>;
    (pr.repository as Record<string, unknown>).clone_url = github.cloneUrl(REPO);
    pull.head!.sha = head;
    pull.head!.repo = { ...(pull.head!.repo as Record<string, unknown>), full_name: 'mallory/Hello-World', name: 'Hello-World', clone_url: 'https://github.test/mallory/Hello-World.git', fork: true };
    pull.base!.sha = github.repos.resolve(REPO, 'master')!;
    (pull as Record<string, unknown>).author_association = 'NONE';
    (pull as Record<string, unknown>).user = { ...(pull.user as Record<string, unknown>), login: 'mallory' };
    github.setPull(REPO, number, 'master', head);

    const answer = await postGithubDelivery(server.url, SECRET, 'pull_request', 'e2e-pr-1', pr);
    expect(answer.status, answer.body).toBeLessThan(300);
    const gated = await waitFor('the held check run', () => {
      const runs = github.runsFor(REPO).filter((r) => r.head_sha === head);
      return runs.length === 1 && runs[0]!.status === 'completed' ? runs[0] : undefined;
    });
    expect(gated.name).toBe('PR / check');
    expect(gated.conclusion).toBe('action_required');
    expect(gated.actions).toEqual([expect.objectContaining({ identifier: 'approve' })]);
    // Give a (wrong) VM start time to show itself before concluding none happened.
    await new Promise((r) => setTimeout(r, 2_000));
    expect([...foldersSeen].filter((f) => !foldersBefore.has(f))).toEqual([]);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
    expect((await server.store.listVms()).length).toBe(vmsBefore);
    expect((await server.store.getDelivery('e2e-pr-1'))?.status).toBe('done');

    // "Approve and run" clicks: GitHub's requested_action example, pointed at our held run.
    const click = (login: string): Record<string, unknown> => {
      const payload = githubExample('check_run', withAction('requested_action'));
      const checkRun = payload.check_run as Record<string, unknown>;
      checkRun.id = gated.id;
      checkRun.external_id = gated.external_id;
      checkRun.head_sha = head;
      checkRun.app = { ...(checkRun.app as Record<string, unknown>), id: github.appId };
      payload.requested_action = { identifier: 'approve' };
      payload.sender = { ...(payload.sender as Record<string, unknown>), login };
      payload.installation = { ...(payload.installation as Record<string, unknown>), id: installationOf(pr) };
      (payload.repository as Record<string, unknown>).clone_url = github.cloneUrl(REPO);
      return payload;
    };
    // The fork's author clicking it changes nothing: they lack write access.
    github.setPermission(REPO, 'mallory', 'read');
    expect((await postGithubDelivery(server.url, SECRET, 'check_run', 'e2e-approve-0', click('mallory'))).status).toBeLessThan(300);
    const refused = await waitFor('the outsider click handled', async () => {
      const d = await server.store.getDelivery('e2e-approve-0');
      return d && d.status !== 'pending' && d.status !== 'processing' ? d : undefined;
    });
    expect(refused.error).toMatch(/mallory has no write access/);
    expect(github.runsFor(REPO).filter((r) => r.head_sha === head)).toHaveLength(1);

    // A maintainer with write access approves.
    github.setPermission(REPO, 'maintainer', 'write');
    const approved = await postGithubDelivery(server.url, SECRET, 'check_run', 'e2e-approve-1', click('maintainer'));
    expect(approved.status, approved.body).toBeLessThan(300);

    const ran = await waitFor(
      'the approved run to complete',
      () => {
        const runs = github.runsFor(REPO).filter((r) => r.head_sha === head && r.id !== gated.id);
        return runs.length === 1 && runs[0]!.status === 'completed' ? runs[0] : undefined;
      },
      180_000,
    );
    expect(ran.name).toBe('PR / check');
    expect(ran.conclusion, await explain(ran)).toBe('success');
    expect(ran.history.some((b) => b.status === 'in_progress')).toBe(true);
    expect([...foldersSeen].filter((f) => !foldersBefore.has(f))).toHaveLength(1);
    expect(github.validationErrors).toEqual([]);
    await waitFor('the job folder removed', async () => (await readdir(join(h.stateRoot, 'jobs'))).length === 0, 30_000);
  });
});
