/**
 * A small QMP client: line-delimited JSON over the VM's UNIX socket. Greeting, then
 * `qmp_capabilities`, then one command at a time.
 */
import { createConnection, type Socket } from 'node:net';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class QmpClient {
  #socket: Socket;
  #buffer = '';
  #queue: Pending[] = [];
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => this.#onData(data));
    socket.on('close', () => this.#fail(new Error('QMP connection closed')));
    socket.on('error', (error) => this.#fail(error));
  }

  /** Connect, retrying while QEMU has not created the socket yet. */
  static async connect(path: string, deadlineMs = 10_000): Promise<QmpClient> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path, () => resolve(s));
          s.once('error', reject);
        });
        const client = new QmpClient(socket);
        await client.#next(); // greeting
        await client.execute('qmp_capabilities');
        return client;
      } catch (error) {
        if (Date.now() > until) throw new Error(`could not reach QEMU's QMP socket ${path}: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#closed) throw new Error(`QMP connection closed before "${command}"`);
    const reply = this.#next();
    this.#socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    return reply;
  }

  /** Run a human monitor command (`info usernet`) and return its text. */
  async hmp(commandLine: string): Promise<string> {
    return String(await this.execute('human-monitor-command', { 'command-line': commandLine }));
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  #next(): Promise<unknown> {
    return new Promise((resolve, reject) => this.#queue.push({ resolve, reject }));
  }

  #onData(data: string): void {
    this.#buffer += data;
    let newline: number;
    while ((newline = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, newline).trim();
      this.#buffer = this.#buffer.slice(newline + 1);
      if (!line) continue;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('event' in message) continue; // asynchronous events: not awaited by anyone
      const pending = this.#queue.shift();
      if (!pending) continue;
      if ('error' in message) {
        const error = message.error as { desc?: string };
        pending.reject(new Error(`QMP: ${error.desc ?? 'error'}`));
      } else {
        pending.resolve('QMP' in message ? message.QMP : message.return);
      }
    }
  }

  #fail(error: Error): void {
    this.#closed = true;
    for (const pending of this.#queue.splice(0)) pending.reject(error);
  }
}

/** Parse the host port of the forward to guest port 22 from `info usernet`. */
export function parseForwardedPort(usernet: string): number | undefined {
  // e.g. "  TCP[HOST_FORWARD]  12       127.0.0.1 41235       10.0.2.15    22     0     0"
  for (const line of usernet.split('\n')) {
    const match = /HOST_FORWARD\]\s+\d+\s+(\S+)\s+(\d+)\s+\S+\s+22\b/.exec(line);
    if (match) return Number(match[2]);
  }
  return undefined;
}
