/** `forgevm doctor`: is this host ready to run jobs, and if not, what to do. */
import { execa } from 'execa';
import type { Config } from '../config/config.ts';
import { probeAccelerator } from '../vm/accel.ts';
import { cachedHostNode, guestNodeCacheIn } from '../vm/guest-node/host-cache.ts';
import { GUEST_NODE_RELEASE } from '../vm/guest-node/release.ts';
import { formatBytes, freeBytes } from '../vm/disk-space.ts';
import { findTool, hostTools } from '../vm/host-tools.ts';
import { isPresent, localImage } from '../vm/images.ts';
import { stateDir } from '../vm/state-dir.ts';

const MIN_FREE = 2 * 1024 ** 3;

export async function doctor(config: Config, options: { recheck?: boolean }, out: (s: string) => void): Promise<number> {
  const problems: string[] = [];
  const ok = (what: string) => out(`  ok    ${what}`);
  const bad = (what: string, fix: string) => {
    out(`  FAIL  ${what}`);
    problems.push(fix);
  };
  const dirs = stateDir(config.stateDir);

  out('host tools');
  const paths: Record<string, string | undefined> = {};
  for (const [key, tool] of Object.entries(hostTools)) {
    paths[key] = await findTool(tool);
    if (paths[key]) ok(`${tool.command} (${paths[key]})`);
    else bad(`${tool.command} missing (${tool.purpose})`, `install ${tool.command}: apt-get install ${tool.debianPackage}`);
  }
  if (paths.qemu) {
    const version = (await execa(paths.qemu, ['--version'], { reject: false })).stdout.split('\n')[0];
    ok(`QEMU version: ${version}`);
  }

  out('images');
  let probeKernel: { kernel?: string; initrd?: string } = {};
  for (const [label, spec] of Object.entries(config.images)) {
    const image = localImage(dirs.images, label, spec);
    if (await isPresent(image)) {
      ok(`${label} present`);
      if (image.kernel && !probeKernel.kernel) probeKernel = { kernel: image.kernel, initrd: image.initrd };
    } else {
      out(`  -     ${label} not present (${spec.builtin ? `forgevm image build ${label}` : `forgevm image pull ${label}`})`);
    }
  }
  if (!probeKernel.kernel) bad('no image with a kernel is present, so KVM cannot be probed', 'build the test image: forgevm image build tiny');

  out('guest Node');
  const node = await cachedHostNode(guestNodeCacheIn(dirs.images));
  const nodeName = `Node.js ${GUEST_NODE_RELEASE.version} for JavaScript actions`;
  if (node) ok(`${nodeName} cached in ${node.dir}`);
  else out(`  -     ${nodeName} not cached (fetched from the npm registry by "forgevm image build tiny", or by the first job that needs it)`);

  out('acceleration');
  if (paths.qemu) {
    const verdict = await probeAccelerator({ qemu: paths.qemu, cacheFile: dirs.accelCache, fresh: options.recheck, ...probeKernel });
    if (verdict.accel === 'kvm') ok(verdict.reason);
    else out(`  warn  ${verdict.reason}${verdict.reason.startsWith('KVM present') ? '' : ''}`);
  }

  out('disk');
  const free = await freeBytes(dirs.root);
  if (free >= MIN_FREE) ok(`${formatBytes(free)} free in ${dirs.root}`);
  else bad(`only ${formatBytes(free)} free in ${dirs.root}`, `free disk space or set FORGEVM_STATE_DIR to a larger disk (jobs need ≥ ${formatBytes(MIN_FREE)})`);

  if (problems.length === 0) {
    out('\nready to run jobs');
    return 0;
  }
  out('\nto fix:');
  for (const fix of problems) out(`  - ${fix}`);
  return 1;
}
