/**
 * Forgejo/Gitea end to end: `forgevm serve` with the real worker and real `tiny` VMs, a fake
 * Forgejo (API v1 commit statuses, contents, git over HTTP) and a signed push delivery.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeHandle } from '../src/forge/serve.ts';
import { FakeForgejo, type FakeStatus } from './support/fake-forgejo.ts';
import { postForgejoDelivery, serveWithEngine, waitFor } from './support/forge-e2e.ts';
import { jobFolders, qemuProcessesUnder, vmHarness, type VmHarness } from './support/vm-harness.ts';
import { forgejoPush } from './support/webhooks.ts';

const SECRET = 'e2e-forgejo-secret';
// forgejoPush() is a push to this repository.
const REPO = 'alice/hello';

const CI = `name: CI
on: push
jobs:
  build:
    runs-on: tiny
    steps:
      - name: Build
        run: echo "built $GITHUB_SHA on $GITHUB_SERVER_URL"
  compile:
    runs-on: tiny
    steps:
      - name: Compile main.c
        run: |
          test -f src/main.c
          echo "src/main.c:12:5: error: expected ';' before 'return'"
          exit 3
`;

let h: VmHarness;
let forgejo: FakeForgejo;
let server: ServeHandle;

beforeAll(async () => {
  h = await vmHarness();
  forgejo = new FakeForgejo();
  // A forge that is slow for a moment: "Running" statuses take 5 s to be stored, long enough
  // for a short job to finish first. The outcome must still be the last status of each context.
  const fetchApp = forgejo.app.fetch;
  forgejo.app.fetch = async (request, ...rest) => {
    if (request.method === 'POST' && request.url.includes('/statuses/') && (await request.clone().text()).includes('"Running"')) {
      await new Promise((r) => setTimeout(r, 5_000));
    }
    return fetchApp(request, ...rest);
  };
  await forgejo.start();
  server = await serveWithEngine(
    {
      FORGEJO_URL: forgejo.url,
      FORGEJO_TOKEN: forgejo.token,
      FORGEJO_WEBHOOK_SECRET: SECRET,
      FORGEVM_STATE_DIR: h.stateRoot,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      FORGEVM_MAX_JOBS: '2',
    },
    h.engine,
  );
});

afterAll(async () => {
  await server?.stop();
  await forgejo?.stop();
  if (h) expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
  // `images` in there is a symlink to the shared images: rm removes the link, never its target.
  if (h) await rm(h.stateRoot, { recursive: true, force: true });
});

function history(sha: string, context: string): FakeStatus[] {
  return forgejo.statuses.filter((s) => s.repo === REPO && s.sha === sha && s.context === context);
}

describe('forgevm serve for Forgejo, with real VMs', () => {
  it('turns a signed push into commit statuses: pending, then success for one job and failure for the other', { timeout: 300_000 }, async () => {
    const sha = forgejo.repos.commit(REPO, 'main', { '.forgevm/workflows/ci.yml': CI, 'src/main.c': 'int main(void) { return 0 }\n' }, 'Add CI');
    const payload = forgejoPush(sha);
    (payload.repository as Record<string, unknown>).clone_url = forgejo.cloneUrl(REPO);
    const answer = await postForgejoDelivery(server.url, SECRET, 'push', 'e2e-forgejo-push-1', payload);
    expect(answer.status, answer.body).toBeGreaterThanOrEqual(200);
    expect(answer.status, answer.body).toBeLessThan(300);

    const build = 'forgevm / CI / build';
    const compile = 'forgevm / CI / compile';
    await waitFor(
      'an outcome for both jobs',
      () => [build, compile].every((context) => history(sha, context).some((s) => s.state !== 'pending')),
      200_000,
    );
    // Nothing may land after the outcome: a late "Running" would leave the commit pending for good.
    await new Promise((r) => setTimeout(r, 6_000));
    expect([...forgejo.latest(REPO, sha).values()].map((s) => [s.context, s.state]).sort()).toEqual([
      [build, 'success'],
      [compile, 'failure'],
    ]);
    for (const [context, final] of [
      [build, 'success'],
      [compile, 'failure'],
    ] as const) {
      const states = history(sha, context).map((s) => s.state);
      // Queued, then Running (the VM is up), then the outcome, and nothing after it.
      expect(states, context).toEqual(['pending', 'pending', final]);
      expect(history(sha, context).map((s) => s.description)).toEqual(['Queued', 'Running', expect.any(String)]);
    }
    const failed = history(sha, compile).at(-1)!;
    expect(failed.description).toMatch(/^Failed at step "Compile main\.c" \(exit 3\)/);
    for (const s of forgejo.statuses) expect(s.description.length, s.description).toBeLessThanOrEqual(140);
    expect(forgejo.validationErrors).toEqual([]);
    // Every API and git request carried the token.
    expect(forgejo.requests.filter((r) => !r.authorized && !r.path.includes('/info/refs'))).toEqual([]);
    expect(forgejo.requests.some((r) => r.path.startsWith(`/${REPO}.git/`) && r.authorized)).toBe(true);

    await waitFor('job folders removed', async () => (await jobFolders(h.stateRoot)).length === 0, 30_000);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
    expect((await server.store.getDelivery('e2e-forgejo-push-1'))?.status).toBe('done');
  });
});
