/**
 * One `tiny` VM held open for streaming measurements: forgevm's own SSH path (connectSsh,
 * SshGuest, the step executor, JobLog on disk) and OpenSSH side by side against the same guest.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { JobLog } from '../../src/log/job-log.ts';
import { runSteps } from '../../src/job/steps.ts';
import ssh2 from 'ssh2';
import { CIPHERS, connectSsh, type SshClient } from '../../src/ssh/connect.ts';
import { SshGuest } from '../../src/ssh/session.ts';
import { createJobDir, removeJobDir } from '../../src/vm/job-dir.ts';
import { lookupImage } from '../../src/vm/images.ts';
import { bootVm, type Vm } from '../../src/vm/vm.ts';
import type { BenchSetup } from './setup.ts';
import { jobInstance } from './forgevm-job.ts';

export interface StreamTiming {
  bytes: number;
  /** First byte to last byte of the output, ms. */
  streamMs: number;
  /** Whole command (channel open to exit), ms. */
  commandMs: number;
  /** The cipher the connection negotiated. */
  cipher: string;
}

export interface StreamVm {
  /** The step executor runs `run` in the guest, its output going into a JobLog file. */
  forgevm(run: string, logsDir: string): Promise<StreamTiming>;
  /** `ssh … <command>` with stdout read (and counted) by this process. */
  openssh(command: string): Promise<StreamTiming>;
  close(): Promise<void>;
}

export async function openStreamVm(setup: BenchSetup): Promise<StreamVm> {
  const image = lookupImage(setup.catalog, setup.engine.imagesDir, 'tiny');
  const id = `stream-${Date.now().toString(36)}`;
  const dir = await createJobDir(setup.engine.jobsRoot, id);
  let vm: Vm | undefined;
  let ssh: SshClient | undefined;
  try {
    vm = await bootVm({ dir, id, image, accel: setup.engine.accel.accel, qemu: setup.engine.qemu });
    let cipher = '?';
    ssh = await connectSsh({
      port: vm.port,
      user: vm.user,
      privateKey: vm.keys.client.private,
      hostPublicKey: vm.keys.host.public,
      deadline: Date.now() + 300_000,
    });
    cipher = await negotiatedByForgevm(vm);
    const guest = new SshGuest(ssh, vm.user, '/root', '/tmp/forgevm');
    const sshDir = await mkdtemp(join(tmpdir(), 'fvb-ssh-'));
    const keyFile = join(sshDir, 'id');
    const knownHosts = join(sshDir, 'known_hosts');
    await writeFile(keyFile, vm.keys.client.private, { mode: 0o600 });
    await writeFile(knownHosts, `[127.0.0.1]:${vm.port} ${vm.keys.host.public.trim().split(/\s+/).slice(0, 2).join(' ')}\n`);
    const control = join(sshDir, 'control');
    const sshArgs = [
      '-i', keyFile, '-p', String(vm.port),
      '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', '-o', `ControlPath=${control}`,
      'root@127.0.0.1',
    ];
    // One master connection, so each measured command costs a channel, as forgevm's does.
    await execa('ssh', ['-M', '-f', '-N', '-o', 'ControlPersist=600', ...sshArgs]);
    const opensshCipher = await execa('ssh', ['-v', '-o', 'ControlPath=none', ...sshArgs, 'true'], { reject: false }).then(
      (r) => /cipher: (\S+) MAC: (\S+)/.exec(r.stderr)?.slice(1).join(' + ') ?? '?',
    );
    const running = vm;
    const client = ssh;
    return {
      async forgevm(run, logsDir) {
        const log = new JobLog(join(logsDir, `${id}-${Date.now()}.log`), 1024 ** 3);
        let first = 0;
        let last = 0;
        let bytes = 0;
        log.onData((chunk, channel) => {
          if (channel !== 'stdout') return;
          if (!first) first = performance.now();
          last = performance.now();
          bytes += chunk.length;
        });
        const instance = jobInstance(run);
        const started = performance.now();
        const outcome = await runSteps(
          guest,
          log,
          {
            instance,
            github: { event_name: 'push', event: {}, sha: setup.repo.sha, ref: 'refs/heads/main', ref_name: 'main', ref_type: 'branch', head_ref: '', base_ref: '', repository: 'bench/repo', repository_owner: 'bench', run_id: '1', run_number: '1', run_attempt: '1', actor: 'bench', workflow: 'bench', server_url: 'https://github.com', api_url: 'https://api.github.com' },
            needs: {},
            inputs: {},
            vars: {},
            workspace: '/root',
            tempDir: '/tmp/forgevm',
            defaultTimeoutMinutes: 10,
          },
          new AbortController().signal,
        );
        const commandMs = performance.now() - started;
        log.close();
        await rm(log.path, { force: true });
        if (outcome.conclusion !== 'success') throw new Error(`forgevm step failed: ${outcome.error ?? outcome.conclusion}`);
        return { bytes, streamMs: last - first, commandMs, cipher };
      },
      async openssh(command) {
        const started = performance.now();
        const child = spawn('ssh', [...sshArgs, command], { stdio: ['ignore', 'pipe', 'inherit'] });
        let first = 0;
        let last = 0;
        let bytes = 0;
        child.stdout.on('data', (chunk: Buffer) => {
          if (!first) first = performance.now();
          last = performance.now();
          bytes += chunk.length;
        });
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        if (code !== 0) throw new Error(`ssh exited with ${code}`);
        return { bytes, streamMs: last - first, commandMs: performance.now() - started, cipher: opensshCipher };
      },
      async close() {
        await execa('ssh', ['-O', 'exit', ...sshArgs], { reject: false });
        client.end();
        await running.stop();
        await rm(sshDir, { recursive: true, force: true });
        await removeJobDir(dir);
      },
    };
  } catch (error) {
    ssh?.end();
    await vm?.stop();
    await removeJobDir(dir);
    throw error;
  }
}

/** What forgevm's cipher preference (CIPHERS) negotiates with this guest, from a separate handshake. */
function negotiatedByForgevm(vm: Vm): Promise<string> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    client.on('handshake', (negotiated) => {
      const { cipher, mac } = negotiated.cs;
      resolve(cipher.includes('poly1305') || cipher.includes('gcm') ? cipher : `${cipher} + ${mac}`);
      client.end();
    });
    client.on('error', () => resolve('?'));
    client.connect({ host: '127.0.0.1', port: vm.port, username: vm.user, privateKey: vm.keys.client.private, algorithms: { cipher: [...CIPHERS] } });
  });
}
