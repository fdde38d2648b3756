/**
 * Node for JavaScript actions in a real `tiny` guest: the Node baked into the image runs
 * JavaScript that uses the file system, child processes and the environment, as an action does;
 * and a guest path without Node gets the host's copy uploaded, once.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../src/job/run-job.ts';
import type { StepsOutcome } from '../src/job/steps.ts';
import type { ExecOptions, Guest } from '../src/ssh/guest.ts';
import { ensureGuestNode } from '../src/vm/guest-node/ensure-in-guest.ts';
import { ensureHostNode, type HostNode } from '../src/vm/guest-node/host-cache.ts';
import { GUEST_NODE_BIN, GUEST_NODE_RELEASE } from '../src/vm/guest-node/release.ts';
import { gitRepo } from './support/forgevm-cli.ts';
import { logIn } from './support/job-fixture.ts';
import { vmHarness, type VmHarness } from './support/vm-harness.ts';

let h: VmHarness;
let repo: { dir: string; sha: string };
let logs: string;

beforeAll(async () => {
  h = await vmHarness();
  repo = await gitRepo({ 'hello.txt': 'hello from the workspace\n' });
  logs = await mkdtemp(join(tmpdir(), 'fvm-logs-'));
}, 900_000);

/** The guest, counting the commands run through it. */
function counting(guest: Guest): { guest: Guest; execs: () => number } {
  let execs = 0;
  const counted: Guest = {
    user: guest.user,
    home: guest.home,
    exec: (argv, options) => (execs++, guest.exec(argv, options)),
    writeFile: (path, content, mode) => guest.writeFile(path, content, mode),
    readFile: (path) => guest.readFile(path),
    readFiles: (paths) => guest.readFiles(paths),
    extractTar: (tar, dir, options) => guest.extractTar(tar, dir, options),
  };
  return { guest: counted, execs: () => execs };
}

async function run(guest: Guest, argv: string[], options: ExecOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const result = await guest.exec(argv, { ...options, onStdout: (c) => (stdout += c.toString()), onStderr: (c) => (stderr += c.toString()) });
  return { code: result.code, stdout, stderr };
}

// What a JavaScript action does: core modules, its inputs from the environment, files, child processes.
const ACTION_LIKE = `
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const cp = require('node:child_process');
const crypto = require('node:crypto');
const file = path.join(os.tmpdir(), 'written-by-node.txt');
fs.writeFileSync(file, 'written by node\\n');
console.log(JSON.stringify({
  version: process.version,
  platform: process.platform + '-' + process.arch,
  input: process.env.INPUT_WHO,
  workspace: fs.readFileSync('hello.txt', 'utf8'),
  readBack: cp.execFileSync('cat', [file], { encoding: 'utf8' }),
  git: cp.spawnSync('git', ['--version'], { encoding: 'utf8' }).stdout.startsWith('git version'),
  childStatus: cp.spawnSync('sh', ['-c', 'exit 7']).status,
  sha256: crypto.createHash('sha256').update('abc').digest('hex').slice(0, 16),
  https: typeof require('node:https').request,
}));
`;

describe('Node for JavaScript actions in a tiny guest', () => {
  it('is baked in at /opt/forgevm/node, runs action-like JavaScript, and is uploaded where a guest lacks it', async () => {
    const seen: Record<string, unknown> = {};
    const cache = join(h.engine.imagesDir, '.guest-node');
    let fetches = 0;
    const hostNode = async (): Promise<HostNode> => (fetches++, ensureHostNode(cache));

    const result = await runJob(h.engine, {
      id: 'guest-node',
      label: 'tiny',
      workspace: { repoDir: repo.dir, sha: repo.sha, branch: 'main' },
      repoName: 'repo',
      log: logIn(logs, 'guest-node'),
      runSteps: async (sshGuest, _log, layout): Promise<StepsOutcome> => {
        const { guest, execs } = counting(sshGuest);
        // Baked into the image: found with one command, nothing fetched or uploaded.
        seen.baked = await ensureGuestNode(guest, { hostNode });
        seen.bakedExecs = execs();
        // What the step executor gets: the same answer, once per job.
        seen.layoutNode = await layout.node();
        seen.layoutShared = layout.node() === layout.node();
        seen.action = await run(guest, [GUEST_NODE_BIN, '-e', ACTION_LIKE], { cwd: layout.workspace, env: { INPUT_WHO: 'world' } });
        seen.failing = await run(guest, [GUEST_NODE_BIN, '-e', 'process.exitCode = 3; console.error("failed on purpose")']);

        // A path where the guest has no Node: the host's copy is uploaded, once.
        const started = Date.now();
        seen.uploaded = await ensureGuestNode(guest, { installDir: '/root/uploaded-node', hostNode });
        seen.uploadMs = Date.now() - started;
        seen.uploadedVersion = await run(guest, ['/root/uploaded-node/bin/node', '--version']);
        seen.uploadedFiles = await run(guest, ['sh', '-c', 'ls -A /root/uploaded-node /root/uploaded-node/bin; ls -A /root | grep -c -F .upload- || true']);
        const before = execs();
        seen.again = await ensureGuestNode(guest, { installDir: '/root/uploaded-node', hostNode });
        seen.againExecs = execs() - before;
        return { conclusion: 'success', steps: [], outputs: {}, summary: '', annotations: [] };
      },
    });

    expect(result.error).toBeUndefined();
    expect(result.conclusion).toBe('success');
    expect(seen.baked).toBe('/opt/forgevm/node/bin/node');
    expect(seen.bakedExecs).toBe(1);
    expect(seen.layoutNode).toBe('/opt/forgevm/node/bin/node');
    expect(seen.layoutShared).toBe(true);

    const action = seen.action as { code: number; stdout: string; stderr: string };
    expect(action.stderr).toBe('');
    expect(action.code).toBe(0);
    expect(JSON.parse(action.stdout)).toEqual({
      version: `v${GUEST_NODE_RELEASE.version}`,
      platform: 'linux-x64',
      input: 'world',
      workspace: 'hello from the workspace\n',
      readBack: 'written by node\n',
      git: true,
      childStatus: 7,
      sha256: 'ba7816bf8f01cfea',
      https: 'function',
    });
    expect(seen.failing).toEqual({ code: 3, stdout: '', stderr: 'failed on purpose\n' });

    expect(seen.uploaded).toBe('/root/uploaded-node/bin/node');
    expect(fetches).toBe(1);
    expect(seen.uploadedVersion).toEqual({ code: 0, stdout: `v${GUEST_NODE_RELEASE.version}\n`, stderr: '' });
    // Only bin/node, the license and the stamp; no staging folder left behind.
    expect((seen.uploadedFiles as { stdout: string }).stdout).toBe('/root/uploaded-node:\n.forgevm-node\nLICENSE\nbin\n\n/root/uploaded-node/bin:\nnode\n0\n');
    expect(seen.again).toBe('/root/uploaded-node/bin/node');
    expect(seen.againExecs).toBe(1);
    expect(fetches).toBe(1);
    console.log(`upload of Node into the guest took ${((seen.uploadMs as number) / 1000).toFixed(1)} s`);
  }, 600_000);
});
