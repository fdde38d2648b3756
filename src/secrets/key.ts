/**
 * The key that encrypts secrets at rest: 32 random bytes. Where it comes from, in order:
 *
 * 1. `FORGEVM_SECRETS_KEY` (or `secrets.key` in forgevm.yml): the key itself;
 * 2. `FORGEVM_SECRETS_KEY_FILE` (or `secrets.keyFile`): a file holding it, made by the operator;
 * 3. otherwise `<stateDir>/secrets.key`, generated (mode 0600) the first time a secret is set.
 *
 * The text form is 64 hex digits or base64 (`openssl rand -base64 32`). Key files must not be
 * readable by group or others. A key is known by its id (a keyed hash, which reveals nothing of
 * the key), stored beside the secrets so a wrong key is told apart from damaged data.
 */
import { randomBytes, createHmac, randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const KEY_BYTES = 32;

/** Where the key comes from (config.secrets plus the state folder's default path). */
export interface KeySetting {
  /** The key's text (FORGEVM_SECRETS_KEY / secrets.key). */
  key: string | null;
  /** A key file the operator made (FORGEVM_SECRETS_KEY_FILE / secrets.keyFile). */
  keyFile: string | null;
  /** `<stateDir>/secrets.key`, used (and generated) when neither is set. */
  defaultFile: string;
}

export interface SecretsKey {
  bytes: Buffer;
  /** 16 hex digits identifying the key, safe to store and print. */
  id: string;
  /** Where it came from, for messages: `FORGEVM_SECRETS_KEY` or a file path. */
  source: string;
}

export class SecretsKeyError extends Error {
  override name = 'SecretsKeyError';
}

/** The key's bytes from its text form, or null when the text is not 32 bytes in hex or base64. */
export function parseKeyText(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === KEY_BYTES) return bytes;
  }
  return null;
}

export function keyId(bytes: Buffer): string {
  return createHmac('sha256', bytes).update('forgevm secrets key id v1').digest('hex').slice(0, 16);
}

const notAKey = (source: string) =>
  new SecretsKeyError(`secrets: ${source} does not hold a key: it needs 32 bytes as 64 hex digits or base64 (make one with: openssl rand -base64 32)`);

/** The configured key, or null when only the default file is used and it does not exist yet. */
export function readKey(setting: KeySetting): SecretsKey | null {
  if (setting.key !== null) {
    const bytes = parseKeyText(setting.key);
    if (!bytes) throw notAKey('FORGEVM_SECRETS_KEY');
    return { bytes, id: keyId(bytes), source: 'FORGEVM_SECRETS_KEY' };
  }
  const path = setting.keyFile ?? setting.defaultFile;
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && setting.keyFile === null) return null;
    throw new SecretsKeyError(`secrets: cannot read the key file ${path} (${code ?? error}); check FORGEVM_SECRETS_KEY_FILE`);
  }
  if ((mode & 0o077) !== 0) {
    throw new SecretsKeyError(`secrets: the key file ${path} is readable by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  }
  const bytes = parseKeyText(readFileSync(path, 'utf8'));
  if (!bytes) throw notAKey(path);
  return { bytes, id: keyId(bytes), source: path };
}

/**
 * Writes a new random key to `path` (mode 0600) unless a file is already there, and returns the
 * key in the file. Written whole under a temporary name and linked into place, so a concurrent
 * reader never sees half a key and two processes creating it at once agree on one.
 */
export function createKeyFile(path: string): SecretsKey {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${randomUUID()}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${randomBytes(KEY_BYTES).toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, path);
    syncFolder(dirname(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temp);
  }
  const key = readKey({ key: null, keyFile: path, defaultFile: path });
  if (!key) throw new SecretsKeyError(`secrets: the key file ${path} vanished while it was created`);
  return key;
}

export function syncFolder(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
