/**
 * The VM engine with real `tiny` guests under TCG (KVM where it works): what a job sees and
 * what it leaves behind.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinImages } from '../src/config/catalog.ts';
import { consoleLogPath, runJob, type JobRequest } from '../src/job/run-job.ts';
import { localImage } from '../src/vm/images.ts';
import { jobFromYaml, logIn, stepsOf } from './support/job-fixture.ts';
import { jobFolders, qemuProcessesUnder, vmHarness, type VmHarness } from './support/vm-harness.ts';

let h: VmHarness;
let repo: { dir: string; sha: string };
let logs: string;

async function makeRepo(): Promise<{ dir: string; sha: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fvm-repo-'));
  const git = (...args: string[]) => execa('git', args, { cwd: dir });
  await git('init', '-q', '-b', 'main');
  await writeFile(join(dir, 'hello.txt'), 'hello from the workspace\n');
  await git('add', '.');
  await git('-c', 'user.name=t', '-c', 'user.email=t@e', 'commit', '-q', '-m', 'first');
  return { dir, sha: (await git('rev-parse', 'HEAD')).stdout.trim() };
}

function request(id: string, yaml: string, extra: Partial<JobRequest> = {}): JobRequest {
  const instance = jobFromYaml(yaml);
  return {
    id,
    label: instance.runsOn,
    workspace: { repoDir: repo.dir, sha: repo.sha, branch: 'main' },
    repoName: 'repo',
    log: logIn(logs, id),
    runSteps: stepsOf(instance, repo.sha),
    ...extra,
  };
}

/** Alive and not a zombie (a dead QEMU waits as a zombie until init reaps it). */
async function isRunning(pid: number): Promise<boolean> {
  try {
    return !/^State:\s+Z/m.test(await readFile(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

beforeAll(async () => {
  const { builtin: _, ...tiny } = builtinImages.tiny!;
  h = await vmHarness({
    // Boots the same kernel, but its root disk never appears: SSH can never come up.
    broken: { ...tiny, cmdline: 'console=ttyS0 root=/dev/nonexistent rw', memoryMiB: 512, bootTimeoutSeconds: 12 },
    // tiny with QEMU's restrict=on.
    'tiny-isolated': { ...tiny, network: 'isolated' },
  });
  repo = await makeRepo();
  logs = await mkdtemp(join(tmpdir(), 'fvm-logs-'));
});

describe('a job in a fresh VM', () => {
  it('passes, sees the workspace with git, and leaves the base image untouched', async () => {
    const image = localImage(h.engine.imagesDir, 'tiny', h.catalog.tiny!);
    const before = await sha256(image.disk);
    const result = await runJob(
      h.engine,
      request(
        'pass',
        `
jobs:
  build:
    runs-on: tiny
    steps:
      - name: Workspace
        run: |
          test "$(cat hello.txt)" = "hello from the workspace"
          test "$(git rev-parse HEAD)" = "$GITHUB_SHA"
          test "$(git rev-parse --abbrev-ref HEAD)" = main
          git status --porcelain | wc -l | grep -qx 0
          ! git remote | grep .
          echo "workspace ok in $PWD"
      - name: Scratch writes go to the overlay
        run: dd if=/dev/zero of=/root/scratch bs=1M count=8 2>/dev/null && sync
`,
      ),
    );
    const log = await readFile(result.logPath, 'utf8');
    expect(result.error).toBeUndefined();
    expect(result.conclusion, log).toBe('success');
    expect(result.steps.map((s) => [s.name, s.conclusion])).toEqual([
      ['Workspace', 'success'],
      ['Scratch writes go to the overlay', 'success'],
    ]);
    expect(log).toMatch(/workspace ok in \/root\/work\/repo/);
    expect(await sha256(image.disk)).toBe(before);
    expect(await jobFolders(h.stateRoot)).toEqual([]);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
  });

  it('fails with the exit code and stderr of the failing step, and keeps the console log', async () => {
    const live: Buffer[] = [];
    const result = await runJob(
      h.engine,
      request(
        'fail',
        `
jobs:
  test:
    runs-on: tiny
    steps:
      - run: echo "about to fail"
      - name: Breaks
        run: |
          echo "compiler says no" >&2
          exit 3
      - name: Never runs
        run: echo unreachable
`,
        { onConsole: (chunk) => live.push(chunk) },
      ),
    );
    const log = await readFile(result.logPath, 'utf8');
    expect(result.conclusion).toBe('failure');
    const failed = result.steps.find((s) => s.name === 'Breaks')!;
    expect(failed.exitCode).toBe(3);
    expect(failed.conclusion).toBe('failure');
    expect(log.slice(failed.log.start, failed.log.end)).toContain('compiler says no');
    expect(result.steps.find((s) => s.name === 'Never runs')?.conclusion ?? 'skipped').toBe('skipped');
    expect(log).not.toContain('unreachable\n');
    // The serial console was captured from the first kernel line to the guest's own markers.
    const consoleText = await readFile(consoleLogPath(h.engine, 'fail'), 'utf8');
    expect(consoleText).toMatch(/Linux version|tiny: .*root/);
    expect(consoleText).toMatch(/tiny: .*sshd up/);
    // …and streamed live while the VM booted.
    expect(Buffer.concat(live).toString()).toMatch(/tiny: .*seed applied/);
  });
});

describe('many VMs', () => {
  it('runs 4 at once on distinct loopback ports and leaves nothing behind', async () => {
    const ports: number[] = [];
    const yaml = `
jobs:
  one:
    runs-on: tiny
    steps:
      - run: echo "I am $(hostname)"
`;
    const results = await Promise.all(
      [1, 2, 3, 4].map((n) => runJob(h.engine, request(`many${n}`, yaml, { onBooted: ({ port }) => ports.push(port) }))),
    );
    expect(results.map((r) => r.conclusion)).toEqual(['success', 'success', 'success', 'success']);
    expect(new Set(ports).size).toBe(4);
    for (const [i, r] of results.entries()) expect(await readFile(r.logPath, 'utf8')).toContain(`I am many${i + 1}`);
    expect(await jobFolders(h.stateRoot)).toEqual([]);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
    const listening = (await execa('ss', ['-Htln'])).stdout;
    for (const port of ports) expect(listening).not.toMatch(new RegExp(`:${port}\\b`));
  }, 300_000);
});

describe('the guest network', () => {
  it('reaches the host through NAT by default, and nothing at all when the image is isolated', async () => {
    // A service on the host's loopback, as a database or forgevm itself would be.
    const peers: string[] = [];
    const server = createServer((socket) => {
      peers.push(socket.remoteAddress ?? '?');
      socket.end('host says hi\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const probe = (label: string) => `
jobs:
  probe:
    runs-on: ${label}
    steps:
      - name: Connect to the host
        run: |
          if timeout 10 bash -c 'exec 3<>/dev/tcp/10.0.2.2/${port} && head -n1 <&3'; then echo "REACHED"; else echo "UNREACHABLE"; fi
`;
    try {
      const [nat, isolated] = await Promise.all([runJob(h.engine, request('net-nat', probe('tiny'))), runJob(h.engine, request('net-isolated', probe('tiny-isolated')))]);
      const natLog = await readFile(nat.logPath, 'utf8');
      const isolatedLog = await readFile(isolated.logPath, 'utf8');
      expect(nat.conclusion, natLog).toBe('success');
      expect(natLog).toMatch(/host says hi\n[^]*REACHED/);
      // The isolated guest still ran its job over the SSH forward, but its connection went nowhere.
      expect(isolated.conclusion, isolatedLog).toBe('success');
      expect(isolatedLog).toContain('UNREACHABLE');
      expect(isolatedLog).not.toContain('host says hi');
      expect(peers).toEqual(['127.0.0.1']);
    } finally {
      server.close();
    }
  }, 300_000);
});

describe('a guest that never brings SSH up', () => {
  it('fails at the boot deadline with the last console lines, and cleans up', async () => {
    const started = Date.now();
    const result = await runJob(h.engine, { ...request('broken', 'jobs:\n  x:\n    runs-on: broken\n    steps:\n      - run: "true"\n') });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(result.conclusion).toBe('failure');
    expect(result.error).toMatch(/^SSH to the guest did not come up before the boot deadline/);
    expect(result.error).toMatch(/last console lines:/);
    expect(result.consoleTail).toBeTruthy();
    expect(await jobFolders(h.stateRoot)).toEqual([]);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
  });
});

describe('a forgevm killed with SIGKILL mid-job', () => {
  it('takes its QEMU with it, and the next start sweeps the job folder', async () => {
    const { spawn } = await import('node:child_process');
    const { createEngine } = await import('../src/vm/engine.ts');
    const { stateDir, defaultStateRoot } = await import('../src/vm/state-dir.ts');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/job-child.ts', h.stateRoot, repo.dir, repo.sha, stateDir(defaultStateRoot()).accelCache],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let qemuPid = 0;
    await new Promise<void>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const booted = /booted (\d+)/.exec(text);
        if (booted) qemuPid = Number(booted[1]);
        if (text.includes('step-started')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    expect(qemuPid).toBeGreaterThan(0);
    expect(await jobFolders(h.stateRoot)).toEqual(['crashme']);
    child.kill('SIGKILL');
    // The parent-death signal reaches QEMU at once; give the kernel a moment to reap it.
    for (let i = 0; i < 50 && (await qemuProcessesUnder(h.stateRoot)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
    expect(await isRunning(qemuPid)).toBe(false);
    // The folder is still there until a forgevm starts again and sweeps it.
    expect(await jobFolders(h.stateRoot)).toEqual(['crashme']);
    const messages: string[] = [];
    await createEngine({ stateDir: h.stateRoot, catalog: h.catalog, accelCacheFile: stateDir(defaultStateRoot()).accelCache, log: (l) => messages.push(l) });
    expect(await jobFolders(h.stateRoot)).toEqual([]);
    expect(messages.join('\n')).toMatch(/swept 1 job folder/);
  }, 180_000);
});
