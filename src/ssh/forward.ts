/**
 * A port inside the guest that leads back to the host: SSH remote forwarding (`ssh -R`). The
 * guest's sshd listens on 127.0.0.1:<port> in the guest, and each connection to it arrives here
 * as a stream over the job's own SSH connection. It works whatever the guest's network is, also
 * with `network: isolated` (QEMU's restrict=on), where this SSH connection is the only way out,
 * and only the job that owns the SSH connection can reach what is behind it.
 *
 * The port is the guest's choice where its sshd supports it (port 0: OpenSSH and dropbear both
 * answer with the port they bound). A server that refuses port 0, or accepts it without saying
 * which port it bound, gets fixed ports instead, tried in order until one is free.
 */
import type { Duplex } from 'node:stream';
import type { SshClient } from './connect.ts';

/** Tried in order when the guest's sshd cannot choose a port itself. High, unassigned, unlikely to be in use. */
export const FALLBACK_GUEST_PORTS = [47_631, 47_632, 47_633, 47_634] as const;

/** Loopback only: nothing outside the guest may reach the forward. */
const GUEST_BIND_ADDRESS = '127.0.0.1';

export interface GuestForward {
  /** The port the guest connects to, on 127.0.0.1. */
  readonly port: number;
  /** Stop listening in the guest. Connections already open stay until either side closes them. */
  close(): Promise<void>;
}

export interface ForwardOptions {
  /** Fixed ports to try when the server cannot choose one; default FALLBACK_GUEST_PORTS. */
  fallbackPorts?: readonly number[];
  /** Skip port 0 and go straight to the fixed ports (tests of the fallback). */
  fixedPortsOnly?: boolean;
}

export class ForwardError extends Error {}

/**
 * Make the guest listen on 127.0.0.1:<port> and hand every connection to `onConnection` as a
 * duplex stream (the SSH channel). Resolves once the guest listens.
 */
export async function forwardGuestPort(client: SshClient, onConnection: (stream: Duplex) => void, options: ForwardOptions = {}): Promise<GuestForward> {
  const failures: string[] = [];
  let port = 0;
  if (!options.fixedPortsOnly) {
    try {
      port = await requestForward(client, 0);
    } catch (error) {
      failures.push(`port 0: ${(error as Error).message}`);
    }
    if (port === 0 && failures.length === 0) {
      // Accepted, but the server did not say which port it bound: that forward is unusable.
      failures.push('port 0: the server did not report the port it bound');
      await cancelForward(client, 0);
    }
  }
  for (const candidate of port === 0 ? (options.fallbackPorts ?? FALLBACK_GUEST_PORTS) : []) {
    try {
      port = await requestForward(client, candidate);
      break;
    } catch (error) {
      failures.push(`port ${candidate}: ${(error as Error).message}`);
    }
  }
  if (port === 0) {
    throw new ForwardError(
      `the guest's SSH server refused to forward a port back to forgevm (${failures.join('; ')}): allow TCP forwarding in its sshd (OpenSSH: AllowTcpForwarding yes; dropbear: no -k/-j flags)`,
    );
  }

  const boundPort = port;
  const onTcpConnection = (details: { destPort: number }, accept: () => Duplex, reject: () => void) => {
    if (details.destPort !== boundPort) return reject();
    onConnection(accept());
  };
  client.on('tcp connection', onTcpConnection);
  let closed = false;
  return {
    port: boundPort,
    async close() {
      if (closed) return;
      closed = true;
      client.off('tcp connection', onTcpConnection);
      await cancelForward(client, boundPort);
    },
  };
}

function requestForward(client: SshClient, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    try {
      client.forwardIn(GUEST_BIND_ADDRESS, port, (error, bound) => (error ? reject(error) : resolve(bound)));
    } catch (error) {
      reject(error as Error);
    }
  });
}

/** Best effort: the connection may already be gone, and then so is the listener. */
function cancelForward(client: SshClient, port: number): Promise<void> {
  return new Promise((resolve) => {
    try {
      client.unforwardIn(GUEST_BIND_ADDRESS, port, () => resolve());
    } catch {
      resolve();
    }
  });
}
