/**
 * Fetching Debian packages for the tiny image with apt's own client (`apt-get download`), into a
 * cache folder that survives rebuilds. The package index must be current (`apt-get update`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

export interface FetchedDeb {
  name: string;
  file: string;
}

interface PlannedDownload {
  name: string;
  fileName: string;
  size: number;
  sha256: string;
}

/** The versioned kernel package (e.g. linux-image-6.1.0-56-amd64) behind a meta package. */
export async function resolveKernelPackage(metaPackage: string): Promise<string> {
  const { stdout } = await execa('apt-cache', ['depends', '--no-recommends', '--no-suggests', metaPackage]);
  const match = /^\s*Depends:\s*(linux-image-\S+)/m.exec(stdout);
  if (!match?.[1]) {
    throw new Error(`apt-cache knows no kernel behind ${metaPackage}: run 'apt-get update' and check the Debian sources`);
  }
  return match[1];
}

// apt-get --print-uris line: 'URL' FILENAME SIZE SHA256:HEX
const PRINT_URIS_LINE = /^'[^']+' (\S+\.deb) (\d+) SHA256:([0-9a-f]{64})$/;

async function planDownloads(names: readonly string[]): Promise<PlannedDownload[]> {
  // An empty folder as cwd: apt-get skips (prints nothing for) packages already in cwd.
  const emptyDir = path.join(process.env.TMPDIR ?? '/tmp', `forgevm-apt-${randomBytes(6).toString('hex')}`);
  await mkdir(emptyDir, { recursive: true });
  try {
    const { stdout } = await execa('apt-get', ['download', '--print-uris', ...names], { cwd: emptyDir });
    const planned = stdout
      .split('\n')
      .map((line) => PRINT_URIS_LINE.exec(line.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ fileName: m[1]!, size: Number(m[2]), sha256: m[3]! }));
    if (planned.length !== names.length) {
      throw new Error(
        `apt-get planned ${planned.length} downloads for ${names.length} packages (${names.join(' ')}): run 'apt-get update'`,
      );
    }
    // Output order follows the argument order; pair them by the package name prefix to be sure.
    return names.map((name) => {
      const found = planned.find((p) => p.fileName.startsWith(`${name}_`));
      if (!found) throw new Error(`apt-get did not plan a download for ${name}: run 'apt-get update'`);
      return { name, ...found };
    });
  } finally {
    await rm(emptyDir, { recursive: true, force: true });
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function isCachedIntact(file: string, want: PlannedDownload): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  return info?.isFile() === true && info.size === want.size;
}

/**
 * Make sure the candidate version of each package is in `cacheDir`, downloading what is missing.
 * Downloads land in a private folder first and are checked against apt's SHA256 before being
 * renamed into the cache, so an interrupted download never looks cached.
 */
export async function fetchDebs(
  names: readonly string[],
  cacheDir: string,
  log: (line: string) => void,
): Promise<FetchedDeb[]> {
  await mkdir(cacheDir, { recursive: true });
  const plan = await planDownloads(names);
  const missing: PlannedDownload[] = [];
  for (const want of plan) {
    if (!(await isCachedIntact(path.join(cacheDir, want.fileName), want))) missing.push(want);
  }
  if (missing.length > 0) {
    const partial = path.join(cacheDir, `.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(partial, { recursive: true });
    try {
      log(`downloading ${missing.length} Debian packages: ${missing.map((m) => m.name).join(' ')}`);
      await execa('apt-get', ['download', '-q', ...missing.map((m) => m.name)], { cwd: partial });
      for (const want of missing) {
        const got = path.join(partial, want.fileName);
        const digest = await sha256Of(got).catch(() => undefined);
        if (digest !== want.sha256) {
          throw new Error(`downloaded ${want.fileName} does not match apt's SHA256: retry the build`);
        }
        await rename(got, path.join(cacheDir, want.fileName));
      }
    } finally {
      await rm(partial, { recursive: true, force: true });
    }
  } else {
    log(`all ${plan.length} Debian packages found in ${cacheDir}`);
  }
  return plan.map((p) => ({ name: p.name, file: path.join(cacheDir, p.fileName) }));
}

/** Remove cached .deb files that the current plan no longer uses (old versions). */
export async function pruneDebCache(cacheDir: string, keep: readonly FetchedDeb[]): Promise<void> {
  const wanted = new Set(keep.map((k) => path.basename(k.file)));
  for (const entry of await readdir(cacheDir)) {
    if (entry.endsWith('.deb') && !wanted.has(entry)) await rm(path.join(cacheDir, entry), { force: true });
  }
}
