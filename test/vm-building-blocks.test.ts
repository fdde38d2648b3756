import { createServer } from 'node:http';
import { mkdtemp, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { buildCatalog, resolveImage } from '../src/config/catalog.ts';
import { qemuArgs } from '../src/vm/qemu-args.ts';
import { parseForwardedPort } from '../src/vm/qmp.ts';
import { generateJobKeys, userData, writeSeedIso } from '../src/vm/seed.ts';
import { envFile, shellJoin, shellQuote } from '../src/ssh/shell-quote.ts';
import { ChecksumMismatchError, downloadImageFile, findInSums } from '../src/vm/image/pull.ts';
import { sweepOrphans } from '../src/vm/sweep.ts';
import { processStart, processStartTicks } from '../src/vm/job-dir.ts';
import { JobLog } from '../src/log/job-log.ts';

const tmp = (prefix: string) => mkdtemp(join(tmpdir(), `forgevm-${prefix}-`));

describe('QEMU command line', () => {
  const base = {
    accel: 'tcg' as const,
    cpus: 2,
    memoryMiB: 1024,
    overlay: '/j/overlay.qcow2',
    seedIso: '/j/seed.iso',
    qmpSocket: '/j/qmp.sock',
    consoleLog: '/j/console.log',
    pidFile: '/j/qemu.pid',
  };

  it('forwards SSH on loopback only, with an OS-chosen port', () => {
    const args = qemuArgs(base);
    const netdev = args[args.indexOf('-netdev') + 1];
    expect(netdev).toContain('hostfwd=tcp:127.0.0.1:0-:22');
    expect(netdev).not.toMatch(/hostfwd=tcp::/);
  });

  it('puts the seed on an IDE CD-ROM and the overlay on virtio', () => {
    const drives = qemuArgs(base).flatMap((arg, i, all) => (arg === '-drive' ? [all[i + 1]!] : []));
    expect(drives).toContainEqual(expect.stringMatching(/^file=\/j\/overlay\.qcow2,if=virtio,format=qcow2/));
    expect(drives).toContain('file=/j/seed.iso,media=cdrom,if=ide,readonly=on');
  });

  it('uses the host CPU under KVM and the emulated max CPU under TCG', () => {
    const cpu = (accel: 'kvm' | 'tcg') => {
      const args = qemuArgs({ ...base, accel });
      return [args[args.indexOf('-machine') + 1], args[args.indexOf('-cpu') + 1]];
    };
    expect(cpu('kvm')).toEqual(['pc,accel=kvm', 'host']);
    expect(cpu('tcg')).toEqual(['pc,accel=tcg', 'max']);
  });

  it('boots a kernel directly only when the image has one', () => {
    expect(qemuArgs(base)).not.toContain('-kernel');
    const args = qemuArgs({ ...base, kernel: '/i/vmlinuz', initrd: '/i/initrd', cmdline: 'console=ttyS0' });
    expect(args.slice(args.indexOf('-kernel'))).toEqual(['-kernel', '/i/vmlinuz', '-initrd', '/i/initrd', '-append', 'console=ttyS0']);
  });

  it('restricts the network on request', () => {
    const args = qemuArgs({ ...base, restrictNetwork: true });
    expect(args[args.indexOf('-netdev') + 1]).toMatch(/,restrict=on$/);
  });
});

describe('QMP', () => {
  it('reads the forwarded port from "info usernet"', () => {
    const text = [
      'VLAN -1 (net0):',
      '  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ',
      '  TCP[HOST_FORWARD]  13       127.0.0.1 41235       10.0.2.15    22     0     0',
    ].join('\r\n');
    expect(parseForwardedPort(text)).toBe(41235);
    expect(parseForwardedPort('nothing here')).toBeUndefined();
  });
});

describe('cloud-init seed', () => {
  it('authorizes the job key and carries the pinned host key', () => {
    const keys = generateJobKeys();
    const text = userData('forgevm-abc', keys);
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    expect(text).toContain(`  - ${keys.client.public}`);
    expect(text).toContain(`  ed25519_public: ${keys.host.public}`);
    for (const line of keys.host.private.trim().split('\n')) expect(text).toContain(`    ${line}\n`);
    expect(keys.client.public).not.toBe(keys.host.public);
  });

  it('builds an ISO9660 volume labelled cidata', async () => {
    const dir = await tmp('seed');
    const iso = await writeSeedIso(dir, 'forgevm-abc', generateJobKeys());
    const header = (await readFile(iso)).subarray(0x8000, 0x8000 + 72);
    expect(header.subarray(1, 6).toString()).toBe('CD001');
    expect(header.subarray(40, 72).toString().trim()).toBe('cidata');
  });
});

describe('shell quoting', () => {
  const hostile = ["it's", '$(touch /tmp/pwned)', '`id`', 'a;b', 'new\nline', '"q"', '*', '--flag', 'x=y', ''];

  it('passes every hostile argument through sh unchanged', async () => {
    const result = await execa('sh', ['-c', `printf '%s\\0' ${shellJoin(hostile)}`]);
    expect(result.stdout.split('\0').slice(0, -1)).toEqual(hostile);
  });

  it('exports data from an env file without evaluating it', async () => {
    const dir = await tmp('env');
    await writeFile(join(dir, 'env'), envFile({ BRANCH: "feat/$(touch x)'; rm -rf /", MSG: 'line1\nline2' }));
    const result = await execa('sh', ['-c', `. ./env && printf '%s|%s' "$BRANCH" "$MSG"`], { cwd: dir });
    expect(result.stdout).toBe("feat/$(touch x)'; rm -rf /|line1\nline2");
    expect(await readdir(dir)).toEqual(['env']);
  });

  it('passes action input names a shell cannot export (INPUT_NODE-VERSION) through forgevm_exec', async () => {
    const dir = await tmp('env-dash');
    await writeFile(join(dir, 'env'), envFile({ PLAIN: 'p', 'INPUT_NODE-VERSION': "20 $(id)'" }));
    const result = await execa('sh', ['-c', `. ./env && forgevm_exec printenv INPUT_NODE-VERSION PLAIN`], { cwd: dir });
    expect(result.stdout).toBe("20 $(id)'\np");
  });

  it('rejects names a shell would interpret and NUL bytes', () => {
    expect(() => envFile({ 'A;B': 'x' })).toThrow(/invalid environment variable name/);
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('image catalog', () => {
  it('ships tiny, Debian and Ubuntu images', () => {
    const { catalog, problems } = buildCatalog();
    expect(problems).toEqual([]);
    expect(Object.keys(catalog)).toEqual(expect.arrayContaining(['tiny', 'debian-12', 'debian-13', 'ubuntu-24.04', 'ubuntu-22.04']));
    expect(catalog.tiny!.kernel).toBeDefined();
    expect(resolveImage(catalog, 'ubuntu-latest').label).toBe('ubuntu-24.04');
  });

  it('accepts a user image and names each bad field', () => {
    const good = buildCatalog({ mine: { disk: { path: '/srv/mine.qcow2' }, user: 'ci', memoryMiB: 4096 } });
    expect(good.catalog.mine).toMatchObject({ format: 'qcow2', cpus: 2, memoryMiB: 4096 });
    const bad = buildCatalog({ broken: { disk: { url: 'https://x/y.img', checksum: 'md5:abc' }, user: 'ci', cpus: 0 } });
    expect(bad.problems.join('\n')).toMatch(/images\.broken\.cpus/);
    expect(bad.problems.join('\n')).toMatch(/images\.broken\.disk/);
  });

  it('names the known labels when one is unknown', () => {
    const { catalog } = buildCatalog();
    expect(() => resolveImage(catalog, 'windows-11')).toThrow(/unknown image label "windows-11".*tiny/);
  });
});

describe('image download', () => {
  async function serve(files: Record<string, Buffer | ((res: import('node:http').ServerResponse) => void)>) {
    const server = createServer((req, res) => {
      const file = files[req.url ?? ''];
      if (!file) return void res.writeHead(404).end();
      if (typeof file === 'function') return file(res);
      res.writeHead(200, { 'content-length': file.length }).end(file);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
  }
  const body = Buffer.alloc(300_000, 7);
  const sha256 = createHash('sha256').update(body).digest('hex');

  it('finds a digest in a SHA256SUMS list', () => {
    expect(findInSums(`${sha256}  disk.img\n${'0'.repeat(64)} *other.img\n`, 'disk.img')).toBe(sha256);
    expect(findInSums(`${'0'.repeat(64)} *other.img`, 'other.img')).toBe('0'.repeat(64));
    expect(findInSums('garbage', 'disk.img')).toBeUndefined();
  });

  it('downloads, verifies against a sums file and renames into place', async () => {
    const http = await serve({ '/disk.img': body, '/SHA256SUMS': Buffer.from(`${sha256}  disk.img\n`) });
    const dir = await tmp('pull');
    const seen: number[] = [];
    await downloadImageFile(
      { url: `${http.url}/disk.img`, checksum: { sums: `${http.url}/SHA256SUMS`, algorithm: 'sha256' } },
      join(dir, 'disk.img'),
      (received) => seen.push(received),
    );
    http.close();
    expect(await readdir(dir)).toEqual(['disk.img']);
    expect(seen.at(-1)).toBe(body.length);
  });

  it('discards a download whose checksum does not match', async () => {
    const http = await serve({ '/disk.img': body });
    const dir = await tmp('pull');
    await expect(
      downloadImageFile({ url: `${http.url}/disk.img`, checksum: `sha256:${'1'.repeat(64)}` }, join(dir, 'disk.img')),
    ).rejects.toThrow(ChecksumMismatchError);
    http.close();
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves nothing that looks finished when the connection drops midway', async () => {
    const http = await serve({
      '/disk.img': (res) => {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 1000));
        setTimeout(() => res.destroy(), 50);
      },
    });
    const dir = await tmp('pull');
    await expect(downloadImageFile({ url: `${http.url}/disk.img`, checksum: `sha256:${sha256}` }, join(dir, 'disk.img'))).rejects.toThrow();
    http.close();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('start-up sweep', () => {
  it('reaps folders (and their QEMU) whose forgevm died, and keeps live ones', async () => {
    const jobs = await tmp('sweep');
    // A dead owner: a process that has exited.
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const orphan = join(jobs, 'orphan');
    await mkdir(orphan);
    // A stand-in "QEMU" whose command line names the folder, as the real one does.
    const fakeQemu = spawn('bash', ['-c', 'exec -a "qemu-system-x86_64 $0" sleep 30', orphan], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    await writeFile(join(orphan, 'forgevm.json'), JSON.stringify({ ownerPid: dead.pid, ownerStart: '', qemuPid: fakeQemu.pid, createdAt: '' }));
    const live = join(jobs, 'live');
    await mkdir(live);
    const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
    await writeFile(join(live, 'forgevm.json'), JSON.stringify({ ownerPid: owner.pid, ownerStart: '', createdAt: '' }));

    const exited = new Promise((r) => fakeQemu.on('exit', (_code, signal) => r(signal)));
    const report = await sweepOrphans(jobs);
    expect(report.removedDirs).toEqual([orphan]);
    expect(report.killedPids).toEqual([fakeQemu.pid]);
    expect(await exited).toBe('SIGKILL');
    expect(await readdir(jobs)).toEqual(['live']);
    owner.kill();
  });

  it('tells a recycled pid from the owner by its start time', async () => {
    const jobs = await tmp('sweep-recycled');
    const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    const started = processStartTicks(owner.pid!);
    expect(started).toMatch(/^\d+$/);
    // Same live pid in both records; only the one with the owner's real start time is kept.
    for (const [name, ownerStart] of [['owner', started], ['recycled', String(Number(started) - 1)]] as const) {
      await mkdir(join(jobs, name));
      await writeFile(join(jobs, name, 'forgevm.json'), JSON.stringify({ ownerPid: owner.pid, ownerStart, createdAt: '' }));
    }
    const report = await sweepOrphans(jobs);
    expect(report.removedDirs).toEqual([join(jobs, 'recycled')]);
    expect(await readdir(jobs)).toEqual(['owner']);
    owner.kill();
  });

  it('records its own start time the way the sweep reads it', () => {
    expect(processStart).toBe(processStartTicks(process.pid));
    expect(processStartTicks(2 ** 22 + 12345)).toBeUndefined();
  });
});

describe('job log', () => {
  it('writes through to disk and stops at the cap with a clear line', async () => {
    const dir = await tmp('log');
    const log = new JobLog(join(dir, 'job.log'), 1000);
    const seen: string[] = [];
    log.onData((chunk) => seen.push(chunk.toString()));
    log.write('a'.repeat(600));
    expect(await readFile(join(dir, 'job.log'), 'utf8')).toBe('a'.repeat(600));
    log.write('b'.repeat(600));
    log.write('z'.repeat(10));
    log.close();
    const text = await readFile(join(dir, 'job.log'), 'utf8');
    expect(log.capReached).toBe(true);
    expect(text.startsWith('a'.repeat(600) + 'b'.repeat(400))).toBe(true);
    expect(text).toMatch(/job log reached its cap of 1000 bytes/);
    expect(text).not.toContain('z');
    expect(seen.join('')).toBe(text);
  });
});
