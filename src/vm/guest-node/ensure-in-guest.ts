/**
 * Make sure a running guest has Node for JavaScript actions, and say where it is.
 *
 * Present (the `tiny` image bakes it in, or an earlier step uploaded it): one exec reads the
 * stamp. Absent (cloud images have no Node): the host's cached copy is streamed in as a tar
 * (gzip when the guest has gzip) to a staging folder, run once there (`--version`), and only
 * then moved to its place, so a broken or interrupted upload never looks installed.
 * An image whose catalog entry names its own Node (`node: /usr/bin/node`) gets nothing uploaded.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Guest } from '../../ssh/guest.ts';
import type { HostNode } from './host-cache.ts';
import { GUEST_NODE_DIR, GUEST_NODE_RELEASE, STAMP_FILE, stampText, type GuestNodeRelease } from './release.ts';

export interface EnsureGuestNodeOptions {
  /** The host's copy, fetched on first use: only called when the guest lacks Node. */
  hostNode: () => Promise<HostNode>;
  /** The image's own Node (its catalog entry's `node:`): checked, never uploaded over. */
  imageNode?: string;
  /** Where Node goes in the guest; the default is the documented /opt/forgevm/node. */
  installDir?: string;
  release?: GuestNodeRelease;
  log?: (line: string) => void;
}

// Constant scripts: paths and texts reach them only as arguments ($1, $2), never as code.
// $1 stamp file, $2 expected stamp. Prints "present", or what the upload can use.
const PROBE = [
  '[ "$(cat "$1" 2>/dev/null)" = "$2" ] && { echo present; exit 0; }',
  'command -v gzip >/dev/null 2>&1 && echo gzip',
  '[ "$(id -u)" = 0 ] && { echo root; exit 0; }',
  'command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && echo sudo',
  'exit 0',
].join('\n');

// $1 staged folder, $2 destination, $3 expected `node --version`. The staged Node must run and be
// the expected release before it takes the destination; on any failure the staged copy goes.
const INSTALL = [
  'staged=$1 dest=$2 expected=$3',
  'if ! version=$("$staged/bin/node" --version 2>&1); then echo "$version" >&2; rm -rf "$staged"; exit 3; fi',
  'if [ "$version" != "$expected" ]; then echo "it reports $version" >&2; rm -rf "$staged"; exit 4; fi',
  'mkdir -p "${dest%/*}" && rm -rf "$dest" && mv "$staged" "$dest" && chown -R 0:0 "$dest" || { rm -rf "$staged"; exit 5; }',
].join('\n');

function installFailure(code: number | null, host: HostNode): string | undefined {
  if (code === 3) return 'was uploaded but did not run in the guest (the official build needs glibc ≥ 2.28 and libstdc++)';
  if (code === 4) return `was uploaded but is not the pinned release (the host cache is damaged: delete ${host.dir} and retry)`;
  return undefined;
}

/** The guest path of `node` once it is there; uploads it first when the guest lacks it. */
export async function ensureGuestNode(guest: Guest, options: EnsureGuestNodeOptions): Promise<string> {
  if (options.imageNode) return checkImageNode(guest, options.imageNode);
  const release = options.release ?? GUEST_NODE_RELEASE;
  const installDir = options.installDir ?? GUEST_NODE_DIR;
  const probe = await capture(guest, ['sh', '-c', PROBE, 'forgevm-node-probe', `${installDir}/${STAMP_FILE}`, stampText(release).trimEnd()]);
  if (probe.code !== 0) throw new Error(`checking the guest for Node.js failed (${exitText(probe)}): ${lastLines(probe.stderr)}`);
  const facts = new Set(probe.stdout.split('\n').map((line) => line.trim()));
  if (facts.has('present')) return `${installDir}/bin/node`;

  const asRoot = facts.has('root');
  if (!asRoot && !facts.has('sudo')) {
    throw new Error(
      `cannot install Node.js for JavaScript actions at ${installDir}: the guest user "${guest.user}" is not root and has no passwordless sudo; give the image passwordless sudo, or name the image's own Node with "node:" in its catalog entry`,
    );
  }
  const host = await options.hostNode();
  const gzip = facts.has('gzip');
  // As root, stage next to the destination (same file system: the final move is a rename).
  const staged = `${asRoot ? installDir : `${guest.home}/.forgevm-node`}.upload-${randomBytes(4).toString('hex')}`;
  options.log?.(`uploading Node.js ${release.version} to ${installDir} in the guest${gzip ? '' : ' (uncompressed: the guest has no gzip)'}`);
  await upload(guest, host, staged, gzip);

  const install = ['sh', '-c', INSTALL, 'forgevm-node-install', staged, installDir, `v${release.version}`];
  const installed = await capture(guest, asRoot ? install : ['sudo', '-n', ...install]);
  if (installed.code !== 0) {
    const what = installFailure(installed.code, host) ?? `could not be moved into place (${exitText(installed)})`;
    throw new Error(`Node.js ${release.version} for ${installDir} ${what}: ${lastLines(installed.stderr) || exitText(installed)}`);
  }
  return `${installDir}/bin/node`;
}

function exitText(result: { code: number | null; signal: string | null }): string {
  return result.code === null ? `signal ${result.signal}` : `exit ${result.code}`;
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-2).join(' ');
}

/**
 * `ensureGuestNode` for one job: the first call checks (and installs), later calls share its
 * answer without another command. A failure is not kept: the next call tries again.
 */
export function guestNodeOnce(guest: Guest, options: EnsureGuestNodeOptions): () => Promise<string> {
  let pending: Promise<string> | undefined;
  return () => {
    pending ??= ensureGuestNode(guest, options).catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

async function upload(guest: Guest, host: HostNode, staged: string, gzip: boolean): Promise<void> {
  const archive = createReadStream(host.guestArchive);
  try {
    // Without gzip in the guest, the host unpacks the gzip layer and sends the plain tar.
    await guest.extractTar(gzip ? archive : archive.pipe(createGunzip()), staged, { gzip });
  } catch (error) {
    await guest.exec(['rm', '-rf', staged]).catch(() => {});
    throw new Error(`uploading Node.js to the guest failed: ${(error as Error).message}`);
  } finally {
    archive.destroy();
  }
}

async function checkImageNode(guest: Guest, node: string): Promise<string> {
  const result = await guest.exec(['test', '-x', node]);
  if (result.code !== 0) {
    throw new Error(`the image's catalog entry says Node is at ${node}, but there is no executable there in the guest: fix "node:" in the image's entry, or remove it so forgevm installs its own`);
  }
  return node;
}

async function capture(guest: Guest, argv: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = await guest.exec(argv, { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c) });
  return { ...result, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
