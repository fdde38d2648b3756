/**
 * A job folder, and the ownership record that lets a later forgevm find and reap it after a
 * crash: which forgevm process owned it and which QEMU ran in it.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface JobDirRecord {
  ownerPid: number;
  /** Start time of the owner, to tell a recycled pid from the real owner. */
  ownerStart: string;
  qemuPid?: number;
  createdAt: string;
}

const RECORD = 'forgevm.json';
export const processStart = new Date(Date.now() - process.uptime() * 1000).toISOString();

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
