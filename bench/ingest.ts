/**
 * Webhook ingest benchmark: the same signed GitHub push deliveries (unique delivery ids) sent
 * over loopback to `forgevm serve` (stores each delivery durably before answering) and to
 * Probot's own server with a no-op push handler.
 *
 *   npm run bench:ingest [-- --count 3000 --rate 200 --seconds 10 --connections 20]
 *
 * Each server runs in its own child process (logging at info to /dev/null, as in production
 * with a log shipper) so that the load generator does not share its event loop. Two phases per
 * server: unlimited rate with N keep-alive connections, then a fixed arrival rate where latency
 * is measured from each request's scheduled send time (so a stalled server cannot hide queueing).
 * Afterwards the forgevm store is read back: every acknowledged delivery must be there once.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { SqliteStore } from '../src/store/sqlite.ts';

const SECRET = 'bench-secret';
const APP_ID = 4242;

type Target = 'forgevm' | 'forgevm-normal' | 'probot';
type ChildMessage = { ready: string } | { handled: number } | { commits: number; syncs: number };

// ------------------------------------------------------------------------------------ servers

async function runServer(target: Target, stateDir: string): Promise<void> {
  const privateKey = process.env.BENCH_PRIVATE_KEY!;
  const send = (m: ChildMessage) => process.send?.(m);
  if (target !== 'probot') {
    const { serveCommand } = await import('../src/forge/serve.ts');
    const sync = target === 'forgevm' ? 'full' : 'normal';
    const handle = await serveCommand({
      env: { APP_ID: String(APP_ID), PRIVATE_KEY: privateKey, WEBHOOK_SECRET: SECRET, FORGEVM_STATE_DIR: stateDir, FORGEVM_STORE_SYNC: sync, HOST: '127.0.0.1', LOG_LEVEL: 'info' },
      port: 0,
      handleSignals: false,
    });
    process.on('message', async (m) => {
      if (m === 'stop') {
        const stats = (handle.store as SqliteStore).deliveryWriterStats;
        send({ commits: stats.commits, syncs: stats.syncs });
        await handle.stop();
        process.exit(0);
      }
    });
    send({ ready: `${handle.url}/webhooks/github` });
    return;
  }
  const { Probot, Server } = await import('probot');
  const pino = (await import('pino')).default;
  const log = pino({ level: 'info' });
  let handled = 0;
  const server = new Server({
    Probot: Probot.defaults({ appId: APP_ID, privateKey, secret: SECRET, log }),
    log,
    port: 0,
    host: '127.0.0.1',
    enableStaticFiles: false,
  });
  await server.load((app) => {
    app.on('push', async () => {
      handled++;
    });
  });
  await server.start();
  process.on('message', async (m) => {
    if (m === 'stop') {
      send({ handled });
      await server.stop();
      process.exit(0);
    }
  });
  send({ ready: `http://127.0.0.1:${server.port}/api/github/webhooks` });
}

function startChild(target: Target, stateDir: string, privateKey: string): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', target, '--state', stateDir], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_PRIVATE_KEY: privateKey },
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${target} server exited with ${code} before it was ready`)));
    child.on('message', (m: ChildMessage) => {
      if ('ready' in m) resolve({ child, url: m.ready });
    });
  });
}

function stopChild(child: ChildProcess): Promise<{ handled: number | null; commits: string | null }> {
  return new Promise((resolve) => {
    let handled: number | null = null;
    let commits: string | null = null;
    child.on('message', (m: ChildMessage) => {
      if ('handled' in m) handled = m.handled;
      if ('commits' in m) commits = `${m.commits} commits, ${m.syncs} WAL syncs`;
    });
    child.once('exit', () => resolve({ handled, commits }));
    child.send('stop');
  });
}

// ------------------------------------------------------------------------------------ load

interface PhaseResult {
  sent: number;
  ok: number;
  failed: number;
  seconds: number;
  latenciesMs: number[];
  ackedIds: string[];
}

const body = JSON.stringify(
  (createRequire(import.meta.url)('@octokit/webhooks-examples/api.github.com/index.json') as Array<{ name: string; examples: Array<Record<string, unknown>> }>)
    .find((e) => e.name === 'push')!
    .examples.find((p) => p.deleted === false && p.ref === 'refs/heads/master'),
);
const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;

async function deliver(pool: Pool, path: string, id: string): Promise<boolean> {
  const res = await pool.request({
    method: 'POST',
    path,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': id,
      'x-hub-signature-256': signature,
      'user-agent': 'GitHub-Hookshot/bench',
    },
    body,
  });
  await res.body.dump();
  return res.statusCode >= 200 && res.statusCode < 300;
}

async function unlimited(pool: Pool, path: string, prefix: string, count: number, connections: number): Promise<PhaseResult> {
  const latenciesMs: number[] = [];
  const ackedIds: string[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < count) {
        const id = `${prefix}-${next++}`;
        const t0 = performance.now();
        const ok = await deliver(pool, path, id).catch(() => false);
        latenciesMs.push(performance.now() - t0);
        if (ok) ackedIds.push(id);
        else failed++;
      }
    }),
  );
  return { sent: count, ok: ackedIds.length, failed, seconds: (performance.now() - started) / 1000, latenciesMs, ackedIds };
}

async function fixedRate(pool: Pool, path: string, prefix: string, rate: number, seconds: number): Promise<PhaseResult> {
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const latenciesMs: number[] = [];
  const ackedIds: string[] = [];
  let failed = 0;
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = started + i * interval;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const id = `${prefix}-${i}`;
    inflight.push(
      deliver(pool, path, id)
        .catch(() => false)
        .then((ok) => {
          latenciesMs.push(performance.now() - scheduled);
          if (ok) ackedIds.push(id);
          else failed++;
        }),
    );
  }
  await Promise.all(inflight);
  return { sent: total, ok: ackedIds.length, failed, seconds: (performance.now() - started) / 1000, latenciesMs, ackedIds };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

// ------------------------------------------------------------------------------------ main

interface TargetReport {
  unlimited: PhaseResult;
  fixed: PhaseResult;
  lost: number | null;
  duplicated: number | null;
  /** forgevm: SQLite commits for all deliveries (group-commit factor = deliveries / commits). */
  commits: string | null;
}

async function benchTarget(target: Target, opts: { count: number; rate: number; seconds: number; connections: number }, privateKey: string): Promise<TargetReport> {
  const stateDir = mkdtempSync(join(tmpdir(), `forgevm-bench-${target}-`));
  try {
    const { child, url } = await startChild(target, stateDir, privateKey);
    const { origin, pathname } = new URL(url);
    const pool = new Pool(origin, { connections: opts.connections, pipelining: 1, keepAliveTimeout: 30_000 });
    await unlimited(pool, pathname, `${target}-warmup`, 300, opts.connections);
    const u = await unlimited(pool, pathname, `${target}-unlimited`, opts.count, opts.connections);
    const f = await fixedRate(pool, pathname, `${target}-fixed`, opts.rate, opts.seconds);
    await pool.close();
    const { handled, commits } = await stopChild(child);
    const acked = [...u.ackedIds, ...f.ackedIds];
    let lost: number | null = null;
    let duplicated: number | null = null;
    if (target !== 'probot') {
      // Read back what forgevm committed: every acknowledged delivery exactly once.
      const Database = (await import('better-sqlite3')).default;
      const db = new Database(join(stateDir, 'forgevm.db'), { readonly: true });
      const rows = db.prepare(`SELECT id FROM deliveries WHERE id NOT LIKE '%-warmup-%'`).all() as Array<{ id: string }>;
      db.close();
      const counts = new Map<string, number>();
      for (const { id } of rows) counts.set(id, (counts.get(id) ?? 0) + 1);
      lost = acked.filter((id) => !counts.has(id)).length;
      duplicated = [...counts.values()].reduce((sum, n) => sum + (n - 1), 0);
    } else if (handled !== null) {
      // Probot keeps nothing: compare handler calls with acknowledgements (warm-up included).
      const total = acked.length + 300;
      lost = Math.max(0, total - handled);
      duplicated = Math.max(0, handled - total);
    }
    return { unlimited: u, fixed: f, lost, duplicated, commits };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

function line(name: string, r: PhaseResult): string {
  const rps = r.ok / r.seconds;
  return `${name.padEnd(28)} ${String(r.ok).padStart(6)}/${String(r.sent).padEnd(6)} ${rps.toFixed(0).padStart(7)} req/s   p50 ${percentile(r.latenciesMs, 50).toFixed(2).padStart(7)} ms   p99 ${percentile(r.latenciesMs, 99).toFixed(2).padStart(7)} ms   failed ${r.failed}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      state: { type: 'string' },
      count: { type: 'string', default: '3000' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '20' },
    },
  });
  if (values.serve) return runServer(values.serve as Target, values.state!);
  const opts = { count: Number(values.count), rate: Number(values.rate), seconds: Number(values.seconds), connections: Number(values.connections) };
  const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  console.log(`load: ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')} (1/5/15 min) on ${(await import('node:os')).cpus().length} cores`);
  console.log(`webhook ingest: ${body.length}-byte signed push, ${opts.count} requests over ${opts.connections} connections, then ${opts.rate}/s for ${opts.seconds} s`);
  const full = await benchTarget('forgevm', opts, privateKey);
  const normal = await benchTarget('forgevm-normal', opts, privateKey);
  const probot = await benchTarget('probot', opts, privateKey);
  const rps = (r: PhaseResult) => r.ok / r.seconds;
  for (const [name, r] of [['forgevm FULL', full], ['forgevm NORMAL', normal], ['probot', probot]] as const) {
    console.log(line(`${name} unlimited`, r.unlimited));
    console.log(line(`${name} ${opts.rate}/s`, r.fixed));
  }
  console.log('');
  for (const [name, r] of [['FULL', full], ['NORMAL', normal]] as const) {
    const deliveries = r.unlimited.sent + r.fixed.sent + 300;
    console.log(
      `forgevm ${name.padEnd(6)}: ratio to probot ${(rps(r.unlimited) / rps(probot.unlimited)).toFixed(2)} (target ≥ 1.0)   ` +
        `p99 at ${opts.rate}/s ${percentile(r.fixed.latenciesMs, 99).toFixed(2)} ms (target < 25)   ` +
        `lost ${r.lost} duplicated ${r.duplicated} (target 0/0, read back from SQLite)   ` +
        `${deliveries} deliveries: ${r.commits}`,
    );
  }
  console.log(`probot        : lost ${probot.lost} duplicated ${probot.duplicated} (handler calls vs 2xx; Probot stores nothing)`);
}

await main();
