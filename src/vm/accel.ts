/**
 * Decide between KVM and TCG by booting, not by looking at /dev/kvm: on some hosts the device
 * exists and QEMU reports KVM enabled, yet every guest hangs in firmware or at kernel entry.
 * The probe boots a real kernel under KVM with a deadline and looks for the kernel handing over
 * to init on the serial console. The verdict is cached per host (QEMU version, host kernel).
 */
import { constants } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { execa } from 'execa';
import type { Accelerator } from './qemu-args.ts';

export interface AccelVerdict {
  accel: Accelerator;
  /** One line a person can read: why this accelerator. */
  reason: string;
}

interface ProbeCache {
  key: string;
  verdict: AccelVerdict;
}

export interface ProbeOptions {
  qemu: string;
  cacheFile: string;
  /** A kernel (and initrd) to boot; without one the probe cannot prove KVM works. */
  kernel?: string;
  initrd?: string;
  timeoutMs?: number;
  /** Skip the cache (forgevm doctor --recheck). */
  fresh?: boolean;
}

const BOOT_MARKERS = ['Run /init as init process', 'Freeing unused kernel image', 'Run /sbin/init as init process'];

export async function probeAccelerator(options: ProbeOptions): Promise<AccelVerdict> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: 'KVM not available (/dev/kvm missing or not writable), using TCG' };
  }
  if (!options.kernel) {
    return { accel: 'tcg', reason: 'KVM present but unverified (no kernel image to probe with yet), using TCG' };
  }
  const version = (await execa(options.qemu, ['--version'], { reject: false })).stdout.split('\n')[0] ?? '';
  const key = `${version}|${release()}|${options.kernel}`;
  if (!options.fresh) {
    const cached = await readCache(options.cacheFile);
    if (cached?.key === key) return cached.verdict;
  }
  const verdict = await bootUnderKvm(options);
  await writeFile(options.cacheFile, JSON.stringify({ key, verdict } satisfies ProbeCache));
  return verdict;
}

async function readCache(file: string): Promise<ProbeCache | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as ProbeCache;
  } catch {
    return undefined;
  }
}

async function bootUnderKvm(options: ProbeOptions): Promise<AccelVerdict> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const args = [
    '-machine', 'pc,accel=kvm', '-cpu', 'host', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
    '-kernel', options.kernel!,
    ...(options.initrd ? ['-initrd', options.initrd] : []),
    '-append', 'console=ttyS0 panic=-1 loglevel=6',
    '-no-reboot',
  ];
  const child = execa('setpriv', ['--pdeathsig', 'KILL', '--', options.qemu, ...args], {
    reject: false,
    stdin: 'ignore',
    all: true,
    buffer: false,
  });
  let output = '';
  const booted = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.all?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      if (BOOT_MARKERS.some((marker) => output.includes(marker))) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void child.then(() => {
      clearTimeout(timer);
      resolve(BOOT_MARKERS.some((marker) => output.includes(marker)));
    });
  });
  child.kill('SIGKILL');
  await child;
  if (booted) return { accel: 'kvm', reason: 'KVM usable (a probe kernel booted under KVM)' };
  const lastLine = output.trim().split('\n').filter(Boolean).at(-1)?.trim();
  const why = lastLine ? `the probe guest stopped at "${lastLine.slice(0, 120)}"` : `the probe guest printed nothing in ${timeoutMs / 1000}s`;
  return { accel: 'tcg', reason: `KVM present but unusable (${why}), using TCG` };
}
