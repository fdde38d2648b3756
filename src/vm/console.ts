/** The guest's serial console, captured by QEMU into a file: read its tail, or follow it live. */
import { open, stat } from 'node:fs/promises';

/** The last `lines` lines (at most `maxBytes` read from the end), control characters removed. */
export async function consoleTail(path: string, lines = 30, maxBytes = 64 * 1024): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - maxBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    const text = buffer
      .toString('utf8')
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]|\r|[\x00-\x08\x0b-\x1f\x7f]/g, '');
    return text.split('\n').filter((line) => line.trim() !== '').slice(-lines).join('\n');
  } finally {
    await handle.close();
  }
}

/**
 * Follow the console file, calling onData with new bytes. Returns a stop function: stop
 * following before the job's own output starts, or lines get interleaved.
 */
export function followConsole(path: string, onData: (chunk: Buffer) => void, intervalMs = 200): () => void {
  let offset = 0;
  let stopped = false;
  let busy = false;
  const poll = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const { size } = await stat(path);
      if (size > offset) {
        const handle = await open(path, 'r');
        try {
          const buffer = Buffer.alloc(size - offset);
          await handle.read(buffer, 0, buffer.length, offset);
          offset = size;
          if (!stopped) onData(buffer);
        } finally {
          await handle.close();
        }
      }
    } catch {
      // not created yet
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void poll(), intervalMs);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
