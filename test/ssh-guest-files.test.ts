/**
 * SshGuest reading several files in one command (the step executor reads a step's file commands
 * this way): the real command string, run by this host's `sh` in place of the guest's sshd.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SshClient } from '../src/ssh/connect.ts';
import { SshGuest } from '../src/ssh/session.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'forgevm-readfiles-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** An SSH client whose exec runs the command string with the local sh, as sshd would. */
function localClient(): SshClient {
  return {
    exec(command: string, callback: (error: Error | undefined, channel: EventEmitter) => void) {
      const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      const channel = Object.assign(new EventEmitter(), {
        stderr: child.stderr,
        write: (data: Buffer | string) => child.stdin.write(data),
        end: () => child.stdin.end(),
        close: () => child.kill(),
      });
      child.stdout.on('data', (chunk: Buffer) => channel.emit('data', chunk));
      child.on('close', (code, signal) => {
        channel.emit('exit', code, signal ?? undefined);
        channel.emit('close');
      });
      callback(undefined, channel);
      return this;
    },
  } as unknown as SshClient;
}

describe('reading several guest files at once', () => {
  it('returns each file byte for byte, and undefined for the ones that do not exist', async () => {
    const binary = Buffer.from([0, 10, 45, 10, 255, 13, 10]);
    writeFileSync(join(dir, 'env'), 'A=1\nB<<EOF\nx\nEOF\n');
    writeFileSync(join(dir, 'empty'), '');
    writeFileSync(join(dir, 'name with spaces'), '-\n12\n');
    writeFileSync(join(dir, 'binary'), binary);
    mkdirSync(join(dir, 'a-folder'));
    const guest = new SshGuest(localClient(), 'root', dir, join(dir, 'run'));
    const files = await guest.readFiles(['env', 'missing', 'empty', 'name with spaces', 'binary', 'a-folder'].map((n) => join(dir, n)));
    expect(files.map((f) => f?.toString('latin1'))).toEqual(['A=1\nB<<EOF\nx\nEOF\n', undefined, '', '-\n12\n', binary.toString('latin1'), undefined]);
  });

  it('rejects, naming the files, when the guest cannot answer, instead of reporting them missing', async () => {
    const guest = new SshGuest(
      {
        exec: (_command: string, callback: (error: Error | undefined, channel: EventEmitter) => void) => {
          // The connection drops: the channel closes without an exit status.
          const channel = Object.assign(new EventEmitter(), { stderr: new EventEmitter(), end: () => setImmediate(() => channel.emit('close')) });
          callback(undefined, channel);
        },
      } as unknown as SshClient,
      'root',
      dir,
      join(dir, 'run'),
    );
    await expect(guest.readFiles([join(dir, 'state')])).rejects.toThrow(/could not read .*state in the guest \(exit HUP\)/);
  });
});

describe("a command the guest's sshd refuses to start", () => {
  /** localClient, but the first `refusals` exec requests are refused as dropbear refuses them. */
  function refusingClient(refusals: number, error = 'Unable to exec'): { client: SshClient; calls: () => number } {
    const local = localClient();
    let calls = 0;
    type Exec = (command: string, callback: (error: Error | undefined, channel?: EventEmitter) => void) => unknown;
    const client: { exec: Exec } = {
      exec(command, callback) {
        calls += 1;
        if (calls <= refusals) {
          setImmediate(() => callback(new Error(error)));
          return client;
        }
        return (local as unknown as { exec: Exec }).exec(command, callback);
      },
    };
    return { client: client as unknown as SshClient, calls: () => calls };
  }

  it('asks again: the command runs once, with its environment and stdin', async () => {
    const { client, calls } = refusingClient(2);
    const guest = new SshGuest(client, 'root', dir, join(dir, 'run'));
    let out = '';
    const result = await guest.exec(['sh', '-c', 'echo "$GREETING"'], { env: { GREETING: 'hello after two refusals' }, cwd: dir, onStdout: (c: Buffer) => (out += c.toString()) });
    expect(result).toEqual({ code: 0, signal: null });
    expect(out).toBe('hello after two refusals\n');
    expect(calls()).toBe(3);
    await guest.writeFile(join(dir, 'written'), 'data');
    expect(calls()).toBe(4);
  });

  it('gives up after four refusals, and does not repeat other failures', async () => {
    const refusing = refusingClient(100);
    await expect(new SshGuest(refusing.client, 'root', dir, join(dir, 'run')).exec(['true'])).rejects.toThrow(
      "SSH exec failed: Unable to exec (the guest's SSH server refused the command 4 times)",
    );
    expect(refusing.calls()).toBe(4);
    const dropped = refusingClient(100, 'No response from server');
    await expect(new SshGuest(dropped.client, 'root', dir, join(dir, 'run')).exec(['true'])).rejects.toThrow(/^SSH exec failed: No response from server$/);
    expect(dropped.calls()).toBe(1);
  });
});
