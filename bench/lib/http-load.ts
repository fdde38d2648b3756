/**
 * A lean HTTP/1.1 keep-alive client for load generation. Requests are written as prebuilt bytes
 * and responses are parsed only as far as the status code and the end of the body
 * (Content-Length or chunked); one request is in flight per connection.
 *
 * Why not undici: the load generator shares the machine with the server it measures, and in a
 * closed loop its time per request is part of every round trip. undici spent ~45 µs per
 * request here, this spends ~20 µs, so the benchmark measures the servers more and itself less
 * (for the server that answers after a disk sync, whose round trips are longer, this mattered:
 * forgevm's ratio to Probot went from ~0.85 to ~0.97 with no change to forgevm).
 */
import { connect, type Socket } from 'node:net';

export interface LoadRequest {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('\r\n0\r\n\r\n');

/** One keep-alive connection, one request at a time. */
class LoadConnection {
  readonly #socket: Socket;
  readonly #ready: Promise<void>;
  #buffered: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (status: number) => void; reject: (error: Error) => void } | null = null;
  closed = false;

  constructor(host: string, port: number) {
    this.#socket = connect({ host, port, noDelay: true });
    this.#ready = new Promise((resolve, reject) => {
      this.#socket.once('connect', () => resolve());
      this.#socket.once('error', reject);
    });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('error', (error) => this.#fail(error));
    this.#socket.on('close', () => this.#fail(new Error('the server closed the connection')));
  }

  async send(head: string, body: Buffer): Promise<number> {
    await this.#ready;
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.cork();
      this.#socket.write(head, 'latin1');
      this.#socket.write(body);
      this.#socket.uncork();
    });
  }

  close(): void {
    this.closed = true;
    this.#socket.destroy();
  }

  #fail(error: Error): void {
    this.closed = true;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(error);
  }

  #onData(chunk: Buffer): void {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    const headEnd = this.#buffered.indexOf(HEAD_END);
    if (headEnd < 0) return;
    const head = this.#buffered.subarray(0, headEnd).toString('latin1');
    const bodyStart = headEnd + HEAD_END.length;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    let end = bodyStart;
    if (length) {
      end = bodyStart + Number(length[1]);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      const last = this.#buffered.indexOf(LAST_CHUNK, bodyStart - 2);
      end = last < 0 ? Infinity : last + LAST_CHUNK.length;
    }
    if (this.#buffered.length < end) return;
    this.#buffered = this.#buffered.subarray(end);
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.resolve(Number(head.slice(9, 12)));
  }
}

/** Keep-alive connections to one origin: an idle one is reused, else a new one is opened. */
export class LoadPool {
  readonly #host: string;
  readonly #port: number;
  readonly #idle: LoadConnection[] = [];
  readonly #all = new Set<LoadConnection>();

  constructor(origin: string) {
    const url = new URL(origin);
    this.#host = url.hostname;
    this.#port = Number(url.port);
  }

  /** Sends one POST and resolves with the response's status code. */
  async post(request: LoadRequest): Promise<number> {
    let connection = this.#idle.pop();
    while (connection?.closed) connection = this.#idle.pop();
    if (!connection) {
      connection = new LoadConnection(this.#host, this.#port);
      this.#all.add(connection);
    }
    let head = `POST ${request.path} HTTP/1.1\r\nhost: ${this.#host}:${this.#port}\r\ncontent-length: ${request.body.length}\r\n`;
    for (const [name, value] of Object.entries(request.headers)) head += `${name}: ${value}\r\n`;
    head += '\r\n';
    try {
      return await connection.send(head, request.body);
    } finally {
      if (connection.closed) this.#all.delete(connection);
      else this.#idle.push(connection);
    }
  }

  close(): void {
    for (const connection of this.#all) connection.close();
    this.#all.clear();
    this.#idle.length = 0;
  }
}
