/**
 * Streaming benchmark: a step in a `tiny` VM writes 100 MiB to stdout.
 *
 *   npm run bench:stream [-- --runs 3 --mib 100]
 *   npm run bench:stream -- --rss [--jobs 8 --mb 100]
 *
 * Default mode, one VM, alternating runs:
 *   forgevm  the step executor over forgevm's SSH connection (connect.ts cipher preference,
 *            SshGuest), every chunk written into a JobLog file on disk; rate = bytes over
 *            first-to-last output byte.
 *   OpenSSH  `ssh … 'head -c N /dev/zero'` over a ControlMaster connection (so it too pays a
 *            channel, not a login, per run), stdout read by this process; same rate measure.
 *
 * --rss: N whole jobs (boot, SSH, step, teardown) at once, each printing M MB, with the log cap
 * raised above M; this process's peak RSS is sampled every 100 ms.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runTimedJob } from './lib/forgevm-job.ts';
import { benchSetup } from './lib/setup.ts';
import { median, mibPerSecond } from './lib/stats.ts';
import { openStreamVm, type StreamTiming } from './lib/stream-vm.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    mib: { type: 'string', default: '100' },
    rss: { type: 'boolean', default: false },
    jobs: { type: 'string', default: '8' },
    mb: { type: 'string', default: '100' },
  },
});

const logsDir = await mkdtemp(join(tmpdir(), 'fvb-logs-'));
try {
  if (values.rss) await rssMode(Number(values.jobs), Number(values.mb));
  else await rateMode(Number(values.runs), Number(values.mib));
} finally {
  await rm(logsDir, { recursive: true, force: true });
}

async function rateMode(runs: number, mib: number): Promise<void> {
  const bytes = mib * 1024 ** 2;
  const command = `head -c ${bytes} /dev/zero`;
  const setup = await benchSetup({ log: (line) => console.log(`  ${line}`) });
  const vm = await openStreamVm(setup);
  const forgevm: StreamTiming[] = [];
  const openssh: StreamTiming[] = [];
  const line = (who: string, t: StreamTiming) =>
    `${who.padEnd(8)} ${mibPerSecond(t.bytes, t.streamMs).toFixed(1).padStart(6)} MiB/s  (${(t.streamMs / 1000).toFixed(2)} s streaming, ${(t.commandMs / 1000).toFixed(2)} s whole command, ${t.cipher})`;
  try {
    console.log(`accelerator: ${setup.engine.accel.accel}; ${mib} MiB per run, ${runs} runs each, alternating\n`);
    for (let i = 0; i < runs; i++) {
      const a = await vm.openssh(command);
      if (a.bytes !== bytes) throw new Error(`OpenSSH delivered ${a.bytes} bytes, expected ${bytes}`);
      openssh.push(a);
      console.log(`run ${i + 1}  ${line('OpenSSH', a)}`);
      const b = await vm.forgevm(command, logsDir);
      if (b.bytes !== bytes) throw new Error(`forgevm logged ${b.bytes} bytes, expected ${bytes}`);
      forgevm.push(b);
      console.log(`run ${i + 1}  ${line('forgevm', b)}`);
    }
  } finally {
    await vm.close();
    await setup.cleanup();
  }
  const rate = (ts: StreamTiming[]) => median(ts.map((t) => mibPerSecond(t.bytes, t.streamMs)));
  const ours = rate(forgevm);
  const theirs = rate(openssh);
  console.log(`\nOpenSSH  median ${theirs.toFixed(1)} MiB/s (${openssh[0]!.cipher})`);
  console.log(`forgevm  median ${ours.toFixed(1)} MiB/s (${forgevm[0]!.cipher}), into the job log on disk`);
  const ratio = ours / theirs;
  console.log(`ratio forgevm/OpenSSH: ${ratio.toFixed(2)} (target ≥ 0.8) ${ratio >= 0.8 ? 'OK' : 'BELOW TARGET'}`);
}

async function rssMode(jobs: number, mb: number): Promise<void> {
  const bytes = mb * 1_000_000;
  // 8 TCG guests booting at once on a small host take minutes: lift the tiny image's deadline.
  const setup = await benchSetup({ log: (line) => console.log(`  ${line}`), bootTimeoutSeconds: 900 });
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  const started = performance.now();
  try {
    console.log(`${jobs} jobs at once, each printing ${mb} MB; log cap raised to ${mb * 2} MB\n`);
    const results = await Promise.all(
      Array.from({ length: jobs }, () =>
        runTimedJob({ engine: setup.engine, repo: setup.repo, logsDir, run: `head -c ${bytes} /dev/zero`, logCapBytes: bytes * 2 }),
      ),
    );
    for (const [i, job] of results.entries()) {
      console.log(`job ${i + 1}: ${job.result.conclusion}, ${job.logBytes} log bytes, ${(job.totalMs / 1000).toFixed(1)} s${job.result.error ? ` (${job.result.error.split('\n')[0]})` : ''}`);
    }
    const failed = results.filter((r) => r.result.conclusion !== 'success' || r.logBytes < bytes);
    if (failed.length) throw new Error(`${failed.length} job(s) did not print all their output`);
  } finally {
    clearInterval(sampler);
    await setup.cleanup();
  }
  const mib = (n: number) => (n / 1024 ** 2).toFixed(0);
  console.log(`\nforgevm process RSS: ${mib(before)} MiB before, peak ${mib(peak)} MiB during ${jobs} × ${mb} MB (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  console.log(`target < 200 MB: ${peak < 200 * 1_000_000 ? 'OK' : 'ABOVE TARGET'}`);
}
