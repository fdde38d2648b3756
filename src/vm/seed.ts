/**
 * The per-job cloud-init NoCloud seed: an ISO9660 volume labelled `cidata` carrying the job's
 * SSH client key (authorized) and the guest's SSH host key (so we can pin it).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import ssh2 from 'ssh2';

export interface KeyPair {
  /** OpenSSH private key (PEM-like text). */
  private: string;
  /** `ssh-ed25519 AAAA… comment` */
  public: string;
}

export interface JobKeys {
  client: KeyPair;
  host: KeyPair;
}

export function generateJobKeys(): JobKeys {
  const make = (comment: string): KeyPair => {
    // ssh2 1.17 drops a leading zero byte of the public key (about 1 key in 300), writing key
    // files that neither it nor the guest can read: draw again until both halves parse.
    for (;;) {
      const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
      if (!(ssh2.utils.parseKey(pair.private) instanceof Error) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) {
        return { private: pair.private, public: pair.public };
      }
    }
  };
  return { client: make('forgevm-job'), host: make('forgevm-host') };
}

export function metaData(instanceId: string): string {
  return `instance-id: ${instanceId}\nlocal-hostname: ${instanceId}\n`;
}

export function userData(instanceId: string, keys: JobKeys): string {
  const indent = (text: string, spaces: number) =>
    text
      .trim()
      .split('\n')
      .map((line) => ' '.repeat(spaces) + line)
      .join('\n');
  return [
    '#cloud-config',
    `hostname: ${instanceId}`,
    'disable_root: false',
    'ssh_pwauth: false',
    'ssh_authorized_keys:',
    `  - ${keys.client.public.trim()}`,
    'ssh_deletekeys: true',
    'ssh_genkeytypes: []',
    'ssh_keys:',
    '  ed25519_private: |',
    indent(keys.host.private, 4),
    `  ed25519_public: ${keys.host.public.trim()}`,
    '',
  ].join('\n');
}

/** Write meta-data and user-data into `<dir>/seed/` and build `<dir>/seed.iso`. */
export async function writeSeedIso(dir: string, instanceId: string, keys: JobKeys): Promise<string> {
  const seedDir = join(dir, 'seed');
  await mkdir(seedDir, { recursive: true, mode: 0o700 });
  await writeFile(join(seedDir, 'meta-data'), metaData(instanceId), { mode: 0o600 });
  await writeFile(join(seedDir, 'user-data'), userData(instanceId, keys), { mode: 0o600 });
  const iso = join(dir, 'seed.iso');
  await execa('genisoimage', ['-quiet', '-output', iso, '-volid', 'cidata', '-joliet', '-rock', 'user-data', 'meta-data'], {
    cwd: seedDir,
  });
  return iso;
}
