/**
 * One job VM: boot it in its job folder, find its SSH port, stop it. The folder holds the
 * overlay, the seed, the QMP socket and the console log, and goes away with the VM.
 */
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { ImageSpec } from '../config/catalog.ts';
import { settleAll } from '../util/settle-all.ts';
import { readRecord, writeRecord } from './job-dir.ts';
import { createOverlay } from './overlay.ts';
import { type Accelerator, qemuArgs } from './qemu-args.ts';
import { QmpClient, parseForwardedPort } from './qmp.ts';
import { generateJobKeys, type JobKeys, writeSeedIso } from './seed.ts';

/** An image whose files are on disk, with absolute paths. */
export interface LocalImage {
  label: string;
  spec: ImageSpec;
  disk: string;
  kernel?: string;
  initrd?: string;
}

export interface BootOptions {
  /** The job folder (see job-dir.ts), created by the caller, who also removes it. */
  dir: string;
  /** The guest's instance id and hostname. */
  id: string;
  image: LocalImage;
  accel: Accelerator;
  qemu: string;
  cpus?: number;
  memoryMiB?: number;
}

export interface Vm {
  id: string;
  dir: string;
  port: number;
  keys: JobKeys;
  user: string;
  consoleLog: string;
  pid: number;
  /** Settles when QEMU exits, with its stderr (last lines). */
  exited: Promise<{ code: number | null; stderr: string }>;
  /** Graceful stop: powerdown, then SIGTERM, then SIGKILL, each wait bounded. */
  stop(): Promise<void>;
}

export class VmStartError extends Error {}

const POWERDOWN_WAIT_MS = 5_000;
const TERM_WAIT_MS = 3_000;

export async function bootVm(options: BootOptions): Promise<Vm> {
  const dir = options.dir;
  let child: ResultPromise | undefined;
  let qmp: QmpClient | undefined;
  try {
    const overlay = join(dir, 'overlay.qcow2');
    const keys = generateJobKeys();
    // Independent host work before QEMU can start: do it side by side.
    const prepared = await settleAll<[void, string]>([createOverlay(options.image, overlay), writeSeedIso(dir, options.id, keys)]);
    if (prepared.error) throw prepared.error;
    const seedIso = prepared.values[1]!;
    const consoleLog = join(dir, 'console.log');
    const qmpSocket = join(dir, 'qmp.sock');
    const args = qemuArgs({
      accel: options.accel,
      cpus: options.cpus ?? options.image.spec.cpus,
      memoryMiB: options.memoryMiB ?? options.image.spec.memoryMiB,
      overlay,
      seedIso,
      qmpSocket,
      consoleLog,
      pidFile: join(dir, 'qemu.pid'),
      kernel: options.image.kernel,
      initrd: options.image.initrd,
      cmdline: options.image.spec.cmdline,
      restrictNetwork: options.image.spec.network === 'isolated',
    });
    // setpriv: the kernel SIGKILLs QEMU if forgevm dies, even by SIGKILL.
    child = execa('setpriv', ['--pdeathsig', 'KILL', '--', options.qemu, ...args], {
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
      reject: false,
      buffer: false,
    });
    const pid = child.pid;
    if (!pid) throw new VmStartError(`could not start ${options.qemu}`);
    await writeRecord(dir, { ...(await readRecord(dir))!, qemuPid: pid });

    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const running = child;
    const exited = running.then((result) => ({ code: result.exitCode ?? null, stderr: stderr.trim() }));

    const earlyExit = exited.then(({ code, stderr: text }) => {
      throw new VmStartError(`QEMU exited during start (code ${code}): ${lastLine(text) || 'no error output'}`);
    });
    qmp = await Promise.race([QmpClient.connect(qmpSocket), earlyExit]);
    const port = parseForwardedPort(await Promise.race([qmp.hmp('info usernet'), earlyExit]));
    if (!port) throw new VmStartError('QEMU did not report the forwarded SSH port (info usernet)');
    earlyExit.catch(() => {}); // later exits are reported through `exited`

    const vm: Vm = {
      id: options.id,
      dir,
      port,
      keys,
      user: options.image.spec.user,
      consoleLog,
      pid,
      exited,
      stop: once(() => stopQemu(running, qmp, exited)),
    };
    return vm;
  } catch (error) {
    if (child) {
      child.kill('SIGKILL');
      await child;
    }
    qmp?.close();
    throw error;
  }
}

async function stopQemu(
  child: ResultPromise,
  qmp: QmpClient | undefined,
  exited: Promise<unknown>,
): Promise<void> {
  const waitExit = (ms: number) =>
    Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
  if (child.exitCode === undefined || child.exitCode === null) {
    try {
      await qmp?.execute('system_powerdown');
    } catch {
      // QMP gone: go straight to signals
    }
    if (!(await waitExit(POWERDOWN_WAIT_MS))) {
      child.kill('SIGTERM');
      if (!(await waitExit(TERM_WAIT_MS))) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  }
  qmp?.close();
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= fn());
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).at(-1) ?? '';
}
