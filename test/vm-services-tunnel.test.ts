/**
 * The host services from inside real `tiny` guests, through the job's SSH remote forward: a
 * NAT guest saves a cache entry with plain HTTP (busybox wget and bash's /dev/tcp, as the
 * clients would), and an isolated guest (QEMU restrict=on: nothing but the SSH forward) restores
 * it. Both only ever talk to 127.0.0.1 inside the guest.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinImages } from '../src/config/catalog.ts';
import { runJob, type JobRequest, type RunSteps } from '../src/job/run-job.ts';
import { RunnerServices, type JobServices } from '../src/services/runner-services.ts';
import { FALLBACK_GUEST_PORTS } from '../src/ssh/forward.ts';
import type { Guest } from '../src/ssh/guest.ts';
import { gitRepo } from './support/forgevm-cli.ts';
import { jobFromYaml, logIn, stepsOf } from './support/job-fixture.ts';
import { identity } from './support/services-harness.ts';
import { jobFolders, qemuProcessesUnder, vmHarness, type VmHarness } from './support/vm-harness.ts';

let h: VmHarness;
let repo: { dir: string; sha: string };
let logs: string;
let servicesDir: string;
let services: RunnerServices;

beforeAll(async () => {
  const { builtin: _, ...tiny } = builtinImages.tiny!;
  h = await vmHarness({ 'tiny-isolated': { ...tiny, network: 'isolated' } });
  repo = await gitRepo({ README: 'services\n' });
  logs = await mkdtemp(join(tmpdir(), 'fvm-logs-'));
  servicesDir = await mkdtemp(join(tmpdir(), 'fvm-services-'));
  services = await RunnerServices.open({ dir: servicesDir });
});

afterAll(async () => {
  await services?.close();
  await rm(servicesDir, { recursive: true, force: true });
});

/** What the step executor will do once integrated: the services' variables in every step. */
function withServicesEnv(runSteps: RunSteps): RunSteps {
  return (guest, log, layout, signal) => {
    const env = layout.servicesEnv;
    const wrapped: Guest = {
      user: guest.user,
      home: guest.home,
      exec: (argv, options = {}) => guest.exec(argv, { ...options, env: { ...env, ...options.env } }),
      writeFile: (path, content, mode) => guest.writeFile(path, content, mode),
      writeFiles: guest.writeFiles && ((files) => guest.writeFiles!(files)),
      readFile: (path) => guest.readFile(path),
      readFiles: (paths) => guest.readFiles(paths),
      extractTar: (tar, dir) => guest.extractTar(tar, dir),
    };
    return runSteps(wrapped, log, layout, signal);
  };
}

function request(id: string, label: string, yaml: string, jobServices: JobServices): JobRequest {
  const instance = jobFromYaml(yaml);
  return {
    id,
    label,
    workspace: { repoDir: repo.dir, sha: repo.sha, branch: 'main' },
    repoName: 'repo',
    log: logIn(logs, id),
    runSteps: withServicesEnv(stepsOf(instance, repo.sha)),
    services: jobServices,
  };
}

const AUTH = `--header "Authorization: Bearer $ACTIONS_RUNTIME_TOKEN"`;

describe('the services through the SSH tunnel', () => {
  it('a NAT guest saves a cache entry, and an isolated guest restores it', async () => {
    const saveServices = services.openJob(identity({ jobId: 'save' }));
    const save = request(
      'svc-save',
      'tiny',
      `
jobs:
  save:
    runs-on: tiny
    steps:
      - name: Reserve, upload, commit
        run: |
          case "$ACTIONS_CACHE_URL" in http://127.0.0.1:*/) ;; *) echo "unexpected ACTIONS_CACHE_URL $ACTIONS_CACHE_URL"; exit 1;; esac
          port=\${ACTIONS_CACHE_URL#http://127.0.0.1:}; port=\${port%/}
          echo "guest port $port"
          body='hello from the guest'
          reserved=$(wget -qO- ${AUTH} --header 'Content-Type: application/json' \\
            --post-data '{"key":"from-guest","version":"tunnel-v1","cacheSize":20}' "\${ACTIONS_CACHE_URL}_apis/artifactcache/caches")
          id=$(echo "$reserved" | sed 's/[^0-9]//g')
          echo "reserved $id"
          exec 3<>/dev/tcp/127.0.0.1/$port
          printf 'PATCH /_apis/artifactcache/caches/%s HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nAuthorization: Bearer %s\\r\\nContent-Type: application/octet-stream\\r\\nContent-Range: bytes 0-19/*\\r\\nContent-Length: 20\\r\\nConnection: close\\r\\n\\r\\n%s' "$id" "$ACTIONS_RUNTIME_TOKEN" "$body" >&3
          read -r status <&3
          echo "upload: $status"
          exec 3<&-
          wget -qO- ${AUTH} --header 'Content-Type: application/json' --post-data '{"size":20}' "\${ACTIONS_CACHE_URL}_apis/artifactcache/caches/$id"
          echo "committed"
`,
      saveServices,
    );
    const saved = await runJob(h.engine, save);
    await saveServices.close();
    const saveLog = await readFile(saved.logPath, 'utf8');
    expect(saved.conclusion, saveLog).toBe('success');
    expect(saveLog).toMatch(/upload: HTTP\/1\.1 204/);
    // dropbear chose the port itself (port 0): no fixed fallback was needed.
    const guestPort = Number(/guest port (\d+)/.exec(saveLog)?.[1]);
    expect(guestPort).toBeGreaterThan(1024);
    expect(FALLBACK_GUEST_PORTS).not.toContain(guestPort);
    expect(saveLog).toContain('committed');
    expect(services.cache.totalBytes()).toBe(20);

    const restoreServices = services.openJob(identity({ jobId: 'restore' }));
    const restore = request(
      'svc-restore',
      'tiny-isolated',
      `
jobs:
  restore:
    runs-on: tiny-isolated
    steps:
      - name: Look up and download
        run: |
          hit=$(wget -qO- ${AUTH} "\${ACTIONS_CACHE_URL}_apis/artifactcache/cache?keys=from-&version=tunnel-v1")
          echo "$hit"
          url=$(echo "$hit" | sed -n 's/.*"archiveLocation":"\\([^"]*\\)".*/\\1/p')
          echo "archive says: $(wget -qO- "$url")"
      - name: Without the token
        run: |
          if wget -qO- "\${ACTIONS_CACHE_URL}_apis/artifactcache/cache?keys=from-&version=tunnel-v1"; then echo "ANSWERED"; else echo "REFUSED"; fi
`,
      restoreServices,
    );
    const restored = await runJob(h.engine, restore);
    await restoreServices.close();
    const restoreLog = await readFile(restored.logPath, 'utf8');
    expect(restored.conclusion, restoreLog).toBe('success');
    expect(restoreLog).toMatch(/"cacheKey":"from-guest","scope":"refs\/heads\/main"/);
    expect(restoreLog).toContain('archive says: hello from the guest');
    expect(restoreLog).toContain('REFUSED');
    expect(restoreLog).not.toContain('ANSWERED');

    expect(await jobFolders(h.stateRoot)).toEqual([]);
    expect(await qemuProcessesUnder(h.stateRoot)).toEqual([]);
  }, 400_000);
});
