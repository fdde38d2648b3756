import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionFetcher, ActionFetchError, actionTarStream, type FetchedAction, type ForgeGitCredential } from '../src/actions/fetch.ts';
import { readActionManifest } from '../src/actions/manifest.ts';
import { parseActionRef, type RemoteActionRef } from '../src/actions/reference.ts';
import { GithubClients } from '../src/forge/github-client.ts';
import { startActionsHost, type ActionsHost } from './support/actions-host.ts';
import { startFakeGithub, type FakeGithub } from './support/fake-github.ts';
import { git, type GitRepos } from './support/git-http.ts';

const JS_ACTION = `name: Greeter
description: says hello, with a pre and a post stage
inputs:
  who:
    description: whom to greet
    default: \${{ github.actor }}
  token:
    default: \${{ github.token }}
outputs:
  greeting:
    description: what was said
runs:
  using: node20
  pre: dist/setup.js
  main: dist/index.js
  post: dist/cleanup.js
  post-if: failure()
`;

const COMPOSITE_ACTION = `name: Composite
description: two steps
runs:
  using: composite
  steps:
    - run: echo hi
      shell: bash
    - uses: ./sibling
`;

const DOCKER_ACTION = `name: Boxed
description: a container
runs:
  using: docker
  image: Dockerfile
`;

/** Every file below dir, as latin1 text: to prove a secret appears nowhere in it. */
function allText(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const info = statSync(full, { throwIfNoEntry: false });
    if (!info) continue;
    out += info.isDirectory() ? allText(full) : readFileSync(full).toString('latin1');
  }
  return out;
}

function remote(uses: string): RemoteActionRef {
  const parsed = parseActionRef(uses);
  if (!parsed.ok || parsed.ref.kind !== 'remote') throw new Error(`test reference ${uses} did not parse: ${JSON.stringify(parsed)}`);
  return parsed.ref;
}

async function failure(promise: Promise<unknown>): Promise<ActionFetchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ActionFetchError);
  const message = (error as Error).message;
  expect(message.split('\n')).toHaveLength(1);
  return error as ActionFetchError;
}

/** The action repository: JS action at the root, composite and docker actions in sub-folders. */
function makeActionRepo(repos: GitRepos, name: string): { v1: string; v2: string } {
  const v1 = repos.commit(name, 'main', {
    'action.yml': JS_ACTION,
    'dist/index.js': 'console.log("hello")\n',
    'dist/setup.js': 'console.log("pre")\n',
    'dist/cleanup.js': 'console.log("post")\n',
    'composite/action.yml': COMPOSITE_ACTION,
    'composite/sibling/action.yaml': 'name: Sibling\nruns:\n  using: composite\n  steps:\n    - run: echo sibling\n      shell: sh\n',
    'docker/action.yml': DOCKER_ACTION,
    'docker/Dockerfile': 'FROM alpine\n',
    'dockerfile-only/Dockerfile': 'FROM alpine\n',
    'ignored-in-archive/secret.txt': 'not exported\n',
    '.gitattributes': 'ignored-in-archive export-ignore\n',
  });
  const bare = repos.bareDir(name);
  git(['tag', '-a', 'v1', '-m', 'version 1', v1], bare);
  git(['tag', 'v1.0.0', v1], bare);
  const v2 = repos.commit(name, 'releases/v2', { 'dist/index.js': 'console.log("hello v2")\n' }, 'v2', 'main');
  return { v1, v2 };
}

let host: ActionsHost;
let github: FakeGithub;
let clients: GithubClients;
let shas: { v1: string; v2: string };
const cacheRoot = () => mkdtempSync(join(tmpdir(), 'forgevm-actions-cache-'));

beforeAll(async () => {
  host = await startActionsHost();
  github = await startFakeGithub();
  clients = new GithubClients({ appId: github.appId, privateKey: github.privateKey, apiUrl: github.url, throttle: { enabled: false } });
  shas = makeActionRepo(host.repos, 'acme/greeter');
  makeActionRepo(github.repos, 'acme/private-greeter');
});
afterAll(async () => {
  await host.stop();
  await github.stop();
});

describe('fetching an action anonymously from the actions host', () => {
  it('resolves a tag, unpacks the tree at that commit, and the manifest reads from it', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const action = await fetcher.fetch(remote('acme/greeter@v1'));
    expect(action.sha).toBe(shas.v1);
    expect(action.cached).toBe(false);
    expect(action.treeDir).toBe(join(fetcher.cacheRoot, '127.0.0.1_' + new URL(host.url).port, 'acme', 'greeter', shas.v1));
    expect(action.actionDir).toBe(action.treeDir);
    expect(action.repositoryUrl).toBe(`${host.url}/acme/greeter.git`);
    expect(readFileSync(join(action.treeDir, 'dist/index.js'), 'utf8')).toBe('console.log("hello")\n');
    // Same export rules as the tarball GitHub's runner downloads.
    expect(existsSync(join(action.treeDir, 'ignored-in-archive'))).toBe(false);
    // No temporary folder is left next to the tree.
    expect(readdirSync(join(action.treeDir, '..')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(host.requests.every((r) => r.authorization === undefined)).toBe(true);

    const { manifest, problems } = await readActionManifest(action.actionDir, { displayDir: 'acme/greeter@v1', root: action.treeDir });
    expect(problems).toEqual([]);
    expect(manifest?.runs).toEqual({ using: 'node20', main: 'dist/index.js', pre: 'dist/setup.js', preIf: 'always()', post: 'dist/cleanup.js', postIf: 'failure()' });
  });

  it('resolves annotated and lightweight tags, branches (also with a slash), short and full SHAs', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const sha = async (uses: string) => (await fetcher.fetch(remote(uses))).sha;
    expect(await sha('acme/greeter@v1')).toBe(shas.v1);
    expect(await sha('acme/greeter@v1.0.0')).toBe(shas.v1);
    expect(await sha('acme/greeter@main')).toBe(shas.v1);
    expect(await sha('acme/greeter@releases/v2')).toBe(shas.v2);
    expect(await sha(`acme/greeter@${shas.v2}`)).toBe(shas.v2);
    // A short SHA is not a ref name: it is looked up in the history, in a fresh cache too.
    const fresh = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    expect((await fresh.fetch(remote(`acme/greeter@${shas.v2.slice(0, 8)}`))).sha).toBe(shas.v2);
    expect((await fresh.fetch(remote(`acme/greeter@${shas.v1.slice(0, 7)}`))).sha).toBe(shas.v1);
  });

  it('reuses the cache: a full SHA asks the server nothing, a tag only resolves it', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const first = await fetcher.fetch(remote('acme/greeter@v1'));
    const marker = statSync(join(first.treeDir, 'action.yml')).ino;

    let before = host.requests.length;
    const again = await fetcher.fetch(remote('acme/greeter@v1'));
    expect(again.cached).toBe(true);
    expect(host.commands(before, 'ls-refs').length).toBeGreaterThan(0);
    expect(host.commands(before, 'fetch')).toEqual([]);
    expect(statSync(join(again.treeDir, 'action.yml')).ino).toBe(marker);

    before = host.requests.length;
    const bySha = await fetcher.fetch(remote(`acme/greeter@${first.sha}`));
    expect(bySha.cached).toBe(true);
    expect(host.requests.length).toBe(before);
  });

  it('deletes trees no job took within the window, keeps those in use, and fetches a deleted one again', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const old = await fetcher.fetch(remote('acme/greeter@v1'));
    const recent = await fetcher.fetch(remote('acme/greeter@releases/v2'));
    const longAgo = new Date(Date.now() - 40 * 86_400_000);
    utimesSync(old.treeDir, longAgo, longAgo);
    const cutoff = new Date(Date.now() - 30 * 86_400_000);
    expect(await fetcher.prune(cutoff)).toEqual({ trees: 1, repositories: 0 });
    expect(existsSync(old.treeDir)).toBe(false);
    expect(existsSync(join(recent.treeDir, 'dist/index.js'))).toBe(true);
    // A job taking the tree marks it: a prune right after keeps it.
    const again = await fetcher.fetch(remote('acme/greeter@v1'));
    expect(again.cached).toBe(false);
    expect(readFileSync(join(again.treeDir, 'dist/index.js'), 'utf8')).toBe('console.log("hello")\n');
    utimesSync(again.treeDir, longAgo, longAgo);
    const taken = await fetcher.fetch(remote(`acme/greeter@${shas.v1}`));
    expect(taken.cached).toBe(true);
    expect(await fetcher.prune(cutoff)).toEqual({ trees: 0, repositories: 0 });
    // A repository none of whose trees is used goes with its bare cache.
    for (const action of [again, recent]) utimesSync(action.treeDir, longAgo, longAgo);
    expect(await fetcher.prune(cutoff)).toEqual({ trees: 2, repositories: 1 });
    expect(existsSync(join(again.treeDir, '..'))).toBe(false);
    expect((await fetcher.fetch(remote('acme/greeter@v1'))).sha).toBe(shas.v1);
  });

  it('follows a tag that moved to a new commit', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const sha1 = host.repos.commit('acme/moving', 'main', { 'action.yml': JS_ACTION, 'dist/index.js': '1\n' });
    git(['tag', 'v3', sha1], host.repos.bareDir('acme/moving'));
    expect((await fetcher.fetch(remote('acme/moving@v3'))).sha).toBe(sha1);
    const sha2 = host.repos.commit('acme/moving', 'main', { 'dist/index.js': '2\n' });
    git(['tag', '-f', 'v3', sha2], host.repos.bareDir('acme/moving'));
    const moved = await fetcher.fetch(remote('acme/moving@v3'));
    expect(moved.sha).toBe(sha2);
    expect(moved.cached).toBe(false);
    expect(readFileSync(join(moved.treeDir, 'dist/index.js'), 'utf8')).toBe('2\n');
  });

  it('gives the action folder for a sub-path, and refuses a missing one', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const composite = await fetcher.fetch(remote('acme/greeter/composite@v1'));
    expect(composite.actionPath).toBe('composite');
    expect(composite.actionDir).toBe(join(composite.treeDir, 'composite'));
    const error = await failure(fetcher.fetch(remote('acme/greeter/nowhere@v1')));
    expect(error.reason).toBe('path-not-found');
    expect(error.message).toMatch(/^action "acme\/greeter\/nowhere@v1": no folder "nowhere" in acme\/greeter at [0-9a-f]{12} \(check the path in uses:\)$/);
  });

  it('takes a full-URL reference from the host it names', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: 'https://github.invalid' });
    const action = await fetcher.fetch(remote(`${host.url}/acme/greeter/composite@v1`));
    expect(action.sha).toBe(shas.v1);
    expect(action.repositoryUrl).toBe(`${host.url}/acme/greeter.git`);
    const { manifest } = await readActionManifest(action.actionDir, { displayDir: 'composite', root: action.treeDir });
    expect(manifest?.runs.using).toBe('composite');
  });

  it('streams the whole repository tree as tar for the guest', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const action = await fetcher.fetch(remote('acme/greeter/composite@v1'));
    const packed = actionTarStream(action);
    const lister = spawn('tar', ['-t', '-f', '-'], { stdio: ['pipe', 'pipe', 'inherit'] });
    packed.stream.pipe(lister.stdin);
    let listing = '';
    lister.stdout.on('data', (chunk: Buffer) => (listing += chunk.toString()));
    await Promise.all([packed.done, new Promise((resolve) => lister.on('close', resolve))]);
    const names = listing.split('\n');
    expect(names).toContain('./action.yml');
    expect(names).toContain('./composite/action.yml');
    expect(names).toContain('./dist/index.js');
  });
});

describe('fetching through the forge with its token', () => {
  const forge = (): ForgeGitCredential => ({ serverUrl: github.url, username: 'x-access-token', token: () => clients.installationToken(7) });

  it('sends the installation token as the Authorization header, and never in argv or the cache', async () => {
    // A git on PATH that records its arguments, in front of the real one.
    const shim = mkdtempSync(join(tmpdir(), 'git-argv-'));
    const log = join(shim, 'argv.log');
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    writeFileSync(join(shim, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${realGit}' "$@"\n`);
    chmodSync(join(shim, 'git'), 0o755);
    const savedPath = process.env.PATH;
    process.env.PATH = `${shim}:${savedPath}`;
    const tokens: string[] = [];
    const credential: ForgeGitCredential = { ...forge(), token: async () => (tokens.push(await clients.installationToken(7)), tokens.at(-1)!) };
    let action: FetchedAction;
    try {
      const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: github.url });
      const before = github.requests.length;
      action = await fetcher.fetch(remote('acme/private-greeter@v1'), { forge: credential });
      const gitCalls = github.requests.slice(before).filter((r) => r.path.includes('.git/'));
      expect(gitCalls.length).toBeGreaterThan(0);
      expect(gitCalls.every((r) => r.auth === 'token:7')).toBe(true);
      expect(tokens).toHaveLength(1);

      // Cached by SHA: the token is not even asked for.
      await fetcher.fetch(remote(`acme/private-greeter@${action.sha}`), { forge: credential });
      expect(tokens).toHaveLength(1);
    } finally {
      process.env.PATH = savedPath;
    }
    const argv = readFileSync(log, 'utf8');
    expect(argv).toContain('ls-remote');
    expect(argv).toContain('fetch');
    const token = tokens[0]!;
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    expect(argv).not.toContain(token);
    expect(argv).not.toContain(basic);
    const cache = allText(join(action.treeDir, '..'));
    expect(cache).not.toContain(token);
    expect(cache).not.toContain(basic);
  });

  it('never sends the forge token to another host', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    let asked = 0;
    const before = host.requests.length;
    await fetcher.fetch(remote('acme/greeter@v1'), { forge: { ...forge(), token: async () => (asked++, 'ghs_never-sent') } });
    expect(asked).toBe(0);
    expect(host.requests.slice(before).every((r) => r.authorization === undefined)).toBe(true);
    expect(fetcher.source(remote('acme/greeter@v1'), forge()).authenticated).toBe(false);
    expect(fetcher.source(remote(`${github.url}/acme/greeter@v1`), forge()).authenticated).toBe(true);
  });

  it('says the token was refused, without the token', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: github.url });
    const bad = 'ghs_not-a-real-token-but-long-enough-to-spot-in-messages';
    const error = await failure(fetcher.fetch(remote('acme/private-greeter@v1'), { forge: { ...forge(), token: async () => bad } }));
    expect(error.reason).toBe('refused');
    expect(error.message).toMatch(/^action "acme\/private-greeter@v1": 127\.0\.0\.1:\d+ refused forgevm's token for .*acme\/private-greeter \(check/);
    expect(error.message).not.toContain(bad);
  });

  it('reports a private repository fetched without credentials as not found or private', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: github.url });
    const error = await failure(fetcher.fetch(remote('acme/private-greeter@v1')));
    expect(error.reason).toBe('repository-not-found');
    expect(error.message).toContain('not found, or private');
  });
});

describe('fetch failures are one line that names the action, the cause and what to do', () => {
  it('unknown repository, unknown version, unreachable host', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const missing = await failure(fetcher.fetch(remote('acme/nothing-here@v1')));
    expect(missing.reason).toBe('repository-not-found');
    expect(missing.message).toBe(`action "acme/nothing-here@v1": repository ${host.url}/acme/nothing-here not found, or private (check owner/repo in uses:; forgevm fetches it without credentials)`);

    const noRef = await failure(fetcher.fetch(remote('acme/greeter@v9')));
    expect(noRef.reason).toBe('ref-not-found');
    expect(noRef.message).toBe(`action "acme/greeter@v9": no tag, branch or commit "v9" in ${host.url}/acme/greeter (check the version after "@" in uses:)`);

    const noSha = await failure(fetcher.fetch(remote(`acme/greeter@${'0'.repeat(40)}`)));
    expect(noSha.reason).toBe('ref-not-found');
    expect(noSha.message).toContain('commit 000000000000 is not on any branch or tag');

    const down = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: 'http://127.0.0.1:9' });
    const unreachable = await failure(down.fetch(remote('acme/greeter@v1')));
    expect(unreachable.reason).toBe('unreachable');
    expect(unreachable.message).toMatch(/^action "acme\/greeter@v1": cannot reach 127\.0\.0\.1:9 \(.*\) \(check the network and the actions\.url setting\)$/);
  });

  it('gives up on a host that stalls, after the time limit', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url, timeoutMs: 1500 });
    let release!: () => void;
    host.holdFetches = new Promise((resolve) => (release = resolve));
    const started = Date.now();
    let error: ActionFetchError;
    try {
      error = await failure(fetcher.fetch(remote('acme/greeter@v1')));
    } finally {
      host.holdFetches = undefined;
      release();
    }
    expect(error.reason).toBe('unreachable');
    expect(error.message).toMatch(/^action "acme\/greeter@v1": fetching the commit from 127\.0\.0\.1:\d+ took longer than 2 s \(check the network, or try again later\)$/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('refuses a tree over the size limit', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url, maxTreeBytes: 100 });
    const error = await failure(fetcher.fetch(remote('acme/greeter@v1')));
    expect(error.reason).toBe('too-large');
    expect(existsSync(join(fetcher.cacheRoot, '127.0.0.1_' + new URL(host.url).port, 'acme', 'greeter', shas.v1))).toBe(false);
  });
});

describe('hostile references', () => {
  it('are refused before anything is fetched or created', async () => {
    const root = cacheRoot();
    const fetcher = new ActionFetcher({ cacheRoot: root, actionsUrl: host.url });
    const before = host.requests.length;
    const forged: RemoteActionRef[] = [
      { ...remote('acme/greeter@v1'), owner: '..' },
      { ...remote('acme/greeter@v1'), repo: '../../etc' },
      { ...remote('acme/greeter@v1'), ref: '--upload-pack=touch /tmp/pwned' },
      { ...remote('acme/greeter@v1'), path: '../../..' },
      { kind: 'remote', uses: '-x/y@v1', owner: '-x', repo: 'y', path: '', ref: 'v1', isCheckout: false },
    ];
    for (const ref of forged) {
      const error = await failure(fetcher.fetch(ref));
      expect(error.reason).toBe('invalid-reference');
    }
    expect(host.requests.length).toBe(before);
    expect(readdirSync(root)).toEqual([]);
  });

  it('never follows a symlinked action folder out of the repository', async () => {
    // A tree whose `escape` entry is a symlink to /etc, made with git plumbing.
    const bare = host.repos.ensure('acme/escape');
    const run = (args: string[], input?: string) => execFileSync('git', args, { cwd: bare, input, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@a', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@a' } }).trim();
    const link = run(['hash-object', '-w', '--stdin'], '/etc');
    const yml = run(['hash-object', '-w', '--stdin'], JS_ACTION);
    const tree = run(['mktree'], `120000 blob ${link}\tescape\n100644 blob ${yml}\taction.yml\n`);
    const commit = run(['commit-tree', tree, '-m', 'escape']);
    run(['update-ref', 'refs/heads/main', commit]);
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const error = await failure(fetcher.fetch(remote('acme/escape/escape@main')));
    expect(error.reason).toBe('path-not-found');
    expect(error.message).toContain('is a symbolic link out of the repository');
  });
});

describe('interrupted and concurrent fetches', () => {
  it('an interrupted fetch leaves nothing that looks complete, and the next one succeeds', async () => {
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const controller = new AbortController();
    let release!: () => void;
    host.holdFetches = new Promise((resolve) => (release = resolve));
    host.onHeldFetch = () => controller.abort();
    let error: ActionFetchError;
    try {
      error = await failure(fetcher.fetch(remote('acme/greeter@v1'), { signal: controller.signal }));
    } finally {
      host.holdFetches = undefined;
      release();
    }
    expect(error.reason).toBe('cancelled');
    const repoDir = join(fetcher.cacheRoot, '127.0.0.1_' + new URL(host.url).port, 'acme', 'greeter');
    expect(existsSync(join(repoDir, shas.v1))).toBe(false);

    // What a killed process leaves: a half-written temporary tree and a lock, both old.
    const leftover = join(repoDir, `.tmp-${shas.v1}-99999-dead`);
    mkdirSync(join(leftover, 'dist'), { recursive: true });
    writeFileSync(join(leftover, 'dist/index.js'), 'console.log("hal');
    writeFileSync(join(repoDir, 'repo.git', 'shallow.lock'), '');
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    utimesSync(leftover, old, old);
    utimesSync(join(repoDir, 'repo.git', 'shallow.lock'), old, old);

    const action = await fetcher.fetch(remote('acme/greeter@v1'));
    expect(action.cached).toBe(false);
    expect(readFileSync(join(action.treeDir, 'dist/index.js'), 'utf8')).toBe('console.log("hello")\n');
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(join(repoDir, 'repo.git', 'shallow.lock'))).toBe(false);
  });

  it('a tree whose unpacking breaks off half way is thrown away, never renamed into place', async () => {
    // A tar that writes what it got, then fails as on a truncated archive.
    const shim = mkdtempSync(join(tmpdir(), 'tar-breaks-'));
    const realTar = execFileSync('sh', ['-c', 'command -v tar'], { encoding: 'utf8' }).trim();
    writeFileSync(join(shim, 'tar'), `#!/bin/sh\n'${realTar}' "$@"\necho 'tar: Unexpected EOF in archive' >&2\nexit 2\n`);
    chmodSync(join(shim, 'tar'), 0o755);
    const fetcher = new ActionFetcher({ cacheRoot: cacheRoot(), actionsUrl: host.url });
    const savedPath = process.env.PATH;
    process.env.PATH = `${shim}:${savedPath}`;
    let error: ActionFetchError;
    try {
      error = await failure(fetcher.fetch(remote('acme/greeter@v1')));
    } finally {
      process.env.PATH = savedPath;
    }
    expect(error.reason).toBe('failed');
    expect(error.message).toMatch(/^action "acme\/greeter@v1": unpacking [0-9a-f]{12} failed: .*Unexpected EOF in archive/);
    const repoDir = join(fetcher.cacheRoot, '127.0.0.1_' + new URL(host.url).port, 'acme', 'greeter');
    expect(readdirSync(repoDir)).toEqual(['repo.git']);
    expect((await fetcher.fetch(remote('acme/greeter@v1'))).cached).toBe(false);
  });

  it('fetchers sharing one cache (as several processes would) all get the one complete tree', async () => {
    const root = cacheRoot();
    // Different paths to the same folder, so the in-process lock does not serialise them.
    const aliases = [root, ...[1, 2].map(() => {
      const alias = join(mkdtempSync(join(tmpdir(), 'forgevm-alias-')), 'cache');
      symlinkSync(root, alias);
      return alias;
    })];
    const fetchers = aliases.map((cache) => new ActionFetcher({ cacheRoot: cache, actionsUrl: host.url }));
    const results = await Promise.all(fetchers.flatMap((f) => [f.fetch(remote('acme/greeter@v1')), f.fetch(remote(`acme/greeter@${shas.v2}`))]));
    expect(results.map((r) => r.sha)).toEqual([shas.v1, shas.v2, shas.v1, shas.v2, shas.v1, shas.v2]);
    const repoDir = join(root, '127.0.0.1_' + new URL(host.url).port, 'acme', 'greeter');
    expect(readdirSync(repoDir).sort()).toEqual([shas.v1, shas.v2, 'repo.git'].sort());
    expect(readFileSync(join(repoDir, shas.v1, 'dist/index.js'), 'utf8')).toBe('console.log("hello")\n');
  });
});
