/**
 * Shared pieces of the end-to-end forge tests: `forgevm serve` in-process with the real worker
 * and a real VM engine, polling until something is true, and signed webhook POSTs.
 */
import type { Engine } from '../../src/job/run-job.ts';
import { serveCommand, type ServeHandle } from '../../src/forge/serve.ts';
import { startWorker } from '../../src/scheduler/start-worker.ts';
import { forgejoHeaders, githubHeaders } from './webhooks.ts';

/** `forgevm serve` on port 0 with `env` as its whole environment and the real worker on `engine`. */
export async function serveWithEngine(env: Record<string, string>, engine: Engine): Promise<ServeHandle> {
  return serveCommand({
    env,
    port: 0,
    handleSignals: false,
    startWorker: async (context) => {
      // A short tail interval so a live update shows up within one short job.
      const worker = await startWorker({ ...context, engine, progressIntervalMs: 3_000, pollIntervalMs: 200 });
      return { wake: () => worker.notify(), stop: () => worker.stop() };
    },
  });
}

/** Polls `probe` until it returns something truthy; fails with `what` and the last value after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 120_000, everyMs = 250): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last value: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface PostResult {
  status: number;
  body: string;
}

export async function postGithubDelivery(baseUrl: string, secret: string, event: string, delivery: string, payload: unknown, path = '/webhooks/github'): Promise<PostResult> {
  const body = JSON.stringify(payload);
  const response = await fetch(`${baseUrl}${path}`, { method: 'POST', headers: githubHeaders(secret, event, delivery, body), body });
  return { status: response.status, body: await response.text() };
}

export async function postForgejoDelivery(baseUrl: string, secret: string, event: string, delivery: string, payload: unknown): Promise<PostResult> {
  const body = JSON.stringify(payload);
  const response = await fetch(`${baseUrl}/webhooks/forgejo`, { method: 'POST', headers: forgejoHeaders(secret, event, delivery, body), body });
  return { status: response.status, body: await response.text() };
}
