/**
 * The host's copy of the guest Node: fetched once from the npm registry, kept in a cache folder
 * (`<stateDir>/images/.guest-node/node-v<version>-linux-x64/`), and from there baked into the
 * tiny image or uploaded into guests. The folder holds `guest/`, exactly what a guest gets at
 * /opt/forgevm/node (bin/node, LICENSE and the stamp), and `guest.tar.gz`, the same packed once.
 *
 * The package is downloaded to a temporary name and checked against the pinned `integrity`
 * before it is unpacked; `bin/node` is checked against its own pin; the folder is renamed into
 * place only when complete. An interrupted or corrupt download never looks cached.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { ChecksumMismatchError, downloadImageFile, type Progress } from '../image/pull.ts';
import { runTool } from '../image/tiny/run-tool.ts';
import { GUEST_NODE_RELEASE, integrityChecksum, STAMP_FILE, stampText, type GuestNodeRelease } from './release.ts';

export interface HostNode {
  release: GuestNodeRelease;
  /** The cache folder of this release. */
  dir: string;
  /** What a guest gets at /opt/forgevm/node: bin/node, LICENSE, and the stamp. */
  guestTree: string;
  /** `<guestTree>/bin/node`, the official binary. */
  binary: string;
  /** `guestTree` as a gzip tar, made once, streamed into guests that lack Node. */
  guestArchive: string;
}

export interface FetchHostNodeOptions {
  release?: GuestNodeRelease;
  /** npm registry base URL; default: the one npm is configured with. */
  registry?: string;
  log?: (line: string) => void;
  onProgress?: Progress;
  fetchImpl?: typeof fetch;
}

/** The guest gets only what running actions needs: no npm, npx, corepack, headers or docs. */
const GUEST_FILES = ['bin/node', 'LICENSE', STAMP_FILE] as const;
const GUEST_TREE = 'guest';
const ARCHIVE = 'guest.tar.gz';
const DEFAULT_REGISTRY = 'https://registry.npmjs.org/';

/** The cache lives with the images (like the tiny build's .deb cache): jobs and image builds share it. */
export function guestNodeCacheIn(imagesDir: string): string {
  return path.join(imagesDir, '.guest-node');
}

export function hostNodeDir(cacheDir: string, release: GuestNodeRelease = GUEST_NODE_RELEASE): string {
  return path.join(cacheDir, `node-v${release.version}-linux-x64`);
}

function hostNodeIn(dir: string, release: GuestNodeRelease): HostNode {
  return {
    release,
    dir,
    guestTree: path.join(dir, GUEST_TREE),
    binary: path.join(dir, GUEST_TREE, 'bin/node'),
    guestArchive: path.join(dir, ARCHIVE),
  };
}

/** The cached copy when it is complete (its stamp names this release), else undefined. Never downloads. */
export async function cachedHostNode(cacheDir: string, release: GuestNodeRelease = GUEST_NODE_RELEASE): Promise<HostNode | undefined> {
  const dir = hostNodeDir(cacheDir, release);
  const stamp = await readFile(path.join(dir, GUEST_TREE, STAMP_FILE), 'utf8').catch(() => undefined);
  // The folder is renamed into place only complete; the stamp says which release it holds.
  return stamp === stampText(release) ? hostNodeIn(dir, release) : undefined;
}

// One fetch per cache folder at a time within this process: parallel jobs share it.
const inFlight = new Map<string, Promise<HostNode>>();

/** The cached copy, fetched from the npm registry first if it is not there. */
export async function ensureHostNode(cacheDir: string, options: FetchHostNodeOptions = {}): Promise<HostNode> {
  const release = options.release ?? GUEST_NODE_RELEASE;
  const cached = await cachedHostNode(cacheDir, release);
  if (cached) return cached;
  const key = hostNodeDir(cacheDir, release);
  let pending = inFlight.get(key);
  if (!pending) {
    pending = fetchHostNode(cacheDir, release, options).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

async function fetchHostNode(cacheDir: string, release: GuestNodeRelease, options: FetchHostNodeOptions): Promise<HostNode> {
  const log = options.log ?? (() => {});
  await mkdir(cacheDir, { recursive: true });
  await removeAbandonedFetches(cacheDir);
  const finalDir = hostNodeDir(cacheDir, release);
  const staging = path.join(cacheDir, `.fetch-${process.pid}-${randomBytes(4).toString('hex')}`);
  const name = `${release.npmPackage}@${release.version}`;
  try {
    const registry = options.registry ?? (await npmRegistry());
    const url = tarballUrl(registry, release);
    const tarball = path.join(staging, path.basename(new URL(url).pathname));
    log(`downloading Node.js ${release.version} for guests: ${url}`);
    await downloadImageFile({ url, checksum: integrityChecksum(release) }, tarball, options.onProgress, options.fetchImpl).catch((error: unknown) => {
      if (!(error instanceof ChecksumMismatchError)) throw error;
      throw new ChecksumMismatchError(
        `${name} from ${registry} does not match forgevm's pinned integrity ${release.integrity.slice(0, 23)}…: refused and deleted (the registry or a proxy served other bytes); check "npm config get registry" and retry`,
      );
    });

    const unpacked = path.join(staging, 'unpacked');
    await mkdir(unpacked);
    await runTool('tar', ['-xzf', tarball, '-C', unpacked, 'package/bin/node', 'package/LICENSE']);
    await rm(tarball);
    const dir = path.join(staging, 'node');
    const tree = path.join(dir, GUEST_TREE);
    await mkdir(path.join(tree, 'bin'), { recursive: true });
    await rename(path.join(unpacked, 'package/bin/node'), path.join(tree, 'bin/node'));
    await rename(path.join(unpacked, 'package/LICENSE'), path.join(tree, 'LICENSE'));
    await chmod(path.join(tree, 'bin/node'), 0o755);
    const binarySha256 = await sha256Of(path.join(tree, 'bin/node'));
    if (binarySha256 !== release.binarySha256) {
      throw new ChecksumMismatchError(
        `bin/node in ${name} has sha256 ${binarySha256.slice(0, 16)}…, forgevm pins ${release.binarySha256.slice(0, 16)}…: refused; the two pins in src/vm/guest-node/release.ts disagree, fix them together`,
      );
    }
    // The stamp goes into the archive too: a guest is checked for it.
    await writeFile(path.join(tree, STAMP_FILE), stampText(release));
    await runTool('tar', ['-czf', path.join(dir, ARCHIVE), '--owner=0', '--group=0', '--numeric-owner', '-C', tree, ...GUEST_FILES]);

    // Another process (a parallel image build or job) may have finished the same fetch first: its
    // copy is as good as ours, and it may be reading it, so it stays. A folder without this
    // release's stamp (pins changed, same version) is replaced.
    const done = await cachedHostNode(cacheDir, release);
    if (done) return done;
    await rm(finalDir, { recursive: true, force: true });
    await rename(dir, finalDir).catch(async (error: NodeJS.ErrnoException) => {
      if ((error.code === 'ENOTEMPTY' || error.code === 'EEXIST') && (await cachedHostNode(cacheDir, release))) return;
      throw error;
    });
    await removeOtherReleases(cacheDir, finalDir);
    log(`Node.js ${release.version} for guests is in ${finalDir}`);
    return hostNodeIn(finalDir, release);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The registry npm itself uses on this host (so a configured mirror is honoured). */
async function npmRegistry(): Promise<string> {
  if (process.env.npm_config_registry) return process.env.npm_config_registry;
  const result = await execa('npm', ['config', 'get', 'registry'], { reject: false, timeout: 30_000 });
  const configured = typeof result.stdout === 'string' ? result.stdout.trim() : '';
  return result.exitCode === 0 && /^https?:\/\//.test(configured) ? configured : DEFAULT_REGISTRY;
}

function tarballUrl(registry: string, release: GuestNodeRelease): string {
  const base = registry.endsWith('/') ? registry : `${registry}/`;
  return `${base}${release.npmPackage}/-/${release.npmPackage}-${release.version}.tgz`;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Staging folders of fetches whose process is gone (killed mid-download). */
async function removeAbandonedFetches(cacheDir: string): Promise<void> {
  for (const entry of await readdir(cacheDir)) {
    const pid = /^\.fetch-(\d+)-/.exec(entry)?.[1];
    if (pid && !isAlive(Number(pid))) await rm(path.join(cacheDir, entry), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Older releases left by an earlier pin: ~170 MB each, and nothing uses them any more. */
async function removeOtherReleases(cacheDir: string, keep: string): Promise<void> {
  for (const entry of await readdir(cacheDir)) {
    const at = path.join(cacheDir, entry);
    if (/^node-v[\d.]+-linux-x64$/.test(entry) && at !== keep) await rm(at, { recursive: true, force: true });
  }
}
