/** Repository secrets: kept encrypted at rest, readable only with their key, only where they were set. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import type { PullRequestEvent, PushEvent } from '../src/forge/event-types.ts';
import { MAX_SECRET_BYTES, repositoryKey, secretName } from '../src/secrets/names.ts';
import { runGetsSecrets, secretsForRun } from '../src/secrets/run-secrets.ts';
import { SecretStore } from '../src/secrets/store.ts';

const dirs: string[] = [];
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'forgevm-secrets-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const hexKey = () => randomBytes(32).toString('hex');
const withKey = (dir: string, key: string) => new SecretStore({ stateDir: dir, key: { key, keyFile: null } });
/** Runs a raw SQL statement on the store's database, as someone with the file would. */
function tamper(dir: string, sql: string, ...params: unknown[]): void {
  const db = new Database(join(dir, 'secrets.db'));
  db.prepare(sql).run(...params);
  db.close();
}

describe('secret store', () => {
  it('keeps secrets per forge and repository; names are case-insensitive and stored upper-case', async () => {
    const store = new SecretStore({ stateDir: stateDir() });
    expect(await store.set('github', 'Acme/App', 'deploy_token', 'gh-value')).toMatchObject({ name: 'DEPLOY_TOKEN', created: true });
    expect(await store.set('github', 'acme/app', 'DEPLOY_TOKEN', 'gh-value-2')).toMatchObject({ name: 'DEPLOY_TOKEN', created: false, keyCreated: null });
    await store.set('github', 'acme/app', 'Npm_Token', 'npm-value');
    await store.set('forgejo', 'acme/app', 'DEPLOY_TOKEN', 'forgejo-value');
    await store.set('github', 'acme/other', 'DEPLOY_TOKEN', 'other-value');

    expect(await store.getSecrets('github', 'ACME/APP')).toEqual({ DEPLOY_TOKEN: 'gh-value-2', NPM_TOKEN: 'npm-value' });
    expect(await store.getSecrets('forgejo', 'acme/app')).toEqual({ DEPLOY_TOKEN: 'forgejo-value' });
    expect(await store.getSecrets('github', 'acme/none')).toEqual({});
    expect((await store.list('github', 'acme/app')).map((s) => s.name)).toEqual(['DEPLOY_TOKEN', 'NPM_TOKEN']);
    expect((await store.list('github', 'acme/app'))[0]).toEqual({ name: 'DEPLOY_TOKEN', createdAt: expect.any(String), updatedAt: expect.any(String) });
    expect(await store.repositories()).toEqual([
      { forge: 'forgejo', repo: 'acme/app', count: 1 },
      { forge: 'github', repo: 'acme/app', count: 2 },
      { forge: 'github', repo: 'acme/other', count: 1 },
    ]);

    expect(await store.remove('github', 'acme/app', 'npm_token')).toBe(true);
    expect(await store.remove('github', 'acme/app', 'npm_token')).toBe(false);
    expect(await store.getSecrets('github', 'acme/app')).toEqual({ DEPLOY_TOKEN: 'gh-value-2' });
    store.close();
  });

  it('keeps values encrypted at rest: no file holds a value, its base64 or its hex; files are private', async () => {
    const dir = stateDir();
    const store = new SecretStore({ stateDir: dir });
    const value = `plain-${randomBytes(24).toString('hex')}`;
    const first = await store.set('github', 'acme/app', 'TOKEN', value);
    expect(first.keyCreated).toBe(join(dir, 'secrets.key'));
    await store.set('github', 'acme/app', 'TOKEN_AGAIN', value);
    const files = readdirSync(dir);
    expect(files).toEqual(expect.arrayContaining(['secrets.db', 'secrets.key']));
    for (const file of files) {
      const bytes = readFileSync(join(dir, file));
      for (const form of [value, Buffer.from(value).toString('base64').slice(0, 40), Buffer.from(value).toString('hex')]) {
        expect(bytes.includes(form), `${file} contains ${form}`).toBe(false);
      }
      expect(statSync(join(dir, file)).mode & 0o077, `${file} is private`).toBe(0);
    }
    // A fresh nonce per value: the same value twice is stored as two different ciphertexts.
    const db = new Database(join(dir, 'secrets.db'), { readonly: true });
    const sealed = db.prepare('SELECT sealed FROM secrets ORDER BY name').all() as Array<{ sealed: Buffer }>;
    db.close();
    expect(sealed[0]!.sealed.equals(sealed[1]!.sealed)).toBe(false);
    expect(await store.getSecrets('github', 'acme/app')).toEqual({ TOKEN: value, TOKEN_AGAIN: value });
    store.close();
  });

  it('never makes a key just to read, list or remove', async () => {
    const dir = stateDir();
    const store = new SecretStore({ stateDir: dir });
    expect(await store.getSecrets('github', 'acme/app')).toEqual({});
    expect(await store.list('github', 'acme/app')).toEqual([]);
    expect(await store.remove('github', 'acme/app', 'X')).toBe(false);
    expect(readdirSync(dir)).not.toContain('secrets.key');
    store.close();
  });

  it('refuses a value whose ciphertext was altered', async () => {
    const dir = stateDir();
    const store = new SecretStore({ stateDir: dir });
    await store.set('github', 'acme/app', 'TOKEN', 'the-real-value');
    const db = new Database(join(dir, 'secrets.db'));
    const { sealed } = db.prepare('SELECT sealed FROM secrets').get() as { sealed: Buffer };
    sealed[sealed.length - 20]! ^= 1;
    db.prepare('UPDATE secrets SET sealed = ?').run(sealed);
    db.close();
    await expect(store.getSecrets('github', 'acme/app')).rejects.toThrow(
      'secrets: TOKEN of github:acme/app does not decrypt: it was altered, or copied from another repository or name; set it again with: forgevm secret set acme/app TOKEN',
    );
    store.close();
  });

  it('refuses a value moved to another repository, name or forge', async () => {
    const dir = stateDir();
    const store = new SecretStore({ stateDir: dir });
    await store.set('github', 'acme/app', 'TOKEN', 'for-acme-app-only');
    const moves: Array<[string, 'github' | 'forgejo', string]> = [
      [`UPDATE secrets SET repo = 'evil/fork'`, 'github', 'evil/fork'],
      [`UPDATE secrets SET name = 'OTHER'`, 'github', 'evil/fork'],
      [`UPDATE secrets SET forge = 'forgejo'`, 'forgejo', 'evil/fork'],
    ];
    for (const [sql, forge, repo] of moves) {
      tamper(dir, sql);
      await expect(store.getSecrets(forge, repo), sql).rejects.toThrow(/does not decrypt: it was altered, or copied from another repository or name/);
    }
    store.close();
  });

  it('says clearly when the key is wrong or missing, and accepts a new key once no secret needs the old one', async () => {
    const dir = stateDir();
    const right = hexKey();
    const first = withKey(dir, right);
    expect((await first.set('github', 'acme/app', 'TOKEN', 'v1')).keyCreated).toBeNull();
    first.close();

    const wrong = withKey(dir, hexKey());
    const message = /^secrets: the key from FORGEVM_SECRETS_KEY \(key [0-9a-f]{16}\) is not the one the stored secrets were sealed with \(key [0-9a-f]{16}\); use that key again, or remove the secrets and set them again$/;
    await expect(wrong.getSecrets('github', 'acme/app')).rejects.toThrow(message);
    await expect(wrong.set('github', 'acme/other', 'TOKEN', 'v2')).rejects.toThrow(message);
    expect(await wrong.getSecrets('github', 'acme/other')).toEqual({});

    const none = new SecretStore({ stateDir: dir });
    await expect(none.getSecrets('github', 'acme/app')).rejects.toThrow(
      new RegExp(`^secrets: the key file ${join(dir, 'secrets.key')} is missing, but ${join(dir, 'secrets.db')} holds secrets sealed with key [0-9a-f]{16}; restore the key file`),
    );
    await expect(none.set('github', 'acme/app', 'OTHER', 'v')).rejects.toThrow(/is missing/);
    expect(readdirSync(dir)).not.toContain('secrets.key');
    none.close();

    expect(await wrong.remove('github', 'acme/app', 'TOKEN')).toBe(true);
    await wrong.set('github', 'acme/app', 'TOKEN', 'v3');
    expect(await wrong.getSecrets('github', 'acme/app')).toEqual({ TOKEN: 'v3' });
    wrong.close();
  });

  it('reads the key from a key file of the operator, which must be private', async () => {
    const dir = stateDir();
    const keyFile = join(stateDir(), 'forgevm.key');
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const store = new SecretStore({ stateDir: dir, key: { key: null, keyFile } });
    expect((await store.set('github', 'acme/app', 'TOKEN', 'v')).keyCreated).toBeNull();
    expect(readdirSync(dir)).not.toContain('secrets.key');
    writeFileSync(keyFile, 'not a key\n');
    await expect(store.getSecrets('github', 'acme/app')).rejects.toThrow(`secrets: ${keyFile} does not hold a key: it needs 32 bytes as 64 hex digits or base64 (make one with: openssl rand -base64 32)`);
    const missing = new SecretStore({ stateDir: dir, key: { key: null, keyFile: `${keyFile}.gone` } });
    await expect(missing.set('github', 'acme/app', 'TOKEN', 'v')).rejects.toThrow(`secrets: cannot read the key file ${keyFile}.gone (ENOENT)`);
    const loose = join(stateDir(), 'loose.key');
    writeFileSync(loose, hexKey(), { mode: 0o644 });
    const open = new SecretStore({ stateDir: stateDir(), key: { key: null, keyFile: loose } });
    await expect(open.set('github', 'acme/app', 'TOKEN', 'v')).rejects.toThrow(`secrets: the key file ${loose} is readable by other users (mode 644); run: chmod 600 ${loose}`);
    for (const s of [store, missing, open]) s.close();
  });

  it('rotates the key: every secret re-sealed, the old key refused, an interrupted rotation finished later', async () => {
    const dir = stateDir();
    const keyFile = join(dir, 'secrets.key');
    const store = new SecretStore({ stateDir: dir });
    await store.set('github', 'acme/app', 'A', 'value-a');
    await store.set('forgejo', 'acme/b', 'B', 'value-b');
    const oldKey = readFileSync(keyFile, 'utf8');
    const rotated = await store.rotateKey();
    expect(rotated.count).toBe(2);
    expect(rotated.key.source).toBe(keyFile);
    const newKey = readFileSync(keyFile, 'utf8');
    expect(newKey).not.toBe(oldKey);
    expect(statSync(keyFile).mode & 0o077).toBe(0);
    expect(readdirSync(dir)).not.toContain('secrets.key.next');
    expect(await store.getSecrets('github', 'acme/app')).toEqual({ A: 'value-a' });
    expect(await store.getSecrets('forgejo', 'acme/b')).toEqual({ B: 'value-b' });
    await expect(withKey(dir, oldKey).getSecrets('github', 'acme/app')).rejects.toThrow(/is not the one the stored secrets were sealed with/);

    // Stopped after the commit, before the rename: the old key in place, the new one beside it.
    writeFileSync(join(dir, 'secrets.key.next'), newKey, { mode: 0o600 });
    writeFileSync(keyFile, oldKey);
    const later = new SecretStore({ stateDir: dir });
    expect(await later.getSecrets('github', 'acme/app')).toEqual({ A: 'value-a' });
    expect(readFileSync(keyFile, 'utf8')).toBe(newKey);
    expect(readdirSync(dir)).not.toContain('secrets.key.next');
    later.close();
    store.close();
  });

  it("rotates the operator's own key only to a key file the operator gives", async () => {
    const dir = stateDir();
    const keys = stateDir();
    const [oldFile, newFile] = [join(keys, 'old.key'), join(keys, 'new.key')];
    writeFileSync(oldFile, hexKey(), { mode: 0o600 });
    writeFileSync(newFile, hexKey(), { mode: 0o600 });
    const store = new SecretStore({ stateDir: dir, key: { key: null, keyFile: oldFile } });
    await store.set('github', 'acme/app', 'A', 'value-a');
    await expect(store.rotateKey()).rejects.toThrow('secrets: the key is yours (FORGEVM_SECRETS_KEY or FORGEVM_SECRETS_KEY_FILE): give the new one with --new-key-file FILE');
    await expect(store.rotateKey(oldFile)).rejects.toThrow(`secrets: ${oldFile} holds the current key`);
    expect((await store.rotateKey(newFile)).count).toBe(1);
    await expect(store.getSecrets('github', 'acme/app')).rejects.toThrow(/is not the one the stored secrets were sealed with/);
    const switched = new SecretStore({ stateDir: dir, key: { key: null, keyFile: newFile } });
    expect(await switched.getSecrets('github', 'acme/app')).toEqual({ A: 'value-a' });
    expect(readdirSync(dir)).not.toContain('secrets.key');
    for (const s of [store, switched]) s.close();
  });

  it("follows GitHub's rules for names", () => {
    for (const [input, stored] of [['deploy_token', 'DEPLOY_TOKEN'], ['_x', '_X'], ['A1', 'A1'], ['github', 'GITHUB'], ['GITHUBX', 'GITHUBX']]) {
      expect(secretName(input!)).toBe(stored);
    }
    const refused: Array<[string, RegExp]> = [
      ['', /is empty/],
      ['1TOKEN', /must not start with a digit/],
      ['GITHUB_TOKEN', /must not start with GITHUB_/],
      ['github_pat', /must not start with GITHUB_/],
      ['MY-TOKEN', /may only contain letters, digits and _/],
      ['MY TOKEN', /may only contain letters, digits and _/],
      ['TÖKEN', /may only contain letters, digits and _/],
      ['A\nB', /"A\\nB" may only contain/],
    ];
    for (const [input, why] of refused) expect(() => secretName(input), JSON.stringify(input)).toThrow(why);
  });

  it('takes repositories as OWNER/NAME only', () => {
    expect(repositoryKey('Acme-Corp/My_App.js')).toBe('acme-corp/my_app.js');
    for (const bad of ['acme', 'acme/app/x', '/app', 'acme/', '../app', 'acme/..', 'ac me/app', 'acme/app;rm']) {
      expect(() => repositoryKey(bad), bad).toThrow(/is not OWNER\/NAME/);
    }
  });

  it("holds values up to GitHub's 48 KiB, counted in UTF-8 bytes, and refuses empty values and NUL", async () => {
    const store = new SecretStore({ stateDir: stateDir() });
    const largest = 'x'.repeat(MAX_SECRET_BYTES - 2) + 'é';
    await store.set('github', 'acme/app', 'BIG', largest);
    expect((await store.getSecrets('github', 'acme/app')).BIG).toBe(largest);
    await expect(store.set('github', 'acme/app', 'BIG', 'x'.repeat(MAX_SECRET_BYTES - 1) + 'é')).rejects.toThrow(
      `the secret value is ${MAX_SECRET_BYTES + 1} bytes, over GitHub's limit of ${MAX_SECRET_BYTES} (48 KiB)`,
    );
    await expect(store.set('github', 'acme/app', 'EMPTY', '')).rejects.toThrow('the secret value is empty');
    await expect(store.set('github', 'acme/app', 'NUL', 'a\0b')).rejects.toThrow(/NUL byte/);
    const multiline = '-----BEGIN KEY-----\nabc\n-----END KEY-----\n';
    await store.set('github', 'acme/app', 'PEM', multiline);
    expect((await store.getSecrets('github', 'acme/app')).PEM).toBe(multiline);
    store.close();
  });
});

describe('secrets key settings', () => {
  it('takes a key file relative to forgevm.yml (or to the current folder from the environment), and one way only', () => {
    const dir = stateDir();
    writeFileSync(join(dir, 'forgevm.yml'), 'secrets:\n  keyFile: keys/secrets.key\n');
    expect(loadConfig({ env: {}, cwd: dir }).secrets).toEqual({ key: null, keyFile: join(dir, 'keys', 'secrets.key') });
    expect(loadConfig({ env: { FORGEVM_SECRETS_KEY_FILE: 'k' }, cwd: '/srv' }).secrets).toEqual({ key: null, keyFile: '/srv/k' });
    const key = randomBytes(32).toString('base64');
    expect(loadConfig({ env: { FORGEVM_SECRETS_KEY: key }, cwd: '/srv' }).secrets).toEqual({ key, keyFile: null });
    const both = () => loadConfig({ env: { FORGEVM_SECRETS_KEY: key }, cwd: dir });
    expect(both).toThrow(ConfigError);
    expect(both).toThrow(`config: ${join(dir, 'forgevm.yml')}: secrets: give the key or a key file, not both (keep one of FORGEVM_SECRETS_KEY (secrets.key) and FORGEVM_SECRETS_KEY_FILE (secrets.keyFile))`);
  });
});

describe('which runs get secrets', () => {
  const repo = { fullName: 'Acme/App', owner: 'Acme', name: 'App', cloneUrl: 'https://github.com/Acme/App.git' };
  const push: PushEvent = { kind: 'push', forge: 'github', repo, ref: 'refs/heads/main', before: '0'.repeat(40), sha: 'a'.repeat(40), created: false, forced: false, changedFiles: [], actor: 'alice' };
  const pr = (isFork: boolean, actor = 'bob'): PullRequestEvent => ({
    kind: 'pull_request', forge: 'github', action: 'opened', repo, number: 1, title: 't', headSha: 'b'.repeat(40), headRef: 'feature',
    headRepo: { fullName: isFork ? 'bob/App' : 'Acme/App', cloneUrl: '' }, baseRef: 'main', baseSha: 'c'.repeat(40), isFork, authorAssociation: 'MEMBER', author: actor, actor,
  });

  it('gives them to pushes and same-repository pull requests, never to forks or Dependabot', async () => {
    const store = new SecretStore({ stateDir: stateDir() });
    await store.set('github', 'acme/app', 'TOKEN', 'value');
    expect(await secretsForRun(store, push)).toEqual({ TOKEN: 'value' });
    expect(await secretsForRun(store, pr(false))).toEqual({ TOKEN: 'value' });
    expect(await secretsForRun(store, pr(true))).toEqual({});
    expect(runGetsSecrets(pr(true))).toBe(false);
    expect(await secretsForRun(store, { ...push, actor: 'dependabot[bot]' })).toEqual({});
    expect(await secretsForRun(store, pr(false, 'dependabot[bot]'))).toEqual({});
    store.close();
  });
});
