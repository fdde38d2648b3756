/**
 * The guest-to-host forward against a real SSH server (ssh2's, in this process) that behaves
 * like the guests' sshd might: choosing the port itself, refusing port 0, accepting port 0
 * without saying which port it bound, or refusing forwarding altogether. The tiny guest's
 * dropbear is exercised for real in vm-services-tunnel.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { connectSsh, type SshClient } from '../src/ssh/connect.ts';
import { RunnerServices } from '../src/services/runner-services.ts';
import { FALLBACK_GUEST_PORTS, ForwardError, forwardGuestPort } from '../src/ssh/forward.ts';
import { generateJobKeys } from '../src/vm/seed.ts';
import { identity } from './support/services-harness.ts';

const { Server } = ssh2;
type Connection = Parameters<ConstructorParameters<typeof Server>[1] & {}>[0];

/** How the fake sshd answers `tcpip-forward`: with the port to grant, or 'refuse', or 'silent' (success without a port). */
type Policy = (port: number) => number | 'refuse' | 'silent';

interface Sshd {
  client: SshClient;
  /** Requests the server saw, as `name port`. */
  requests: string[];
  /** Open a connection "from inside the guest" to a forwarded port. */
  connectFromGuest(port: number): Promise<Duplex>;
  close(): void;
}

const opened: Sshd[] = [];
afterEach(() => opened.splice(0).forEach((s) => s.close()));

async function sshd(policy: Policy): Promise<Sshd> {
  // generateJobKeys redraws the keys ssh2 itself cannot parse back (about 1 in 300).
  const { host: hostKey, client: clientKey } = generateJobKeys();
  const requests: string[] = [];
  let connection: Connection | undefined;
  const server = new Server({ hostKeys: [hostKey.private] }, (conn) => {
    connection = conn;
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('request', (accept, reject, name, info) => {
      const port = (info as { bindPort?: number }).bindPort ?? -1;
      requests.push(`${name} ${port}`);
      if (name !== 'tcpip-forward') return accept?.();
      const answer = policy(port);
      if (answer === 'refuse') return reject?.();
      if (answer === 'silent') return accept?.();
      accept?.(answer);
    });
  });
  await new Promise<void>((resolve) => (server as unknown as NetServer).listen(0, '127.0.0.1', resolve));
  const port = ((server as unknown as NetServer).address() as AddressInfo).port;
  const client = await connectSsh({
    port,
    user: 'root',
    privateKey: clientKey.private,
    hostPublicKey: hostKey.public,
    deadline: Date.now() + 10_000,
  });
  const handle: Sshd = {
    client,
    requests,
    connectFromGuest: (target) =>
      new Promise((resolve, reject) =>
        connection!.forwardOut('127.0.0.1', target, '127.0.0.1', 50_000, (error, channel) => (error ? reject(error) : resolve(channel))),
      ),
    close() {
      client.end();
      (server as unknown as NetServer).close();
    },
  };
  opened.push(handle);
  return handle;
}

/** Echo server behind the forward: what the guest writes comes back upper-cased. */
function upperCaser(stream: Duplex): void {
  stream.on('data', (chunk: Buffer) => stream.write(chunk.toString().toUpperCase()));
}

async function waitFor(condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function roundTrip(stream: Duplex, text: string): Promise<string> {
  const answer = new Promise<string>((resolve) => stream.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  stream.write(text);
  return answer;
}

describe('forwarding a guest port to forgevm', () => {
  it('takes the port the server chooses, carries connections both ways, and cancels on close', async () => {
    const server = await sshd((port) => (port === 0 ? 41_234 : port));
    const forward = await forwardGuestPort(server.client, upperCaser);
    expect(forward.port).toBe(41_234);
    const stream = await server.connectFromGuest(41_234);
    expect(await roundTrip(stream, 'hello')).toBe('HELLO');
    await forward.close();
    expect(server.requests).toEqual(['tcpip-forward 0', 'cancel-tcpip-forward 41234']);
    // After close, the server's connections to that port are refused by the client.
    await expect(server.connectFromGuest(41_234)).rejects.toThrow();
  });

  it('falls back to fixed ports when the server refuses port 0, skipping one in use', async () => {
    const taken = FALLBACK_GUEST_PORTS[0];
    const server = await sshd((port) => (port === 0 || port === taken ? 'refuse' : port));
    const forward = await forwardGuestPort(server.client, upperCaser);
    expect(forward.port).toBe(FALLBACK_GUEST_PORTS[1]);
    expect(server.requests).toEqual(['tcpip-forward 0', `tcpip-forward ${taken}`, `tcpip-forward ${FALLBACK_GUEST_PORTS[1]}`]);
    expect(await roundTrip(await server.connectFromGuest(forward.port), 'fallback')).toBe('FALLBACK');
  });

  it('does not trust a port-0 forward whose port the server kept to itself', async () => {
    const server = await sshd((port) => (port === 0 ? 'silent' : port));
    const forward = await forwardGuestPort(server.client, upperCaser);
    expect(forward.port).toBe(FALLBACK_GUEST_PORTS[0]);
    expect(server.requests.slice(0, 3)).toEqual(['tcpip-forward 0', 'cancel-tcpip-forward 0', `tcpip-forward ${FALLBACK_GUEST_PORTS[0]}`]);
  });

  it("serves a job's services over the forwarded channels, several requests per connection (keep-alive)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fvm-forward-services-'));
    const services = await RunnerServices.open({ dir });
    try {
      const job = services.openJob(identity());
      const server = await sshd((port) => (port === 0 ? 41_300 : port));
      const forward = await forwardGuestPort(server.client, (stream) => job.accept(stream));
      const token = job.env(forward.port).ACTIONS_RUNTIME_TOKEN;
      const channel = await server.connectFromGuest(forward.port);
      let received = '';
      channel.on('data', (chunk: Buffer) => (received += chunk.toString()));
      const ask = `GET /_apis/artifactcache/cache?keys=k&version=v HTTP/1.1\r\nHost: 127.0.0.1:${forward.port}\r\nAuthorization: Bearer ${token}\r\n\r\n`;
      channel.write(ask);
      await waitFor(() => /^HTTP\/1\.1 204 /m.test(received));
      channel.write(ask.replace('keys=k', 'keys=other'));
      await waitFor(() => received.match(/^HTTP\/1\.1 204 /gm)?.length === 2);
      expect(received).not.toMatch(/connection: close/i);
      await job.close();
      await waitFor(() => channel.destroyed || !channel.readable);
    } finally {
      await services.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says what to change when the server forwards nothing', async () => {
    const server = await sshd(() => 'refuse');
    const error = await forwardGuestPort(server.client, upperCaser).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForwardError);
    expect((error as Error).message).toMatch(/^the guest's SSH server refused to forward a port back to forgevm \(port 0: .*port 47634: .*\): allow TCP forwarding in its sshd/);
  });
});
