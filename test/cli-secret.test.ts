/** `forgevm secret set | list | remove`, run as the operator runs them: values in on stdin or a hidden prompt, never out. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseForge } from '../src/cli/secret.ts';
import { loadConfig } from '../src/config/config.ts';
import { SecretStore } from '../src/secrets/store.ts';
import { FORGEVM_BIN, forgevm } from './support/forgevm-cli.ts';

const roots: string[] = [];
async function stateRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'fvc-secret-'));
  roots.push(root);
  return root;
}
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

const secret = (root: string, args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}) =>
  forgevm(['secret', ...args], { cwd: root, stateRoot: root, input: options.input ?? '', env: options.env });

const storedSecrets = async (root: string, forge: 'github' | 'forgejo' = 'github', repo = 'acme/app') => {
  const store = new SecretStore({ stateDir: root });
  try {
    return await store.getSecrets(forge, repo);
  } finally {
    store.close();
  }
};

describe('forgevm secret', () => {
  it('sets a secret from piped stdin, lists names and times, removes it, and never prints a value', async () => {
    const root = await stateRoot();
    const value = `piped-${randomBytes(12).toString('hex')}`;
    const first = await secret(root, ['set', 'Acme/App', 'deploy_token'], { input: `${value}\n` });
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toBe('created secret DEPLOY_TOKEN for github:acme/app');
    expect(first.stderr).toBe(`forgevm: generated the secrets key ${join(root, 'secrets.key')}; back it up apart from the state folder: without it no secret can be read`);
    // The trailing newline of `echo VALUE |` is dropped, as gh secret set does.
    expect(await storedSecrets(root)).toEqual({ DEPLOY_TOKEN: value });

    const again = await secret(root, ['set', 'acme/app', 'DEPLOY_TOKEN'], { input: 'second\r\n\n' });
    expect(again.all).toBe('updated secret DEPLOY_TOKEN for github:acme/app');
    expect(await storedSecrets(root)).toEqual({ DEPLOY_TOKEN: 'second' });

    const list = await secret(root, ['list', 'acme/app']);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/^NAME {10}UPDATED\nDEPLOY_TOKEN {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect((await secret(root, ['list'])).stdout).toBe('FORGE   REPOSITORY  SECRETS\ngithub  acme/app    1');

    const removed = await secret(root, ['remove', 'acme/app', 'deploy_token']);
    expect(removed.all).toBe('removed secret DEPLOY_TOKEN from github:acme/app');
    expect((await secret(root, ['list', 'acme/app'])).stdout).toBe('no secrets for github:acme/app');
    for (const run of [first, again, list, removed]) expect(run.all).not.toContain(value);
  });

  it('prompts on a terminal without echoing what is typed', async () => {
    const root = await stateRoot();
    const typed = `typed-${randomBytes(8).toString('hex')}`;
    // `script` gives the command a pseudo-terminal, as an operator's shell would.
    const command = `${process.execPath} ${FORGEVM_BIN} secret set acme/app TYPED`;
    const terminal = execa('script', ['-qfec', command, '/dev/null'], {
      env: { FORGEVM_STATE_DIR: root, PATH: process.env.PATH },
      extendEnv: false,
      all: true,
      reject: false,
      timeout: 60_000,
    });
    let output = '';
    await new Promise<void>((resolve) => {
      terminal.all.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('(input hidden): ')) resolve();
      });
      void terminal.then(() => resolve());
    });
    expect(output).toContain('Value for TYPED (input hidden): ');
    terminal.stdin.write(`${typed}x\x7f\r`); // with a typo erased by backspace
    const done = await terminal;
    terminal.stdin.end();
    expect(done.exitCode).toBe(0);
    expect(done.all).toContain('created secret TYPED for github:acme/app');
    expect(done.all).not.toContain(typed);
    expect(await storedSecrets(root)).toEqual({ TYPED: typed });
  });

  it('says in one line what is wrong, and exits 1', async () => {
    const root = await stateRoot();
    const cases: Array<[string[], string | Buffer, string]> = [
      [['set', 'acme/app', 'GITHUB_TOKEN'], 'v', 'forgevm: secret name "GITHUB_TOKEN" must not start with GITHUB_ (reserved, as on GitHub)'],
      [['set', 'acme/app', '9LIVES'], 'v', 'forgevm: secret name "9LIVES" must not start with a digit'],
      [['set', 'acme', 'TOKEN'], 'v', 'forgevm: repository "acme" is not OWNER/NAME (letters, digits, "-", "_" and "." on each side of one "/")'],
      [['set', 'acme/app', 'TOKEN'], '\n', 'forgevm: the secret value is empty; give a value on standard input'],
      [['set', 'acme/app', 'TOKEN'], 'x'.repeat(48 * 1024 + 1), "forgevm: the secret value is 49153 bytes, over GitHub's limit of 49152 (48 KiB); store a larger file encrypted in the repository and its key as the secret"],
      [['set', 'acme/app', 'TOKEN'], 'x'.repeat(100_000), "forgevm: the secret value on standard input is over GitHub's limit of 49152 bytes (48 KiB); store a larger file encrypted in the repository and its key as the secret"],
      [['set', 'acme/app', 'TOKEN'], Buffer.from([0x70, 0xff, 0xfe]), 'forgevm: the secret value on standard input is not UTF-8 text; store binary data base64-encoded'],
      [['remove', 'acme/app', 'TOKEN'], '', 'forgevm: no secret TOKEN in github:acme/app (forgevm secret list acme/app shows its secrets)'],
      [['set', 'acme/app', 'TOKEN', '--forge', 'gitlab'], 'v', "error: option '--forge <forge>' argument 'gitlab' is invalid. Allowed choices are github, forgejo."],
    ];
    const runs = await Promise.all(cases.map(([args, input]) => secret(root, args, { input })));
    for (const [i, [args, , message]] of cases.entries()) {
      const run = runs[i]!;
      expect(run.exitCode, args.join(' ')).toBe(1);
      expect(run.stderr.split('\n')[0], args.join(' ')).toBe(message);
      expect(run.stdout).toBe('');
    }
  });

  it('refuses a wrong key before touching anything', async () => {
    const root = await stateRoot();
    const key = randomBytes(32).toString('base64');
    expect((await secret(root, ['set', 'acme/app', 'TOKEN'], { input: 'v1', env: { FORGEVM_SECRETS_KEY: key } })).exitCode).toBe(0);
    const wrong = await secret(root, ['set', 'acme/app', 'TOKEN'], { input: 'v2', env: { FORGEVM_SECRETS_KEY: randomBytes(32).toString('hex') } });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stderr).toMatch(/^forgevm: secrets: the key from FORGEVM_SECRETS_KEY \(key [0-9a-f]{16}\) is not the one the stored secrets were sealed with/);
    const noKey = await secret(root, ['set', 'acme/app', 'TOKEN'], { input: 'v3' });
    expect(noKey.stderr).toMatch(/^forgevm: secrets: the key file .*secrets\.key is missing, but .*secrets\.db holds secrets sealed with key/);
    const badKey = await secret(root, ['list', 'acme/app'], { env: { FORGEVM_SECRETS_KEY: 'short' } });
    expect(badKey.stderr).toBe('config: FORGEVM_SECRETS_KEY: must be 32 bytes as 64 hex digits or base64 (make one with: openssl rand -base64 32)');
    const store = new SecretStore({ stateDir: root, key: { key, keyFile: null } });
    expect(await store.getSecrets('github', 'acme/app')).toEqual({ TOKEN: 'v1' });
    store.close();
  });

  it('rotates the key from the command line', async () => {
    const root = await stateRoot();
    expect((await secret(root, ['set', 'acme/app', 'TOKEN'], { input: 'kept' })).exitCode).toBe(0);
    const before = await readFile(join(root, 'secrets.key'), 'utf8');
    const rotate = await secret(root, ['rotate-key']);
    expect(rotate.all).toMatch(new RegExp(`^re-sealed 1 secret with key [0-9a-f]{16} \\(${join(root, 'secrets.key')}\\); the old key no longer opens them$`));
    expect(await readFile(join(root, 'secrets.key'), 'utf8')).not.toBe(before);
    expect(await storedSecrets(root)).toEqual({ TOKEN: 'kept' });
  });

  it('keeps secrets on the forge the repository is on: the configured one, or --forge', async () => {
    const root = await stateRoot();
    const forgejo = { FORGEJO_URL: 'https://forgejo.example.com', FORGEJO_TOKEN: 't', FORGEJO_WEBHOOK_SECRET: 's' };
    expect((await secret(root, ['set', 'acme/app', 'TOKEN'], { input: 'on-forgejo', env: forgejo })).stdout).toBe('created secret TOKEN for forgejo:acme/app');
    expect((await secret(root, ['set', 'acme/app', 'TOKEN', '--forge', 'github'], { input: 'on-github', env: forgejo })).stdout).toBe('created secret TOKEN for github:acme/app');
    expect(await storedSecrets(root, 'forgejo')).toEqual({ TOKEN: 'on-forgejo' });
    expect(await storedSecrets(root, 'github')).toEqual({ TOKEN: 'on-github' });

    const both = loadConfig({ env: { ...forgejo }, cwd: root });
    const github = { appId: 1, privateKey: '', webhookSecret: '', webhookPath: '/webhooks/github', apiUrl: 'https://api.github.com' };
    expect(() => chooseForge({ ...both, github }, {})).toThrow('both GitHub and Forgejo are configured: say which forge the repository is on with --forge github or --forge forgejo');
    expect(chooseForge({ ...both, github }, { forge: 'forgejo' })).toBe('forgejo');
    expect(chooseForge({ ...both, forgejo: null }, {})).toBe('github');
  });

  it('lets forgevm serve read while the CLI writes from other processes', async () => {
    const root = await stateRoot();
    const written = ['v0'];
    expect((await secret(root, ['set', 'acme/app', 'TOKEN'], { input: 'v0' })).exitCode).toBe(0);
    const stop = join(root, 'stop');
    const reader = execa(process.execPath, ['--import', 'tsx', 'test/support/secrets-reader.ts', root, stop], { reject: false });
    // Writers one after another, then three at once.
    for (let i = 1; i <= 3; i++) {
      written.push(`v${i}`);
      expect((await secret(root, ['set', 'acme/app', 'TOKEN'], { input: `v${i}` })).exitCode).toBe(0);
    }
    written.push('v4', 'v5', 'v6');
    const together = await Promise.all(['v4', 'v5', 'v6'].map((v) => secret(root, ['set', 'acme/app', 'TOKEN'], { input: v })));
    for (const run of together) expect(run.exitCode, run.all).toBe(0);
    await writeFile(stop, '');
    const result = await reader;
    expect(result.exitCode, result.stderr).toBe(0);
    const { reads, seen, errors } = JSON.parse(result.stdout) as { reads: number; seen: string[]; errors: string[] };
    expect(errors).toEqual([]);
    expect(reads).toBeGreaterThan(10);
    expect(seen.length).toBeGreaterThan(1);
    for (const value of seen) expect(written).toContain(value);
    expect(['v4', 'v5', 'v6']).toContain((await storedSecrets(root)).TOKEN);
  }, 180_000);
});
