/**
 * The one way code talks to a running job VM. Implemented over SSH (src/ssh/session.ts);
 * the step executor and the workspace upload only ever see this interface.
 */
import type { Readable } from 'node:stream';

export interface ExecOptions {
  /** Extra environment for the command. Names match [A-Za-z_][A-Za-z0-9_.-]* (`-` for action inputs); values are data, never parsed by a shell. */
  env?: Record<string, string>;
  /** Working directory inside the guest. */
  cwd?: string;
  /** Bytes fed to the command's stdin; stdin is closed (EOF) when absent. */
  stdin?: Readable | Buffer | string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /**
   * Aborting sends SIGINT to the command, SIGTERM 7.5 s later and SIGKILL 2.5 s after that,
   * as GitHub's runner does on cancel.
   */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** Exit status, or null when the process died from a signal. */
  code: number | null;
  /** Signal name without the SIG prefix (for example 'KILL'), or null. */
  signal: string | null;
}

export interface GuestFile {
  path: string;
  content: string | Buffer;
  /** Default 0o644. */
  mode?: number;
}

export interface ExtractTarOptions {
  gzip?: boolean;
}

export interface Guest {
  /** Login user and its home folder. */
  readonly user: string;
  readonly home: string;
  /**
   * Run argv (argv[0] looked up on PATH). Each element is passed as one argument: nothing
   * is ever interpreted by a shell on the way.
   */
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Create or replace a file (parents are created). */
  writeFile(path: string, content: string | Buffer, mode?: number): Promise<void>;
  /**
   * Create or replace several files at once (parents are created); one round trip instead of
   * one per file. Optional: callers fall back to writeFile for guests without it.
   */
  writeFiles?(files: GuestFile[]): Promise<void>;
  /** Read a whole (small) file; rejects if it does not exist. */
  readFile(path: string): Promise<Buffer>;
  /**
   * Read several small files in one round trip: each one's contents, or undefined when it does
   * not exist. Rejects when the guest could not answer (never reads a failure as "missing").
   */
  readFiles(paths: string[]): Promise<Array<Buffer | undefined>>;
  /**
   * Stream a tar archive into the guest and unpack it under remoteDir (created if missing).
   * `gzip`: the stream is a gzip-compressed tar (the guest needs `gzip`, or busybox's tar).
   */
  extractTar(tar: Readable, remoteDir: string, options?: ExtractTarOptions): Promise<void>;
}
