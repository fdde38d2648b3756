/**
 * Start-up sweep: reap what an earlier forgevm left behind when it crashed. A job folder whose
 * owner process is gone is orphaned: its QEMU (normally already killed by the parent-death
 * signal) is killed, and the folder removed. Folders of live forgevm processes are left alone,
 * so several forgevm processes can share one state folder.
 */
import { readFile } from 'node:fs/promises';
import { listJobDirs, processStartTicks, readRecord, removeJobDir, type JobDirRecord } from './job-dir.ts';

export interface SweepReport {
  removedDirs: string[];
  killedPids: number[];
}

export async function sweepOrphans(jobsRoot: string): Promise<SweepReport> {
  const report: SweepReport = { removedDirs: [], killedPids: [] };
  for (const dir of await listJobDirs(jobsRoot)) {
    const record = await readRecord(dir);
    if (record?.ownerPid === process.pid) continue;
    if (record && (await ownerAlive(record))) continue;
    if (record?.qemuPid && (await isQemuOf(record.qemuPid, dir))) {
      try {
        process.kill(record.qemuPid, 'SIGKILL');
        report.killedPids.push(record.qemuPid);
      } catch {
        // already gone
      }
    }
    await removeJobDir(dir);
    report.removedDirs.push(dir);
  }
  return report;
}

/**
 * The recorded owner still runs: its pid is alive and, when the record says when the owner
 * started, the process behind that pid started then too (otherwise the pid was recycled).
 */
async function ownerAlive(record: JobDirRecord): Promise<boolean> {
  if (!(await isAlive(record.ownerPid))) return false;
  if (!/^\d+$/.test(record.ownerStart ?? '')) return true; // an older record: pid only
  return processStartTicks(record.ownerPid) === record.ownerStart;
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie or a recycled pid that is not a node process is not our owner.
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/** Only kill a pid whose command line names this job folder: never a recycled pid. */
async function isQemuOf(pid: number, dir: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('qemu') && cmdline.includes(dir);
  } catch {
    return false;
  }
}
