/**
 * Per-repository secrets, set by the operator, kept encrypted in `<stateDir>/secrets.db`.
 *
 * A SQLite database of its own (WAL, synchronous FULL, mode 0600), apart from forgevm.db so that it
 * can be backed up, restored or deleted on its own. `forgevm serve` reads it while `forgevm secret
 * set` writes from another process: SQLite's locking makes each write atomic and each read see
 * whole writes only.
 *
 * Secrets belong to a forge and a repository: github:acme/app and forgejo:acme/app are different
 * repositories, possibly of different people, and never share secrets. Repository names are
 * case-insensitive (stored lower-case), secret names too (stored upper-case).
 *
 * Values are sealed one by one (cipher.ts). The database also records the id of the key they were
 * sealed with, so that a wrong or missing key gives a clear error rather than "cannot decrypt".
 * Listing and removing need no key; reading a repository without secrets needs none either, so
 * a forgevm that never had a secret never creates a key.
 */
import { closeSync, mkdirSync, openSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../config/config.ts';
import type { Forge } from '../forge/event-types.ts';
import { stateDir } from '../vm/state-dir.ts';
import { seal, unseal } from './cipher.ts';
import { createKeyFile, readKey, syncFolder, type KeySetting, type SecretsKey } from './key.ts';
import { checkSecretValue, repositoryKey, secretName } from './names.ts';

export class SecretStoreError extends Error {
  override name = 'SecretStoreError';
}

export interface SecretStoreOptions {
  /** The state folder: the database is `<stateDir>/secrets.db`, the default key `<stateDir>/secrets.key`. */
  stateDir: string;
  /** The operator's key settings (config.secrets); both null: the default key file. */
  key?: { key: string | null; keyFile: string | null };
}

export interface SecretListing {
  name: string;
  createdAt: string;
  updatedAt: string;
}

export interface RepositorySecrets {
  forge: Forge;
  repo: string;
  count: number;
}

const SCHEMA_VERSION = 1;
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS secrets (
    forge TEXT NOT NULL CHECK (forge IN ('github', 'forgejo')),
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed BLOB NOT NULL,
    key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (forge, repo, name)
  ) WITHOUT ROWID;
`;

interface SecretRow {
  name: string;
  sealed: Buffer;
  key_id: string;
}

export class SecretStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #keySetting: KeySetting;

  constructor(options: SecretStoreOptions) {
    mkdirSync(options.stateDir, { recursive: true });
    const layout = stateDir(options.stateDir);
    this.path = layout.secrets;
    // Created here with mode 0600: SQLite gives its -wal and -shm files the database's mode.
    closeSync(openSync(this.path, 'a', 0o600));
    this.#keySetting = {
      key: options.key?.key ?? null,
      keyFile: options.key?.keyFile ?? null,
      defaultFile: layout.secretsKey,
    };
    this.#db = new Database(this.path);
    this.#db.pragma('busy_timeout = 5000');
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#migrate();
  }

  #migrate(): void {
    this.#db
      .transaction(() => {
        const version = this.#db.pragma('user_version', { simple: true }) as number;
        if (version > SCHEMA_VERSION) {
          throw new SecretStoreError(`secrets: ${this.path} has schema version ${version}, newer than this forgevm knows (${SCHEMA_VERSION}); upgrade forgevm`);
        }
        this.#db.exec(SCHEMA);
        if (version < SCHEMA_VERSION) this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
  }

  /**
   * The secrets of one repository, by name: what `secrets.*` holds in its runs. Empty when it
   * has none. Throws SecretStoreError (one line) when the key is missing or wrong, or a value
   * does not decrypt; the job should then fail with that message rather than run without them.
   */
  async getSecrets(forge: Forge, repo: string): Promise<Record<string, string>> {
    const repoKey = repositoryKey(repo);
    const rows = this.#db
      .prepare('SELECT name, sealed, key_id FROM secrets WHERE forge = ? AND repo = ? ORDER BY name')
      .all(forge, repoKey) as SecretRow[];
    if (rows.length === 0) return {};
    const key = this.#key(false)?.key;
    if (!key) throw this.#missingKey();
    const secrets: Record<string, string> = {};
    for (const row of rows) {
      if (row.key_id !== key.id) throw this.#wrongKey(key, row.key_id);
      const value = unseal(key.bytes, { forge, repo: repoKey, name: row.name }, row.sealed);
      if (value === null) {
        throw new SecretStoreError(
          `secrets: ${row.name} of ${forge}:${repoKey} does not decrypt: it was altered, or copied from another repository or name; set it again with: forgevm secret set ${repoKey} ${row.name}`,
        );
      }
      secrets[row.name] = value;
    }
    return secrets;
  }

  /**
   * Sets (creates or replaces) a secret. The name is upper-cased; see names.ts for the rules.
   * `keyCreated` is the key file's path when this first secret made the key: tell the operator to back it up.
   */
  async set(forge: Forge, repo: string, name: string, value: string): Promise<{ name: string; created: boolean; keyCreated: string | null }> {
    const repoKey = repositoryKey(repo);
    const stored = secretName(name);
    checkSecretValue(value);
    const { key, created: keyMade } = this.#key(true)!;
    const keyCreated = keyMade ? key.source : null;
    const sealed = seal(key.bytes, { forge, repo: repoKey, name: stored }, value);
    const now = new Date().toISOString();
    return this.#db
      .transaction(() => {
        // Checked again inside the write lock: another process may have set the first secret meanwhile.
        this.#checkKey(key);
        this.#db.prepare(`INSERT INTO meta (name, value) VALUES ('key_id', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`).run(key.id);
        const existed = this.#db.prepare('SELECT 1 FROM secrets WHERE forge = ? AND repo = ? AND name = ?').get(forge, repoKey, stored) !== undefined;
        this.#db
          .prepare(
            `INSERT INTO secrets (forge, repo, name, sealed, key_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (forge, repo, name) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, updated_at = excluded.updated_at`,
          )
          .run(forge, repoKey, stored, sealed, key.id, now, now);
        return { name: stored, created: !existed, keyCreated };
      })
      .immediate();
  }

  /**
   * Re-seals every secret with a new key, in one transaction. With the default key file, the new
   * key is made beside it (`secrets.key.next`) and renamed over it once the secrets are sealed
   * with it; a rotation interrupted in between is finished by the next process that needs the
   * key. With the operator's own key (FORGEVM_SECRETS_KEY or a key file), `newKeyFile` is
   * required, and the configuration must then be pointed at it.
   */
  async rotateKey(newKeyFile?: string): Promise<{ count: number; key: SecretsKey }> {
    const operatorKey = this.#keySetting.key !== null || this.#keySetting.keyFile !== null;
    if (operatorKey && newKeyFile === undefined) {
      throw new SecretStoreError('secrets: the key is yours (FORGEVM_SECRETS_KEY or FORGEVM_SECRETS_KEY_FILE): give the new one with --new-key-file FILE, made with: openssl rand -base64 32 > FILE; chmod 600 FILE');
    }
    const current = this.#key(false)?.key ?? null;
    const next = newKeyFile === undefined ? createKeyFile(this.#nextKeyFile) : readKey({ key: null, keyFile: newKeyFile, defaultFile: newKeyFile })!;
    if (next.id === current?.id) throw new SecretStoreError(`secrets: ${next.source} holds the current key; make a new one: openssl rand -base64 32 > FILE; chmod 600 FILE`);
    const count = this.#db
      .transaction(() => {
        const rows = this.#db.prepare('SELECT forge, repo, name, sealed, key_id FROM secrets').all() as Array<SecretRow & { forge: Forge; repo: string }>;
        const update = this.#db.prepare('UPDATE secrets SET sealed = ?, key_id = ? WHERE forge = ? AND repo = ? AND name = ?');
        for (const row of rows) {
          const value = current && row.key_id === current.id ? unseal(current.bytes, row, row.sealed) : null;
          if (value === null) throw new SecretStoreError(`secrets: ${row.name} of ${row.forge}:${row.repo} does not decrypt with the current key; nothing was changed (remove or set it again, then rotate)`);
          update.run(seal(next.bytes, row, value), next.id, row.forge, row.repo, row.name);
        }
        this.#db.prepare(`INSERT INTO meta (name, value) VALUES ('key_id', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`).run(next.id);
        return rows.length;
      })
      .immediate();
    if (newKeyFile === undefined) {
      renameSync(this.#nextKeyFile, this.#keySetting.defaultFile);
      syncFolder(dirname(this.#keySetting.defaultFile));
      return { count, key: { ...next, source: this.#keySetting.defaultFile } };
    }
    return { count, key: next };
  }

  /** Removes a secret; false when there was none of that name. */
  async remove(forge: Forge, repo: string, name: string): Promise<boolean> {
    const info = this.#db.prepare('DELETE FROM secrets WHERE forge = ? AND repo = ? AND name = ?').run(forge, repositoryKey(repo), secretName(name));
    return info.changes > 0;
  }

  /** Names and times of a repository's secrets, by name. Never values. */
  async list(forge: Forge, repo: string): Promise<SecretListing[]> {
    return (
      this.#db
        .prepare('SELECT name, created_at, updated_at FROM secrets WHERE forge = ? AND repo = ? ORDER BY name')
        .all(forge, repositoryKey(repo)) as Array<{ name: string; created_at: string; updated_at: string }>
    ).map((r) => ({ name: r.name, createdAt: r.created_at, updatedAt: r.updated_at }));
  }

  /** Every repository that has secrets, with how many. */
  async repositories(): Promise<RepositorySecrets[]> {
    return this.#db
      .prepare('SELECT forge, repo, count(*) AS count FROM secrets GROUP BY forge, repo ORDER BY forge, repo')
      .all() as RepositorySecrets[];
  }

  close(): void {
    this.#db.close();
  }

  /**
   * The key, checked against the one the stored secrets were sealed with. Creates the default key
   * file when writing and none exists yet. Read again on every call: an operator who restores
   * or changes the key needs no restart.
   */
  #key(create: boolean): { key: SecretsKey; created: boolean } | null {
    let key = readKey(this.#keySetting);
    if (key && this.#keySetting.key === null && this.#keySetting.keyFile === null) key = this.#finishRotation(key);
    if (key) {
      this.#checkKey(key);
      return { key, created: false };
    }
    if (this.#count() > 0) throw this.#missingKey();
    return create ? { key: createKeyFile(this.#keySetting.defaultFile), created: true } : null;
  }

  get #nextKeyFile(): string {
    return `${this.#keySetting.defaultFile}.next`;
  }

  /** After a rotation stopped between the commit and the rename: the new key, moved into place. */
  #finishRotation(key: SecretsKey): SecretsKey {
    const storedId = this.#storedKeyId();
    if (storedId === null || storedId === key.id) return key;
    let next: SecretsKey | null = null;
    try {
      next = readKey({ key: null, keyFile: this.#nextKeyFile, defaultFile: this.#nextKeyFile });
    } catch {
      return key; // no rotation pending: the wrong-key check reports the mismatch
    }
    if (next?.id !== storedId) return key;
    renameSync(this.#nextKeyFile, this.#keySetting.defaultFile);
    return { ...next, source: this.#keySetting.defaultFile };
  }

  /** A key other than the stored secrets' is refused while any secret is stored. */
  #checkKey(key: SecretsKey): void {
    const storedId = this.#storedKeyId();
    if (storedId !== null && storedId !== key.id && this.#count() > 0) throw this.#wrongKey(key, storedId);
  }

  #missingKey(): SecretStoreError {
    return new SecretStoreError(
      `secrets: the key file ${this.#keySetting.defaultFile} is missing, but ${this.path} holds secrets sealed with key ${this.#storedKeyId() ?? '(unknown)'}; restore the key file from your backup (or set FORGEVM_SECRETS_KEY), or remove those secrets and set them again`,
    );
  }

  #wrongKey(key: SecretsKey, storedId: string): SecretStoreError {
    return new SecretStoreError(
      `secrets: the key from ${key.source} (key ${key.id}) is not the one the stored secrets were sealed with (key ${storedId}); use that key again, or remove the secrets and set them again`,
    );
  }

  #storedKeyId(): string | null {
    const row = this.#db.prepare(`SELECT value FROM meta WHERE name = 'key_id'`).get() as { value: string } | undefined;
    return row?.value ?? null;
  }

  #count(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n;
  }
}

/** The store of a configured forgevm: `<stateDir>/secrets.db`, with the configured key. */
export function openSecretStore(config: Pick<Config, 'stateDir' | 'secrets'>): SecretStore {
  return new SecretStore({ stateDir: config.stateDir, key: config.secrets });
}
