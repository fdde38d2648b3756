import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchSource } from '../src/forge/fetch-source.ts';
import { GithubClients } from '../src/forge/github-client.ts';
import { prepareWorkspace } from '../src/job/workspace.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { git } from './support/git-http.ts';

let github: FakeGithub;
let clients: GithubClients;
const cacheRoot = mkdtempSync(join(tmpdir(), 'forgevm-repo-cache-'));

beforeAll(async () => {
  github = await startFakeGithub();
  clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false } });
});
afterAll(() => github.stop());

/** Every file under dir, concatenated: to prove a secret appears nowhere in it. */
function allText(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    out += statSync(full).isDirectory() ? allText(full) : readFileSync(full).toString('latin1');
  }
  return out;
}

describe('fetching the commit to build', () => {
  it('fetches with the installation token into a bare cache, then reuses it', async () => {
    const sha1 = github.repos.commit('acme/app', 'main', { 'README.md': 'hello\n', 'src/a.txt': 'a\n' });
    const tokens: string[] = [];
    const token = async () => {
      const t = await clients.installationToken(11);
      tokens.push(t);
      return t;
    };
    const request = { cacheRoot, forge: 'github' as const, repo: 'acme/app', cloneUrl: github.cloneUrl('acme/app'), token, branch: 'refs/heads/main' };
    const source = await fetchSource({ ...request, sha: sha1 });
    expect(source.sha).toBe(sha1);
    expect(git(['rev-parse', '--is-bare-repository'], source.repoDir)).toBe('true');
    const gitCalls = github.requests.filter((r) => r.path.includes('.git/'));
    expect(gitCalls.length).toBeGreaterThan(0);
    expect(gitCalls.every((r) => r.auth === 'token:11')).toBe(true);

    // Same commit again: nothing to fetch, the token is not even asked for.
    const before = github.requests.length;
    await fetchSource({ ...request, sha: sha1 });
    expect(github.requests.length).toBe(before);
    expect(tokens).toHaveLength(1);

    // A new commit: fetched into the same cache.
    const sha2 = github.repos.commit('acme/app', 'main', { 'src/b.txt': 'b\n' });
    const again = await fetchSource({ ...request, sha: sha2 });
    expect(again.repoDir).toBe(source.repoDir);

    // The working copy the engine makes from the cache has the files, a .git, and no secret anywhere.
    const work = mkdtempSync(join(tmpdir(), 'forgevm-workspace-'));
    await prepareWorkspace(again, work);
    expect(readFileSync(join(work, 'src/b.txt'), 'utf8')).toBe('b\n');
    expect(git(['rev-parse', 'HEAD'], work)).toBe(sha2);
    for (const t of tokens) {
      expect(allText(join(work, '.git'))).not.toContain(t);
      expect(allText(source.repoDir)).not.toContain(t);
      expect(allText(source.repoDir)).not.toContain(Buffer.from(`x-access-token:${t}`).toString('base64'));
    }
    expect(readFileSync(join(source.repoDir, 'config'), 'utf8')).not.toMatch(/extraheader|url =/i);
  });

  it('fails with one line, without the token, when the token is refused', async () => {
    const sha = github.repos.commit('acme/private', 'main', { 'x.txt': 'x\n' });
    const bad = 'ghs_not-a-real-token-but-long-enough-to-spot-in-messages';
    const error = await fetchSource({ cacheRoot, forge: 'github', repo: 'acme/private', cloneUrl: github.cloneUrl('acme/private'), sha, token: async () => bad }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^git fetch of [0-9a-f]{12} from .* failed: /);
    expect(error?.message).not.toContain(bad);
    expect(error?.message.split('\n')).toHaveLength(1);
  });

  it('refuses clone URLs with credentials and odd repository names', async () => {
    const sha = 'a'.repeat(40);
    await expect(fetchSource({ cacheRoot, forge: 'github', repo: 'acme/app', cloneUrl: 'https://u:p@example.test/acme/app.git', sha, token: async () => 't' })).rejects.toThrow(/carries credentials/);
    await expect(fetchSource({ cacheRoot, forge: 'github', repo: '../etc', cloneUrl: 'https://example.test/x.git', sha, token: async () => 't' })).rejects.toThrow(/refusing to cache/);
  });
});
