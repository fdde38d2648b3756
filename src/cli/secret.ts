/**
 * `forgevm secret set OWNER/REPO NAME | list [OWNER/REPO] | remove OWNER/REPO NAME | rotate-key`
 *
 * A value is never taken from the command line, where `ps` and shell history would show it: it
 * is read from standard input when that is piped (trailing line breaks dropped, as `gh secret
 * set` does), or typed at a prompt that does not echo. No command ever prints a value.
 */
import type { Config } from '../config/config.ts';
import type { Forge } from '../forge/event-types.ts';
import { MAX_SECRET_BYTES, repositoryKey, secretName } from '../secrets/names.ts';
import { openSecretStore } from '../secrets/store.ts';
import { table } from './table.ts';

export interface SecretOptions {
  forge?: Forge;
}

type Print = (line: string) => void;

/**
 * The forge a repository is on: --forge, or the only forge configured, or GitHub when none is.
 * With both configured it must be said: the same OWNER/REPO on each is a different repository.
 */
export function chooseForge(config: Config, options: SecretOptions): Forge {
  if (options.forge) return options.forge;
  if (config.github && config.forgejo) {
    throw new Error('both GitHub and Forgejo are configured: say which forge the repository is on with --forge github or --forge forgejo');
  }
  return config.forgejo ? 'forgejo' : 'github';
}

export async function secretSet(config: Config, repo: string, name: string, options: SecretOptions, out: Print, err: Print): Promise<number> {
  const forge = chooseForge(config, options);
  // Checked before asking for a value that would then be typed in vain.
  repositoryKey(repo);
  secretName(name);
  const store = openSecretStore(config);
  try {
    const value = process.stdin.isTTY ? await promptHidden(`Value for ${name.toUpperCase()} (input hidden): `) : await readPiped();
    const { name: stored, created, keyCreated } = await store.set(forge, repo, name, value);
    if (keyCreated) err(`forgevm: generated the secrets key ${keyCreated}; back it up apart from the state folder: without it no secret can be read`);
    out(`${created ? 'created' : 'updated'} secret ${stored} for ${forge}:${repo.toLowerCase()}`);
    return 0;
  } finally {
    store.close();
  }
}

export async function secretList(config: Config, repo: string | undefined, options: SecretOptions, out: Print): Promise<number> {
  const store = openSecretStore(config);
  try {
    if (repo === undefined) {
      const repos = await store.repositories();
      if (repos.length === 0) out('no secrets set (forgevm secret set OWNER/REPO NAME sets one)');
      else out(table(['FORGE', 'REPOSITORY', 'SECRETS'], repos.map((r) => [r.forge, r.repo, String(r.count)])));
      return 0;
    }
    const forge = chooseForge(config, options);
    const secrets = await store.list(forge, repo);
    if (secrets.length === 0) out(`no secrets for ${forge}:${repo.toLowerCase()}`);
    else out(table(['NAME', 'UPDATED'], secrets.map((s) => [s.name, s.updatedAt])));
    return 0;
  } finally {
    store.close();
  }
}

export async function secretRemove(config: Config, repo: string, name: string, options: SecretOptions, out: Print): Promise<number> {
  const forge = chooseForge(config, options);
  const store = openSecretStore(config);
  try {
    const where = `${forge}:${repo.toLowerCase()}`;
    if (!(await store.remove(forge, repo, name))) throw new Error(`no secret ${name.toUpperCase()} in ${where} (forgevm secret list ${repo} shows its secrets)`);
    out(`removed secret ${name.toUpperCase()} from ${where}`);
    return 0;
  } finally {
    store.close();
  }
}

export async function secretRotateKey(config: Config, options: { newKeyFile?: string }, out: Print): Promise<number> {
  const store = openSecretStore(config);
  try {
    const { count, key } = await store.rotateKey(options.newKeyFile);
    out(`re-sealed ${count} secret${count === 1 ? '' : 's'} with key ${key.id} (${key.source}); the old key no longer opens them`);
    if (options.newKeyFile !== undefined) {
      out(`now point FORGEVM_SECRETS_KEY_FILE (or secrets.keyFile) at ${key.source}, and restart forgevm serve`);
    }
    return 0;
  } finally {
    store.close();
  }
}

/** All of piped standard input as UTF-8, without trailing line breaks. */
async function readPiped(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    // Stop reading what would be refused anyway (room is left for trailing line breaks).
    if (size > MAX_SECRET_BYTES + 1024) {
      throw new Error(`the secret value on standard input is over GitHub's limit of ${MAX_SECRET_BYTES} bytes (48 KiB); store a larger file encrypted in the repository and its key as the secret`);
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new Error('the secret value on standard input is not UTF-8 text; store binary data base64-encoded');
  }
  return text.replace(/[\r\n]+$/, '');
}

/** Reads one line from the terminal without echoing it. Ctrl-C cancels. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the prompt shows: what is typed (or pasted) right after it must not echo.
  stdin.setRawMode(true);
  process.stderr.write(question);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (typed: string) => {
      for (const c of typed) {
        if (c === '\r' || c === '\n' || c === '\u0004') {
          finish();
          resolve(value);
          return;
        }
        if (c === '\u0003') {
          finish();
          reject(new Error('cancelled; no secret was set'));
          return;
        }
        if (c === '\u007f' || c === '\b') value = [...value].slice(0, -1).join('');
        else if (c >= ' ' || c === '\t') value += c;
      }
    };
    stdin.on('data', onData);
  });
}
