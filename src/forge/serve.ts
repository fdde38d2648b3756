/**
 * `forgevm serve`: load the configuration, open the store, recover from a previous crash,
 * listen for webhooks. The worker (src/scheduler, another module) is plugged in through
 * `startWorker` so this file does not depend on it.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import { loadConfig, type Config } from '../config/config.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { SqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/store.ts';
import { createApp } from './server.ts';

/** A stop that takes longer than this after SIGTERM exits anyway (service managers wait ~10 s). */
const STOP_DEADLINE_MS = 9_000;

export interface RunningServer {
  /** `http://host:port`, with the real port when 0 was asked for. */
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Listens with timeouts that keep slow or stalled clients from holding connections forever. */
export function startHttpServer(app: Hono, options: { port: number; host: string }): Promise<RunningServer> {
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  // Forges give up after 5-10 s; a client still sending after 30 s is not a forge.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  return new Promise((resolvePromise, rejectPromise) => {
    server.once('error', rejectPromise);
    server.listen(options.port, options.host, () => {
      server.off('error', rejectPromise);
      const { port } = server.address() as AddressInfo;
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      resolvePromise({
        url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`,
        port,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** What the worker gets to run with, and what serve needs back from it. */
export interface WorkerContext {
  config: Config;
  store: Store;
  logger: Logger;
}
export interface WorkerHandle {
  /** Called after each stored delivery. */
  wake(): void;
  /** Stops taking new work; resolves when the worker is idle. */
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** `--config`. */
  config?: string;
  /** Default process.env. */
  env?: Record<string, string | undefined>;
  /** Default: the configured PORT. */
  port?: number;
  startWorker?: (context: WorkerContext) => Promise<WorkerHandle> | WorkerHandle;
  /** Default true: stop cleanly on SIGINT/SIGTERM. */
  handleSignals?: boolean;
}

export interface ServeHandle extends RunningServer {
  config: Config;
  store: Store;
  logger: Logger;
  /** Stops listening, stops the worker, closes the store. */
  stop(): Promise<void>;
}

export async function serveCommand(options: ServeOptions = {}): Promise<ServeHandle> {
  const config = loadConfig({ file: options.config, env: options.env ?? process.env });
  const logger = createLogger({ level: config.logLevel });
  if (!config.github && !config.forgejo) {
    throw new Error(
      'serve: no forge configured; set APP_ID, PRIVATE_KEY and WEBHOOK_SECRET for a GitHub App, or FORGEJO_URL, FORGEJO_TOKEN and FORGEJO_WEBHOOK_SECRET for Forgejo/Gitea',
    );
  }
  const store = new SqliteStore({ dir: config.stateDir, synchronous: config.store.synchronous });
  const requeued = await store.requeueStaleProcessing();
  if (requeued > 0) logger.warn({ requeued }, `requeued ${requeued} deliveries left processing by a previous run`);

  let worker: WorkerHandle | undefined;
  const app = createApp({
    store,
    github: config.github,
    forgejo: config.forgejo,
    logger,
    maxBytesInFlight: config.webhookBytesInFlight,
    onDelivery: () => worker?.wake(),
  });
  const running = await startHttpServer(app, { port: options.port ?? config.port, host: config.host });
  worker = await options.startWorker?.({ config, store, logger });
  logger.info(
    { url: running.url, stateDir: config.stateDir, github: config.github?.webhookPath ?? null, forgejo: config.forgejo ? '/webhooks/forgejo' : null },
    `forgevm serve listening on ${config.host}:${running.port}`,
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info('forgevm serve stopping');
      await running.close();
      await worker?.stop();
      await store.close();
    })());
  if (options.handleSignals ?? true) {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        logger.warn({ signal }, `received ${signal} again while stopping; exiting now`);
        process.exit(1);
      }
      signalled = true;
      const started = performance.now();
      logger.info({ signal }, `received ${signal}`);
      // The worker bounds its own wind-down; this bounds everything else (a store that hangs).
      setTimeout(() => {
        logger.error({ signal }, `forgevm serve did not stop within ${STOP_DEADLINE_MS / 1000} s of ${signal}; exiting anyway`);
        process.exit(1);
      }, STOP_DEADLINE_MS).unref();
      void stop().then(() => {
        logger.info({ signal, ms: Math.round(performance.now() - started) }, `forgevm serve stopped`);
        process.exit(0);
      });
    };
    // `on`, not `once`: execa's exit hook (signal-exit) re-raises a signal that no other listener
    // holds anymore, which killed forgevm mid-stop whenever a QEMU child was running.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  return { ...running, config, store, logger, stop };
}
