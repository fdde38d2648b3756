/**
 * Webhook ingest benchmark: the same signed GitHub push deliveries (unique delivery ids) sent
 * over loopback to `forgevm serve` (stores each delivery durably before answering) and to
 * Probot's own server with a no-op push handler.
 *
 *   npm run bench:ingest [-- --rounds 5 --count 2000 --rate 200 --seconds 10 --connections 20]
 *
 * Each server runs in its own child process (logging at info to /dev/null, as in production
 * with a log shipper) so that the load generator does not share its event loop. All servers
 * are up at once and take turns: `--rounds` rounds of `--count` requests at unlimited rate over
 * N keep-alive connections, in a rotating order, so background load drifts hit them alike.
 * Then a fixed arrival rate per server, where latency is measured from each request's
 * scheduled send time (so a stalled server cannot hide queueing). Afterwards the forgevm stores
 * are read back: every acknowledged delivery must be there once.
 *
 * CPU per request (all threads of the server process, and of this load generator) is printed
 * too: on a small machine it is steadier than throughput, and says where the time goes.
 * `BENCH_PROFILE_DIR=/tmp/prof` writes a V8 CPU profile of each server there.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance as perfHooks } from 'node:perf_hooks';
import type { SqliteStore } from '../src/store/sqlite.ts';
import { LoadPool } from './lib/http-load.ts';
import { median } from './lib/stats.ts';

const SECRET = 'bench-secret';
const APP_ID = 4242;

type Target = 'forgevm' | 'forgevm-normal' | 'probot';
type ChildMessage = { ready: string } | { cpuUs: number; mainUs: number } | { handled: number } | { commits: number; syncs: number; syncMs: number; maxSyncMs: number; commitMs: number; maxCommitMs: number; slowCommits: number };

// ------------------------------------------------------------------------------------ servers

async function runServer(target: Target, stateDir: string): Promise<void> {
  const privateKey = process.env.BENCH_PRIVATE_KEY!;
  const send = (m: ChildMessage) => process.send?.(m);
  // CPU time of the whole server process (all threads), read around each phase.
  process.on('message', (m) => {
    if (m === 'cpu') {
      const { user, system } = process.cpuUsage();
      send({ cpuUs: user + system, mainUs: perfHooks.eventLoopUtilization().active * 1000 });
    }
  });
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
        const store = handle.store as SqliteStore;
        const stats = store.deliveryWriterStats;
        send({ commits: stats.commits, syncs: stats.syncs, syncMs: stats.syncMs, maxSyncMs: stats.maxSyncMs, commitMs: stats.commitMs, maxCommitMs: stats.maxCommitMs, slowCommits: stats.slowCommits });
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
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [])],
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

/** The server's CPU time (all threads) and its main thread's busy time (event-loop utilisation), in µs. */
function childUsage(child: ChildProcess): Promise<{ cpuUs: number; mainUs: number }> {
  return new Promise((resolve) => {
    const onMessage = (m: ChildMessage) => {
      if (!('cpuUs' in m)) return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.send('cpu');
  });
}

const ownCpuUs = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

function stopChild(child: ChildProcess): Promise<{ handled: number | null; commits: string | null }> {
  return new Promise((resolve) => {
    let handled: number | null = null;
    let commits: string | null = null;
    child.on('message', (m: ChildMessage) => {
      if ('handled' in m) handled = m.handled;
      if ('commits' in m) commits = `${m.commits} commits, ${m.syncs} WAL syncs (mean ${(m.syncMs / Math.max(1, m.syncs)).toFixed(2)} ms, max ${m.maxSyncMs} ms); commits took ${m.commitMs} ms in all, max ${m.maxCommitMs} ms, ${m.slowCommits} over 5 ms (checkpoints)`;
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
  /** Unlimited phase: CPU time (all threads) per request, of the server and of this load generator. */
  serverCpuUsPerRequest?: number;
  clientCpuUsPerRequest?: number;
  /** Busy time of the server's main thread (event loop) per request, and as a share of the phase. */
  serverMainUsPerRequest?: number;
  serverMainBusy?: number;
  /** Share of the phase this load generator's event loop was busy. */
  clientLoopBusy?: number;
}

const body = JSON.stringify(
  (createRequire(import.meta.url)('@octokit/webhooks-examples/api.github.com/index.json') as Array<{ name: string; examples: Array<Record<string, unknown>> }>)
    .find((e) => e.name === 'push')!
    .examples.find((p) => p.deleted === false && p.ref === 'refs/heads/master'),
);
const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;

const bodyBytes = Buffer.from(body);

async function deliver(pool: LoadPool, path: string, id: string): Promise<boolean> {
  const status = await pool.post({
    path,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': id,
      'x-hub-signature-256': signature,
      'user-agent': 'GitHub-Hookshot/bench',
    },
    body: bodyBytes,
  });
  return status >= 200 && status < 300;
}

async function unlimited(pool: LoadPool, path: string, prefix: string, count: number, connections: number): Promise<PhaseResult> {
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

async function fixedRate(pool: LoadPool, path: string, prefix: string, rate: number, seconds: number): Promise<PhaseResult> {
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

const TARGETS: Array<{ target: Target; label: string }> = [
  { target: 'forgevm', label: 'forgevm FULL' },
  { target: 'forgevm-normal', label: 'forgevm NORMAL' },
  { target: 'probot', label: 'probot' },
];
const WARMUP = 2000;

interface RunningTarget {
  target: Target;
  label: string;
  child: ChildProcess;
  pool: LoadPool;
  path: string;
  stateDir: string;
  rounds: PhaseResult[];
  fixed?: PhaseResult;
}

async function startTarget(target: Target, label: string, privateKey: string, connections: number): Promise<RunningTarget> {
  const stateDir = mkdtempSync(join(tmpdir(), `forgevm-bench-${target}-`));
  const { child, url } = await startChild(target, stateDir, privateKey);
  const { origin, pathname } = new URL(url);
  const pool = new LoadPool(origin);
  await unlimited(pool, pathname, `${target}-warmup`, WARMUP, connections);
  return { target, label, child, pool, path: pathname, stateDir, rounds: [] };
}

/** One unlimited-rate round, with the server's and this process's CPU time around it. */
async function round(t: RunningTarget, index: number, count: number, connections: number): Promise<PhaseResult> {
  const [serverBefore, clientBefore, clientLoopBefore] = [await childUsage(t.child), ownCpuUs(), perfHooks.eventLoopUtilization()];
  const r = await unlimited(t.pool, t.path, `${t.target}-unlimited${index}`, count, connections);
  const serverAfter = await childUsage(t.child);
  r.serverCpuUsPerRequest = (serverAfter.cpuUs - serverBefore.cpuUs) / r.sent;
  r.serverMainUsPerRequest = (serverAfter.mainUs - serverBefore.mainUs) / r.sent;
  r.serverMainBusy = (serverAfter.mainUs - serverBefore.mainUs) / 1e6 / r.seconds;
  r.clientCpuUsPerRequest = (ownCpuUs() - clientBefore) / r.sent;
  r.clientLoopBusy = perfHooks.eventLoopUtilization(clientLoopBefore).utilization;
  return r;
}

/** Stops the server and checks that every acknowledged delivery was kept exactly once. */
async function verify(t: RunningTarget): Promise<{ lost: number | null; duplicated: number | null; stats: string | null }> {
  t.pool.close();
  const { handled, commits } = await stopChild(t.child);
  const acked = [...t.rounds, ...(t.fixed ? [t.fixed] : [])].flatMap((r) => r.ackedIds);
  try {
    if (t.target !== 'probot') {
      // Read back what forgevm committed.
      const Database = (await import('better-sqlite3')).default;
      const db = new Database(join(t.stateDir, 'forgevm.db'), { readonly: true });
      const rows = db.prepare(`SELECT id FROM deliveries WHERE id NOT LIKE '%-warmup-%'`).all() as Array<{ id: string }>;
      db.close();
      const counts = new Map<string, number>();
      for (const { id } of rows) counts.set(id, (counts.get(id) ?? 0) + 1);
      const lost = acked.filter((id) => !counts.has(id)).length;
      const duplicated = [...counts.values()].reduce((sum, n) => sum + (n - 1), 0);
      return { lost, duplicated, stats: commits };
    }
    if (handled === null) return { lost: null, duplicated: null, stats: null };
    // Probot keeps nothing: compare handler calls with acknowledgements (warm-up included).
    const total = acked.length + WARMUP;
    return { lost: Math.max(0, total - handled), duplicated: Math.max(0, handled - total), stats: null };
  } finally {
    rmSync(t.stateDir, { recursive: true, force: true });
  }
}

const rps = (r: PhaseResult) => r.ok / r.seconds;

function merge(rounds: PhaseResult[]): PhaseResult {
  return {
    sent: rounds.reduce((n, r) => n + r.sent, 0),
    ok: rounds.reduce((n, r) => n + r.ok, 0),
    failed: rounds.reduce((n, r) => n + r.failed, 0),
    seconds: rounds.reduce((n, r) => n + r.seconds, 0),
    latenciesMs: rounds.flatMap((r) => r.latenciesMs),
    ackedIds: rounds.flatMap((r) => r.ackedIds),
    serverCpuUsPerRequest: median(rounds.map((r) => r.serverCpuUsPerRequest!)),
    serverMainUsPerRequest: median(rounds.map((r) => r.serverMainUsPerRequest!)),
    serverMainBusy: median(rounds.map((r) => r.serverMainBusy!)),
    clientLoopBusy: median(rounds.map((r) => r.clientLoopBusy!)),
    clientCpuUsPerRequest: median(rounds.map((r) => r.clientCpuUsPerRequest!)),
  };
}

function line(name: string, r: PhaseResult): string {
  return `${name.padEnd(28)} ${String(r.ok).padStart(6)}/${String(r.sent).padEnd(6)} ${rps(r).toFixed(0).padStart(7)} req/s   p50 ${percentile(r.latenciesMs, 50).toFixed(2).padStart(7)} ms   p99 ${percentile(r.latenciesMs, 99).toFixed(2).padStart(7)} ms   failed ${r.failed}${r.serverCpuUsPerRequest ? `   CPU/req: server ${r.serverCpuUsPerRequest.toFixed(0)} µs (event loop ${r.serverMainUsPerRequest!.toFixed(0)} µs, ${(100 * r.serverMainBusy!).toFixed(0)}% busy), client ${r.clientCpuUsPerRequest!.toFixed(0)} µs (${(100 * r.clientLoopBusy!).toFixed(0)}% busy)` : ''}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      state: { type: 'string' },
      rounds: { type: 'string', default: '5' },
      count: { type: 'string', default: '2000' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '20' },
    },
  });
  if (values.serve) return runServer(values.serve as Target, values.state!);
  const opts = { rounds: Number(values.rounds), count: Number(values.count), rate: Number(values.rate), seconds: Number(values.seconds), connections: Number(values.connections) };
  const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  console.log(`load: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (1/5/15 min) on ${cpus().length} cores`);
  console.log(
    `webhook ingest: ${body.length}-byte signed push; ${opts.rounds} rounds of ${opts.count} requests over ${opts.connections} connections per server, ` +
      `servers taking turns; then ${opts.rate}/s for ${opts.seconds} s each`,
  );

  // All servers run at once and take turns, in a rotating order, so that drift in background
  // load hits them alike; the ratio is the median of the per-round ratios.
  const running: RunningTarget[] = [];
  for (const { target, label } of TARGETS) running.push(await startTarget(target, label, privateKey, opts.connections));
  for (let i = 0; i < opts.rounds; i++) {
    const order = running.map((_, k) => running[(k + i) % running.length]!);
    for (const t of order) t.rounds.push(await round(t, i, opts.count, opts.connections));
    console.log(`round ${i + 1}: ${running.map((t) => `${t.label} ${rps(t.rounds[i]!).toFixed(0)} req/s (${t.rounds[i]!.serverCpuUsPerRequest!.toFixed(0)} µs CPU/req, loop ${(100 * t.rounds[i]!.serverMainBusy!).toFixed(0)}% busy)`).join(', ')}`);
  }
  for (const t of running) t.fixed = await fixedRate(t.pool, t.path, `${t.target}-fixed`, opts.rate, opts.seconds);
  const checks = new Map<RunningTarget, Awaited<ReturnType<typeof verify>>>();
  for (const t of running) checks.set(t, await verify(t));

  console.log('');
  for (const t of running) {
    console.log(line(`${t.label} unlimited`, merge(t.rounds)));
    console.log(line(`${t.label} ${opts.rate}/s`, t.fixed!));
  }
  console.log('');
  const probot = running.find((t) => t.target === 'probot')!;
  for (const t of running) {
    const check = checks.get(t)!;
    if (t === probot) {
      console.log(`${t.label.padEnd(14)}: lost ${check.lost} duplicated ${check.duplicated} (handler calls vs 2xx; Probot stores nothing)`);
      continue;
    }
    const ratios = t.rounds.map((r, i) => rps(r) / rps(probot.rounds[i]!));
    console.log(
      `${t.label.padEnd(14)}: ratio to probot ${median(ratios).toFixed(2)} (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; target ≥ 1.0)   ` +
        `p99 at ${opts.rate}/s ${percentile(t.fixed!.latenciesMs, 99).toFixed(2)} ms (target < 25)   ` +
        `lost ${check.lost} duplicated ${check.duplicated} (target 0/0, read back from SQLite)`,
    );
    console.log(`${''.padEnd(16)}${opts.rounds * opts.count + opts.rate * opts.seconds + WARMUP} deliveries: ${check.stats}`);
  }
}

await main();
