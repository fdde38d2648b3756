/**
 * Boot benchmark: how long from "job accepted" to the first output of a one-step job, against
 * the same `tiny` guest booted by hand (raw QEMU + OpenSSH) on the same machine.
 *
 *   npm run bench:boot [-- --runs 5]
 *
 * raw      keys + `qemu-img create` overlay + writeSeedIso + qemu-system-x86_64 (qemuArgs(),
 *          same machine/CPU/memory/disks/seed/netdev) + `ssh … true` retried every 100 ms
 *          until it succeeds (host key pinned in known_hosts).
 * forgevm  runJob with the real step executor and a one-step job `echo first`, from the call
 *          to the first byte of the step's output in the JobLog.
 *
 * Runs alternate (raw, forgevm, raw, …) so background load hits both alike. Medians are
 * printed with the ratio forgevm/raw, and forgevm's phase medians show where its time goes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runTimedJob } from './lib/forgevm-job.ts';
import { startRawVm, waitForSsh } from './lib/raw-vm.ts';
import { benchSetup } from './lib/setup.ts';
import { median, seconds } from './lib/stats.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');

const setup = await benchSetup({ log: (line) => console.log(`  ${line}`) });
const spec = setup.catalog.tiny!;
const logsDir = await mkdtemp(join(tmpdir(), 'fvb-logs-'));
console.log(`accelerator: ${setup.engine.accel.accel}; ${runs} runs each, alternating\n`);

const raw: number[] = [];
const rawFromQemu: number[] = [];
const forgevm: number[] = [];
const phaseRuns: Record<string, number>[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const vm = await startRawVm({
      qemu: setup.engine.qemu,
      accel: setup.engine.accel.accel,
      tiny: setup.tiny,
      cmdline: spec.cmdline!,
      cpus: spec.cpus,
      memoryMiB: spec.memoryMiB,
    });
    try {
      const ready = await waitForSsh(vm);
      raw.push(ready - vm.started);
      rawFromQemu.push(ready - vm.started - vm.setupMs);
    } finally {
      await vm.stop();
    }
    console.log(`run ${i + 1}  raw      ${seconds(raw.at(-1)!)} (qemu start → ssh true: ${seconds(rawFromQemu.at(-1)!)})`);

    const job = await runTimedJob({ engine: setup.engine, repo: setup.repo, logsDir, run: 'echo first' });
    if (job.result.conclusion !== 'success' || job.firstOutputMs === undefined) {
      throw new Error(`forgevm job did not succeed: ${job.result.conclusion} ${job.result.error ?? ''}`);
    }
    forgevm.push(job.firstOutputMs);
    phaseRuns.push({ ...job.phases, 'first output': job.firstOutputMs });
    const phases = Object.entries(job.phases)
      .map(([name, ms]) => `${name} ${(ms / 1000).toFixed(2)}`)
      .join(', ');
    console.log(`run ${i + 1}  forgevm  ${seconds(job.firstOutputMs)} (phase starts: ${phases})`);
  }
} finally {
  await rm(logsDir, { recursive: true, force: true });
  await setup.cleanup();
}

const rawMedian = median(raw);
const forgevmMedian = median(forgevm);
const phaseNames = Object.keys(phaseRuns[0] ?? {});
console.log('\nforgevm phase starts (median, s from job accepted):');
for (const name of phaseNames) console.log(`  ${name.padEnd(13)} ${(median(phaseRuns.map((p) => p[name]!)) / 1000).toFixed(2)}`);
console.log(`\nraw (setup + qemu + ssh true)     median ${seconds(rawMedian)}   (qemu start → ssh: ${seconds(median(rawFromQemu))})`);
console.log(`forgevm (accepted → first output) median ${seconds(forgevmMedian)}`);
const ratio = forgevmMedian / rawMedian;
console.log(`ratio forgevm/raw: ${ratio.toFixed(3)} (target ≤ 1.10) ${ratio <= 1.1 ? 'OK' : 'ABOVE TARGET'}`);
