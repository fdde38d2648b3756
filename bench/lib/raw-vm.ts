/**
 * The baseline: the same `tiny` guest started by hand with plain tools. The QEMU arguments come
 * from qemuArgs() (same machine, CPU, memory, disks, seed and netdev as forgevm), the overlay
 * from `qemu-img create`, the seed from writeSeedIso(); then OpenSSH is retried until a command
 * runs, with the guest's host key pinned in a known_hosts file built from the seed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { qemuArgs, type Accelerator } from '../../src/vm/qemu-args.ts';
import { generateJobKeys, writeSeedIso } from '../../src/vm/seed.ts';
import type { TinyImage } from '../../src/vm/image/tiny/build.ts';
import { sleep } from './stats.ts';

export interface RawVm {
  port: number;
  /** OpenSSH arguments up to (not including) the remote command. */
  sshArgs: string[];
  /** ms from the start of raw setup (keys, overlay, seed) to QEMU being spawned. */
  setupMs: number;
  started: number;
  stop(): Promise<void>;
}

export interface RawBootOptions {
  qemu: string;
  accel: Accelerator;
  tiny: TinyImage;
  cmdline: string;
  cpus: number;
  memoryMiB: number;
}

/** A free loopback port, picked by the OS (the tiny window before QEMU takes it is acceptable here). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('could not pick a free port');
  return address.port;
}

export async function startRawVm(options: RawBootOptions): Promise<RawVm> {
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'fvb-raw-'));
  const keys = generateJobKeys();
  const overlay = join(dir, 'overlay.qcow2');
  const [, seedIso, port] = await Promise.all([
    execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', options.tiny.disk, '-F', 'qcow2', overlay]),
    writeSeedIso(dir, 'raw-bench', keys),
    freePort(),
  ]);
  const keyFile = join(dir, 'id_ed25519');
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(keyFile, keys.client.private, { mode: 0o600 });
  const hostKey = keys.host.public.trim().split(/\s+/).slice(0, 2).join(' ');
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  const args = qemuArgs({
    accel: options.accel,
    cpus: options.cpus,
    memoryMiB: options.memoryMiB,
    overlay,
    seedIso,
    qmpSocket: join(dir, 'qmp.sock'),
    consoleLog: join(dir, 'console.log'),
    pidFile: join(dir, 'qemu.pid'),
    kernel: options.tiny.kernel,
    initrd: options.tiny.initrd,
    cmdline: options.cmdline,
  }).map((arg) => arg.replace('hostfwd=tcp:127.0.0.1:0-:22', `hostfwd=tcp:127.0.0.1:${port}-:22`));
  const setupMs = performance.now() - started;
  const child: ChildProcess = spawn(options.qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  child.once('exit', (code) => {
    if (code) process.stderr.write(`raw qemu exited with ${code}: ${stderr}\n`);
  });
  const sshArgs = [
    '-i', keyFile,
    '-p', String(port),
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=5',
    '-o', 'LogLevel=ERROR',
    'root@127.0.0.1',
  ];
  return {
    port,
    sshArgs,
    setupMs,
    started,
    async stop() {
      child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Retry `ssh … true` until it succeeds; resolves with the time it did (performance.now()). */
export async function waitForSsh(vm: RawVm, deadlineMs = 120_000, pauseMs = 100): Promise<number> {
  const until = performance.now() + deadlineMs;
  let last = '';
  while (performance.now() < until) {
    const result = await execa('ssh', [...vm.sshArgs, 'true'], { reject: false, stdin: 'ignore' });
    if (result.exitCode === 0) return performance.now();
    last = result.stderr.trim().split('\n').at(-1) ?? '';
    await sleep(pauseMs);
  }
  throw new Error(`raw guest: ssh did not succeed within ${deadlineMs} ms (last: ${last})`);
}
