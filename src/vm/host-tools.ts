/** The host programs the engine drives, and the one-line fix when one is missing. */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';

export interface HostTool {
  command: string;
  purpose: string;
  debianPackage: string;
}

export const hostTools = {
  qemu: { command: 'qemu-system-x86_64', purpose: 'runs the job VMs', debianPackage: 'qemu-system-x86' },
  qemuImg: { command: 'qemu-img', purpose: 'creates per-job disk overlays', debianPackage: 'qemu-utils' },
  genisoimage: { command: 'genisoimage', purpose: 'builds the cloud-init seed ISO', debianPackage: 'genisoimage' },
  setpriv: { command: 'setpriv', purpose: 'kills QEMU when forgevm dies', debianPackage: 'util-linux' },
  git: { command: 'git', purpose: 'prepares the job workspace', debianPackage: 'git' },
} satisfies Record<string, HostTool>;

export class MissingToolError extends Error {
  constructor(readonly tool: HostTool) {
    super(`${tool.command} not found on PATH (it ${tool.purpose}): install it with "apt-get install ${tool.debianPackage}"`);
  }
}

/** Resolve a tool's path on PATH, or undefined. */
export async function findTool(tool: HostTool, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(':').filter(Boolean)) {
    const candidate = join(dir, tool.command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export async function requireTool(tool: HostTool): Promise<string> {
  const path = await findTool(tool);
  if (!path) throw new MissingToolError(tool);
  return path;
}
