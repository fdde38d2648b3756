/** `forgevm serve` as the CLI starts it: config from the environment, store recovery, worker hook. */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../src/forge/serve.ts';
import { ConfigError } from '../src/config/config.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { delivery } from './support/store-contract.ts';
import { forgejoHeaders, forgejoPush } from './support/webhooks.ts';

const dir = mkdtempSync(join(tmpdir(), 'forgevm-serve-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

describe('forgevm serve', () => {
  it('requeues deliveries a crashed run left processing, wakes the worker per delivery, and stops cleanly', async () => {
    const stateDir = join(dir, 'state');
    const before = new SqliteStore({ dir: stateDir });
    await before.insertDelivery(delivery('left-over'));
    await before.claimNextDelivery();
    await before.close();

    let wakes = 0;
    let stopped = false;
    const handle = await serveCommand({
      env: { APP_ID: '1', PRIVATE_KEY: pem, WEBHOOK_SECRET: 's', FORGEJO_URL: 'https://forge.example.org', FORGEJO_TOKEN: 't', FORGEJO_WEBHOOK_SECRET: 'fs', FORGEVM_STATE_DIR: stateDir, HOST: '127.0.0.1', LOG_LEVEL: 'silent' },
      port: 0,
      handleSignals: false,
      startWorker: ({ store, config }) => {
        expect(config.stateDir).toBe(stateDir);
        expect(store).toBeDefined();
        return { wake: () => wakes++, stop: async () => void (stopped = true) };
      },
    });
    expect((await handle.store.getDelivery('left-over'))?.status).toBe('pending');
    const body = JSON.stringify(forgejoPush('c'.repeat(40)));
    const res = await fetch(`${handle.url}/webhooks/forgejo`, { method: 'POST', headers: forgejoHeaders('fs', 'push', 'f-1', body), body });
    expect(res.status).toBe(202);
    expect(wakes).toBe(1);
    expect(await (await fetch(`${handle.url}/healthz`)).json()).toEqual({ ok: true, store: true });
    await handle.stop();
    expect(stopped).toBe(true);
    await expect(fetch(`${handle.url}/healthz`)).rejects.toThrow();
  });

  it('refuses to start without a forge, and reports configuration problems as lines', async () => {
    await expect(serveCommand({ env: { FORGEVM_STATE_DIR: join(dir, 'x') }, handleSignals: false })).rejects.toThrow(/no forge configured; set APP_ID/);
    await expect(serveCommand({ env: { APP_ID: 'x', PRIVATE_KEY: pem, WEBHOOK_SECRET: 's' }, handleSignals: false })).rejects.toBeInstanceOf(ConfigError);
  });
});
