/**
 * `Guest` over an SSH connection. Every command runs through one fixed wrapper: it loads the
 * environment we send, changes directory, records its pid (for signals) and execs argv.
 * Only argv (our own paths and the step's shell) crosses the SSH command string, quoted.
 *
 * Each SSH exec costs a round trip that is slow in an emulated guest, so a command without
 * stdin of its own gets its environment on stdin (read to EOF, then exec: the command sees an
 * empty stdin, as before); only a command that needs stdin gets an environment file first.
 */
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { SshClient } from './connect.ts';
import type { ExecOptions, ExecResult, ExtractTarOptions, Guest, GuestFile } from './guest.ts';
import { envFile, shellJoin, shellQuote } from './shell-quote.ts';
import { tarArchive } from './tar-archive.ts';

// $1 env file, $2 pid file, $3 directory, rest argv. Constant text: no data is ever spliced in.
// The env file defines forgevm_exec (envFile), which execs argv with the environment.
const WRAPPER = `. "$1" && echo $$ > "$2" && cd "$3" && shift 3 && forgevm_exec "$@"`;
// The same with the env file's text on stdin: $1 pid file, $2 directory, rest argv. `cat` reads
// to EOF, so the command starts with stdin at EOF. Values are single-quoted by envFile().
const STDIN_ENV_WRAPPER = `eval "$(cat)" && echo $$ > "$1" && cd "$2" && shift 2 && forgevm_exec "$@"`;

// Each argument: `-` when it is not a file, else its size, a line break and its bytes.
const READ_FILES = `for f do if [ -f "$f" ]; then n=$(wc -c < "$f") && echo "$n" && cat "$f" || exit 1; else echo -; fi; done`;

/** Attempts for a command the guest's sshd refused to start, 250 ms more apart each time. */
const EXEC_ATTEMPTS = 4;
const EXEC_RETRY_MS = 250;

/** The channel or its exec request was refused: nothing ran in the guest. */
class ExecRefused extends Error {}

/** ssh2's errors for a refused exec request and a refused channel: the command never started. */
function refusedBeforeStart(error: Error): boolean {
  return /^Unable to exec$|Channel open failure/.test(error.message);
}

const CANCEL_TERM_AFTER_MS = 7_500;
const CANCEL_KILL_AFTER_MS = 2_500;

export class SshGuest implements Guest {
  #runtimeDir: string;
  #counter = 0;

  constructor(
    private client: SshClient,
    readonly user: string,
    readonly home: string,
    /** A guest folder for forgevm's own small files (env and pid files). */
    runtimeDir: string,
  ) {
    this.#runtimeDir = runtimeDir;
  }

  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('exec needs a command');
    const id = `${++this.#counter}-${randomBytes(3).toString('hex')}`;
    const pidPath = `${this.#runtimeDir}/exec-${id}.pid`;
    const env = envFile(options.env ?? {});
    const cwd = options.cwd ?? this.home;
    let command: string;
    let run: Pick<ExecOptions, 'stdin' | 'onStdout' | 'onStderr'> = options;
    if (options.stdin === undefined) {
      // The pid file's folder must exist before the wrapper writes to it.
      command = `mkdir -p ${shellQuote(this.#runtimeDir)} && ${shellJoin(['sh', '-c', STDIN_ENV_WRAPPER, 'forgevm-exec', pidPath, cwd, ...argv])}`;
      run = { ...options, stdin: env };
    } else {
      const envPath = `${this.#runtimeDir}/exec-${id}.env`;
      await this.writeFile(envPath, env, 0o600);
      command = shellJoin(['sh', '-c', WRAPPER, 'forgevm-exec', envPath, pidPath, cwd, ...argv]);
    }
    const stopCancel = options.signal ? this.#onAbort(options.signal, pidPath) : () => {};
    try {
      return await this.#run(command, run);
    } finally {
      stopCancel();
    }
  }

  async writeFile(path: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    const command = `mkdir -p ${shellQuote(dir)} && cat > ${shellQuote(path)} && chmod ${mode.toString(8)} ${shellQuote(path)}`;
    const result = await this.#run(command, { stdin: content });
    if (result.code !== 0) throw new Error(`could not write ${path} in the guest (exit ${result.code ?? result.signal})`);
  }

  /** All files in one `tar -x` at the guest's root: one command instead of one per file. */
  async writeFiles(files: GuestFile[]): Promise<void> {
    if (files.length === 0) return;
    const archive = tarArchive(
      files.map((file) => ({
        path: posix.resolve(this.home, file.path).slice(1),
        content: typeof file.content === 'string' ? Buffer.from(file.content) : file.content,
        mode: file.mode ?? 0o644,
      })),
    );
    const errors: Buffer[] = [];
    const result = await this.#run('tar -x -f - -C /', { stdin: archive, onStderr: (chunk) => errors.push(chunk) });
    if (result.code !== 0) {
      const names = files.map((file) => file.path).join(', ');
      throw new Error(`could not write ${names} in the guest (exit ${result.code ?? result.signal}): ${Buffer.concat(errors).toString().trim().slice(-300)}`);
    }
  }

  async readFile(path: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const errors: Buffer[] = [];
    const result = await this.#run(`cat ${shellQuote(path)}`, {
      onStdout: (chunk) => chunks.push(chunk),
      onStderr: (chunk) => errors.push(chunk),
    });
    if (result.code !== 0) throw new Error(`could not read ${path} in the guest (exit ${result.code ?? result.signal}): ${Buffer.concat(errors).toString().trim()}`);
    return Buffer.concat(chunks);
  }

  /** Every file framed as `<size>\n<bytes>`, or `-\n` when missing: one command for all. */
  async readFiles(paths: string[]): Promise<Array<Buffer | undefined>> {
    if (paths.length === 0) return [];
    const chunks: Buffer[] = [];
    const errors: Buffer[] = [];
    const result = await this.#run(shellJoin(['sh', '-c', READ_FILES, 'forgevm-read', ...paths]), {
      onStdout: (chunk) => chunks.push(chunk),
      onStderr: (chunk) => errors.push(chunk),
    });
    const failed = (why: string) =>
      new Error(`could not read ${paths.join(', ')} in the guest (${why}): ${Buffer.concat(errors).toString().trim().slice(-300)}`);
    if (result.code !== 0) throw failed(`exit ${result.code ?? result.signal}`);
    const out = Buffer.concat(chunks);
    const files: Array<Buffer | undefined> = [];
    let at = 0;
    for (let i = 0; i < paths.length; i++) {
      const nl = out.indexOf(0x0a, at);
      if (nl < 0) throw failed('the answer ended early');
      const head = out.toString('latin1', at, nl).trim();
      at = nl + 1;
      if (head === '-') {
        files.push(undefined);
        continue;
      }
      const size = Number(head);
      if (!Number.isInteger(size) || size < 0 || at + size > out.length) throw failed('a garbled answer');
      files.push(out.subarray(at, at + size));
      at += size;
    }
    return files;
  }

  async extractTar(tar: Readable, remoteDir: string, options: ExtractTarOptions = {}): Promise<void> {
    const errors: Buffer[] = [];
    const flags = options.gzip ? '-x -z -f -' : '-x -f -';
    const result = await this.#run(`mkdir -p ${shellQuote(remoteDir)} && tar ${flags} -C ${shellQuote(remoteDir)}`, {
      stdin: tar,
      onStderr: (chunk) => errors.push(chunk),
    });
    if (result.code !== 0) {
      throw new Error(`unpacking a tar archive into ${remoteDir} in the guest failed (exit ${result.code ?? result.signal}): ${Buffer.concat(errors).toString().trim().slice(-500)}`);
    }
  }

  /**
   * Run one command string on a new channel. The guest's sshd now and then refuses a channel or
   * its exec request under load (dropbear in an emulated guest answers "Unable to exec"); the
   * command did not start then, and its stdin was not read yet, so it is asked again.
   */
  async #run(command: string, options: Pick<ExecOptions, 'stdin' | 'onStdout' | 'onStderr'>): Promise<ExecResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#runOnce(command, options);
      } catch (error) {
        if (!(error instanceof ExecRefused) || attempt >= EXEC_ATTEMPTS) {
          throw new Error(`SSH exec failed: ${(error as Error).message}${error instanceof ExecRefused ? ` (the guest's SSH server refused the command ${attempt} times)` : ''}`);
        }
        await new Promise((resolve) => setTimeout(resolve, EXEC_RETRY_MS * attempt));
      }
    }
  }

  #runOnce(command: string, options: Pick<ExecOptions, 'stdin' | 'onStdout' | 'onStderr'>): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error) return reject(refusedBeforeStart(error) ? new ExecRefused(error.message) : error);
        let code: number | null = null;
        let signal: string | null = null;
        channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
          code = exitCode ?? null;
          signal = exitSignal ?? null;
        });
        channel.on('data', (chunk: Buffer) => options.onStdout?.(chunk));
        channel.stderr.on('data', (chunk: Buffer) => options.onStderr?.(chunk));
        channel.on('close', () => {
          if (code === null && signal === null) signal = 'HUP'; // connection lost: no exit status came back
          resolve({ code, signal });
        });
        const stdin = options.stdin;
        if (stdin === undefined) channel.end();
        else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) {
          channel.write(stdin);
          channel.end();
        } else {
          stdin.on('error', () => channel.close());
          stdin.pipe(channel);
        }
      });
    });
  }

  /** GitHub's cancel sequence: SIGINT to the process group, SIGTERM 7.5 s later, SIGKILL 2.5 s after. */
  #onAbort(signal: AbortSignal, pidPath: string): () => void {
    const timers: NodeJS.Timeout[] = [];
    const send = (name: string) =>
      void this.#run(`kill -${name} -- -$(cat ${shellQuote(pidPath)}) 2>/dev/null || kill -${name} $(cat ${shellQuote(pidPath)}) 2>/dev/null`, {}).catch(() => {});
    const onAbort = () => {
      send('INT');
      timers.push(setTimeout(() => send('TERM'), CANCEL_TERM_AFTER_MS));
      timers.push(setTimeout(() => send('KILL'), CANCEL_TERM_AFTER_MS + CANCEL_KILL_AFTER_MS));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    return () => {
      signal.removeEventListener('abort', onAbort);
      timers.forEach(clearTimeout);
    };
  }
}
