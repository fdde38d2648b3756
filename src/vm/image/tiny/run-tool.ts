/** Running the host programs the tiny builder needs, with a one-line error that says what to install. */
import { execa, type Options } from 'execa';

const DEBIAN_PACKAGE_OF: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  'mkfs.ext4': 'e2fsprogs',
  'qemu-img': 'qemu-utils',
  xz: 'xz-utils',
};

// mkfs.ext4 lives in /usr/sbin, which is not on a normal user's PATH.
function pathWithSbin(): string {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const extra of ['/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  return dirs.join(':');
}

async function execTool(command: string, args: readonly string[], options: Options) {
  try {
    return await execa(command, args, { ...options, env: { ...options.env, PATH: pathWithSbin() } });
  } catch (error) {
    const err = error as { code?: string; stderr?: unknown; shortMessage?: string };
    if (err.code === 'ENOENT') {
      const pkg = DEBIAN_PACKAGE_OF[command] ?? command;
      throw new Error(`${command} not found (the tiny image builder needs it): install it with "apt-get install ${pkg}"`);
    }
    const stderr = typeof err.stderr === 'string' ? err.stderr.trim() : '';
    const detail = stderr ? stderr.split('\n').slice(-3).join(' | ') : err.shortMessage;
    throw new Error(`${command} ${args.slice(0, 3).join(' ')}… failed: ${detail}`);
  }
}

/** Run a host program; resolves to its stdout text. */
export async function runTool(command: string, args: readonly string[], options: Options = {}): Promise<string> {
  const result = await execTool(command, args, options);
  return typeof result.stdout === 'string' ? result.stdout : '';
}

/** Run a host program as a filter: `input` on stdin, stdout returned as bytes. */
export async function filterThroughTool(command: string, args: readonly string[], input: Buffer): Promise<Buffer> {
  const result = await execTool(command, args, { input, encoding: 'buffer', stripFinalNewline: false, maxBuffer: 512 * 1024 * 1024 });
  return Buffer.from(result.stdout as Uint8Array);
}
