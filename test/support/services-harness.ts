/**
 * The host services as a guest sees them, without a VM: each job gets a loopback port whose
 * connections go to its JobServices (as its SSH tunnel would hand them over), and the real
 * @actions/cache and @actions/artifact clients run against it in child processes.
 */
import { mkdtemp } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { JobIdentity } from '../../src/services/job-identity.ts';
import type { JobServices } from '../../src/services/runner-services.ts';

export interface JobPort {
  port: number;
  /** The job's variables (ACTIONS_*), pointing at the port. */
  env: Record<string, string>;
  origin: string;
  close(): Promise<void>;
}

/** A loopback port for one job: every connection to it is served as that job. */
export async function listenForJob(job: JobServices): Promise<JobPort> {
  const server = createServer((socket) => job.accept(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    env: job.env(port),
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function identity(overrides: Partial<JobIdentity> = {}): JobIdentity {
  return {
    forge: 'github',
    repo: 'octo/app',
    runId: '100',
    runAttempt: 1,
    jobId: 'build',
    ref: 'refs/heads/main',
    defaultBranch: 'main',
    fork: false,
    ...overrides,
  };
}

export interface ClientRun {
  ok: boolean;
  result?: unknown;
  error?: string;
  /** What the client logged (core.info, ::warning:: lines…). */
  output: string;
}

const CLIENT = fileURLToPath(new URL('./actions-client.mjs', import.meta.url));

/**
 * One client operation in a child process with only the job's variables (and none of ours: an
 * ACTIONS_CACHE_SERVICE_V2 in the test's environment must not leak in).
 */
export async function runClient(pkg: string, operation: string, args: unknown, env: Record<string, string>, workspace: string): Promise<ClientRun> {
  const runnerTemp = await mkdtemp(join(tmpdir(), 'fvm-runner-temp-'));
  const result = await execa(process.execPath, [CLIENT, pkg, operation, JSON.stringify(args)], {
    cwd: workspace,
    extendEnv: false,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: runnerTemp,
      GITHUB_WORKSPACE: workspace,
      GITHUB_SERVER_URL: 'https://github.com',
      ...env,
    },
    reject: false,
    timeout: 120_000,
  });
  const marker = result.stdout.lastIndexOf('\nRESULT ');
  if (marker < 0) throw new Error(`${pkg} ${operation} printed no result (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
  const parsed = JSON.parse(result.stdout.slice(marker + 8)) as Omit<ClientRun, 'output'>;
  return { ...parsed, output: `${result.stdout.slice(0, marker)}\n${result.stderr}` };
}
