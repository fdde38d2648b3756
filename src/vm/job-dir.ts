/**
 * A job folder, and the ownership record that lets a later forgevm find and reap it after a
 * crash: which forgevm process owned it and which QEMU ran in it.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface JobDirRecord {
  ownerPid: number;
  /**
   * The owner's start time as the kernel counts it (field 22 of /proc/<pid>/stat, clock ticks
   * since boot), to tell a recycled pid from the real owner. Records from older forgevm
   * versions hold an ISO date here, which the sweep cannot compare and ignores.
   */
  ownerStart: string;
  qemuPid?: number;
  createdAt: string;
}

const RECORD = 'forgevm.json';
/**
 * Start time of a process in clock ticks since boot, from /proc/<pid>/stat; undefined when the
 * process is gone. The command name (field 2) may hold spaces and parentheses, so the fields
 * are counted from its closing parenthesis: starttime is the 20th field after it.
 */
export function processStartTicks(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export const processStart = processStartTicks('self') ?? '';

export async function createJobDir(jobsRoot: string, id: string): Promise<string> {
  if (!/^[A-Za-z0-9._-]+$/.test(id)) throw new Error(`invalid job folder name "${id}"`);
  const dir = join(jobsRoot, id);
  await mkdir(jobsRoot, { recursive: true, mode: 0o700 });
  await mkdir(dir, { mode: 0o700 });
  await writeRecord(dir, { ownerPid: process.pid, ownerStart: processStart, createdAt: new Date().toISOString() });
  return dir;
}

export async function writeRecord(dir: string, record: JobDirRecord): Promise<void> {
  await writeFile(join(dir, RECORD), JSON.stringify(record));
}

export async function readRecord(dir: string): Promise<JobDirRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, RECORD), 'utf8')) as JobDirRecord;
  } catch {
    return undefined;
  }
}

export async function removeJobDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function listJobDirs(jobsRoot: string): Promise<string[]> {
  try {
    return (await readdir(jobsRoot)).map((name) => join(jobsRoot, name));
  } catch {
    return [];
  }
}
