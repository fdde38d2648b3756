/** Running the host programs the tiny builder needs, with a one-line error that says what to install. */
import { execa, type Options } from 'execa';

const DEBIAN_PACKAGE_OF: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  'mkfs.ext4': 'e2fsprogs',
  'qemu-img': 'qemu-utils',
};

// mkfs.ext4 lives in /usr/sbin, which is not on a normal user's PATH.
function pathWithSbin(): string {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const extra of ['/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  return dirs.join(':');
}

export async function runTool(command: string, args: readonly string[], options: Options = {}): Promise<string> {
  try {
    const result = await execa(command, args, { ...options, env: { ...options.env, PATH: pathWithSbin() } });
    return typeof result.stdout === 'string' ? result.stdout : '';
  } catch (error) {
    const err = error as { code?: string; stderr?: unknown; shortMessage?: string };
    if (err.code === 'ENOENT') {
      const pkg = DEBIAN_PACKAGE_OF[command] ?? command;
      throw new Error(`${command} not found (the tiny image builder needs it): install it with "apt-get install ${pkg}"`);
    }
    const detail = typeof err.stderr === 'string' && err.stderr.trim() ? err.stderr.trim().split('\n').slice(-3).join(' | ') : err.shortMessage;
    throw new Error(`${command} ${args.slice(0, 3).join(' ')}… failed: ${detail}`);
  }
}
