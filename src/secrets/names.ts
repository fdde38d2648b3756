/**
 * What a secret may be called, where it may belong, and what it may hold: GitHub's rules, checked
 * before anything is stored. Each failure is a SecretInputError with one line saying what to change.
 */

/** GitHub's limit on a secret's size. */
export const MAX_SECRET_BYTES = 48 * 1024;

export class SecretInputError extends Error {
  override name = 'SecretInputError';
}

/**
 * A secret's name as stored: upper-case, since names are case-insensitive and GitHub shows them
 * upper-cased. Letters, digits and `_`, not starting with a digit nor with `GITHUB_`.
 */
export function secretName(input: string): string {
  if (input === '') throw new SecretInputError('secret name is empty; use letters, digits and _, e.g. DEPLOY_TOKEN');
  if (!/^[A-Za-z0-9_]+$/.test(input)) {
    throw new SecretInputError(`secret name "${printable(input)}" may only contain letters, digits and _ (e.g. DEPLOY_TOKEN)`);
  }
  if (/^[0-9]/.test(input)) throw new SecretInputError(`secret name "${input}" must not start with a digit`);
  const name = input.toUpperCase();
  if (name.startsWith('GITHUB_')) throw new SecretInputError(`secret name "${input}" must not start with GITHUB_ (reserved, as on GitHub)`);
  return name;
}

/**
 * A repository as stored: `owner/name`, lower-cased, since both GitHub and Forgejo treat
 * repository names case-insensitively (and webhooks spell them as the forge does today).
 */
export function repositoryKey(input: string): string {
  const parts = input.split('/');
  const segment = /^[A-Za-z0-9_.-]{1,100}$/;
  if (parts.length !== 2 || !parts.every((p) => segment.test(p) && p !== '.' && p !== '..')) {
    throw new SecretInputError(`repository "${printable(input)}" is not OWNER/NAME (letters, digits, "-", "_" and "." on each side of one "/")`);
  }
  return input.toLowerCase();
}

/** Checks a value: not empty, at most 48 KiB of UTF-8, no NUL (it could not reach a step's environment). */
export function checkSecretValue(value: string): void {
  if (value === '') throw new SecretInputError('the secret value is empty; give a value on standard input');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SECRET_BYTES) {
    throw new SecretInputError(`the secret value is ${bytes} bytes, over GitHub's limit of ${MAX_SECRET_BYTES} (48 KiB); store a larger file encrypted in the repository and its key as the secret`);
  }
  if (value.includes('\0')) throw new SecretInputError('the secret value contains a NUL byte, which no environment variable can carry; store binary data base64-encoded');
}

/** Input echoed in a message: control characters shown escaped, length bounded. */
function printable(input: string): string {
  const shown = JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input).slice(1, -1);
  return shown;
}
