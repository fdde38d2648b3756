/**
 * A Guest that runs on this host, for fast tests of the step executor. Guest paths are host paths
 * (tests put everything under a temp root). Like the SSH guest, a missing program or folder is an
 * exit status (127), not a thrown error, and abort sends SIGINT, then SIGTERM, then SIGKILL.
 * Test-only: it runs argv with execa and never through a shell.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import type { ExecOptions, ExecResult, ExtractTarOptions, Guest } from '../../src/ssh/guest.ts';

export interface LocalGuestOptions {
  /** Delay before SIGTERM after SIGINT, then before SIGKILL (GitHub: 7.5 s and 2.5 s). */
  termAfterMs?: number;
  killAfterMs?: number;
  /** The guest's PATH (default: the test runner's), e.g. to leave a program out. */
  path?: string;
}

export class LocalGuest implements Guest {
  readonly user = process.env.USER ?? 'root';
  /** Every exec, for tests that check what was run. */
  readonly calls: Array<{ argv: string[]; options: ExecOptions }> = [];

  constructor(
    readonly home: string,
    private readonly options: LocalGuestOptions = {},
  ) {}

  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ argv, options });
    const [file, ...args] = argv;
    if (!file) throw new Error('LocalGuest.exec: empty argv');
    const child = execa(file, args, {
      cwd: options.cwd ?? this.home,
      // A fresh environment, as a login on a guest would have: nothing leaks from the test runner.
      env: { PATH: this.options.path ?? process.env.PATH ?? '/usr/bin:/bin', HOME: this.home, ...options.env },
      extendEnv: false,
      detached: true, // own process group, so abort reaches the script's children too
      stdin: 'pipe',
      buffer: false,
      reject: false,
      stripFinalNewline: false,
    });
    child.stdout?.on('data', (chunk: Buffer) => options.onStdout?.(chunk));
    child.stderr?.on('data', (chunk: Buffer) => options.onStderr?.(chunk));
    child.stdin?.on('error', () => {}); // the command may exit without reading its input
    feedStdin(child.stdin, options.stdin);

    const timers: NodeJS.Timeout[] = [];
    const signalGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const onAbort = (): void => {
      signalGroup('SIGINT');
      timers.push(setTimeout(() => signalGroup('SIGTERM'), this.options.termAfterMs ?? 7500));
      timers.push(setTimeout(() => signalGroup('SIGKILL'), (this.options.termAfterMs ?? 7500) + (this.options.killAfterMs ?? 2500)));
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    try {
      const result = await child;
      if (result.failed && result.exitCode === undefined && result.signal === undefined) {
        // Spawn failure (no such program or cwd): the SSH guest reports this as status 127.
        options.onStderr?.(Buffer.from(`${result.shortMessage ?? result.message}\n`));
        return { code: 127, signal: null };
      }
      return {
        code: result.exitCode ?? null,
        signal: result.signal ? result.signal.replace(/^SIG/, '') : null,
      };
    } finally {
      for (const t of timers) clearTimeout(t);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async writeFile(path: string, content: string | Buffer, mode?: number): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    if (mode !== undefined) await chmod(path, mode);
  }

  async readFiles(paths: string[]): Promise<Array<Buffer | undefined>> {
    return Promise.all(paths.map((path) => readFile(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    })));
  }

  async readFile(path: string): Promise<Buffer> {
    return readFile(path);
  }

  async extractTar(tar: Readable, remoteDir: string, options: ExtractTarOptions = {}): Promise<void> {
    await mkdir(remoteDir, { recursive: true });
    const child = execa('tar', ['-x', ...(options.gzip ? ['-z'] : []), '-f', '-', '-C', remoteDir], { stdin: 'pipe' });
    tar.pipe(child.stdin);
    await child;
  }
}

function feedStdin(stdin: NodeJS.WritableStream | null, input: ExecOptions['stdin']): void {
  if (!stdin) return;
  if (input === undefined) stdin.end();
  else if (typeof input === 'string' || Buffer.isBuffer(input)) stdin.end(input);
  else input.pipe(stdin);
}
