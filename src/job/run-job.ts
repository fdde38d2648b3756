/**
 * What happens to one job, top to bottom:
 *
 *   boot      fresh job folder, overlay, seed, QEMU; meanwhile the workspace is prepared
 *   settle    wait for SSH (pinned host key) under the image's boot deadline
 *   prepare   stream the workspace in
 *   run       the steps (the step executor decides what a step means)
 *   collect   results, outputs, and the console tail if the VM never came up
 *   teardown  stop QEMU, remove the job folder
 *
 * A job that fails outside its steps gets `error`: one line saying what and what to do.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ImageCatalog } from '../config/catalog.ts';
import type { JobLog } from '../log/job-log.ts';
import { connectSsh, type SshClient } from '../ssh/connect.ts';
import { forwardGuestPort, type GuestForward } from '../ssh/forward.ts';
import type { Guest } from '../ssh/guest.ts';
import { SshGuest } from '../ssh/session.ts';
import type { AccelVerdict } from '../vm/accel.ts';
import { consoleTail, followConsole } from '../vm/console.ts';
import { guestNodeOnce } from '../vm/guest-node/ensure-in-guest.ts';
import { ensureHostNode, guestNodeCacheIn } from '../vm/guest-node/host-cache.ts';
import { requireFreeSpace } from '../vm/disk-space.ts';
import { createJobDir, removeJobDir } from '../vm/job-dir.ts';
import { lookupImage } from '../vm/images.ts';
import { bootVm, type Vm } from '../vm/vm.ts';
import { keptJobSummary, type JobResult } from './result.ts';
import type { StepsOutcome } from './steps.ts';
import { settleAll } from '../util/settle-all.ts';
import { prepareWorkspace, tarStream, type WorkspaceSource } from './workspace.ts';

export interface Engine {
  catalog: ImageCatalog;
  imagesDir: string;
  jobsRoot: string;
  /** Serial console logs are kept here after the job folder is gone. */
  logsDir: string;
  qemu: string;
  accel: AccelVerdict;
  /** Refuse to start a job with less free disk than this in the state folder. */
  minFreeBytes: number;
}

/** Where things are inside the guest, for the step executor. */
export interface GuestLayout {
  workspace: string;
  tempDir: string;
  /**
   * The guest path of Node for JavaScript actions (/opt/forgevm/node/bin/node, or the image's own).
   * Call it before running an action: the first call costs one command when the guest has Node,
   * and uploads it when it does not; later calls cost nothing.
   */
  node: () => Promise<string>;
  /**
   * Environment for steps that use the host services (cache, artifacts), pointing at the
   * guest's end of the SSH forward. Empty when the job has no services.
   */
  servicesEnv: Record<string, string>;
}

/**
 * Host services a job's guest reaches through an SSH remote forward (src/services: a
 * `JobServices`). Every connection the guest opens to the forwarded port is handed to
 * `accept`; `env` says how steps find the services once the guest-side port is known.
 */
export interface GuestServices {
  accept(stream: Duplex): void;
  env(guestPort: number): Record<string, string>;
}

export type RunSteps = (guest: Guest, log: JobLog, layout: GuestLayout, signal: AbortSignal) => Promise<StepsOutcome>;

export interface JobRequest {
  /** Short unique id: the job folder's name and the guest's hostname. */
  id: string;
  /** `runs-on` label. */
  label: string;
  workspace: WorkspaceSource;
  /** History in the workspace (checkout's fetch-depth; 0 = all). Default 1. */
  historyDepth?: number;
  /** Repository name, for the guest path `~/work/<name>`. */
  repoName: string;
  log: JobLog;
  runSteps: RunSteps;
  /** Forwarded into the guest before the steps run (cache and artifact services). */
  services?: GuestServices;
  signal?: AbortSignal;
  /** The VM is up and reachable; the steps are about to start. */
  onVmStarted?: () => void;
  /** Progress lines about the engine's own phases (boot, settle…), with elapsed ms. */
  onPhase?: (phase: string, elapsedMs: number) => void;
  /** QEMU is running: its pid and forwarded SSH port. */
  onBooted?: (vm: { pid: number; port: number }) => void;
  /**
   * The serial console, live, from QEMU's start until SSH is up. It stops before the steps run:
   * the console and the step output would otherwise interleave.
   */
  onConsole?: (chunk: Buffer) => void;
}

/** Where a job's serial console log is kept after teardown. */
export function consoleLogPath(engine: Engine, jobId: string): string {
  return join(engine.logsDir, `${jobId}.console.log`);
}

export async function runJob(engine: Engine, request: JobRequest): Promise<JobResult> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const phase = (name: string) => request.onPhase?.(name, Date.now() - started);
  const finish = (partial: Omit<JobResult, 'logPath' | 'startedAt' | 'durationMs'>): JobResult => ({
    ...partial,
    logPath: request.log.path,
    startedAt,
    durationMs: Date.now() - started,
  });
  const signal = request.signal ?? new AbortController().signal;

  let dir: string | undefined;
  let vm: Vm | undefined;
  let ssh: SshClient | undefined;
  let forward: GuestForward | undefined;
  let stopConsole: (() => void) | undefined;
  try {
    // boot
    const image = lookupImage(engine.catalog, engine.imagesDir, request.label);
    await requireFreeSpace(engine.jobsRoot, engine.minFreeBytes);
    dir = await createJobDir(engine.jobsRoot, request.id);
    const workspaceDir = join(dir, 'workspace');
    phase('boot');
    const booted = await settleAll<[Vm, void]>([
      bootVm({ dir, id: request.id, image, accel: engine.accel.accel, qemu: engine.qemu }),
      prepareWorkspace(request.workspace, workspaceDir, request.historyDepth ?? 1),
    ]);
    vm = booted.values[0]; // set even when the workspace failed, so teardown stops it
    if (booted.error) throw booted.error;
    if (!vm) throw new Error('the VM did not start');
    request.onBooted?.({ pid: vm.pid, port: vm.port });
    stopConsole = request.onConsole ? followConsole(vm.consoleLog, request.onConsole) : undefined;

    // settle
    phase('settle');
    const vmGone = new AbortController();
    void vm.exited.then(() => vmGone.abort(new Error('QEMU exited before SSH came up')));
    signal.addEventListener('abort', () => vmGone.abort(new Error('job cancelled while the VM was booting')), { once: true });
    ssh = await connectSsh({
      port: vm.port,
      user: vm.user,
      privateKey: vm.keys.client.private,
      hostPublicKey: vm.keys.host.public,
      deadline: Date.now() + image.spec.bootTimeoutSeconds * 1000,
      abort: vmGone.signal,
    });
    const home = vm.user === 'root' ? '/root' : `/home/${vm.user}`;
    const services = request.services;
    if (services) forward = await forwardGuestPort(ssh, (stream) => services.accept(stream));
    // forgevm's own pid and env files stay apart from RUNNER_TEMP, which steps may empty.
    const guest = new SshGuest(ssh, vm.user, home, '/tmp/.forgevm-exec');
    const layout: GuestLayout = {
      workspace: `${home}/work/${request.repoName}`,
      tempDir: '/tmp/forgevm',
      node: guestNodeOnce(guest, {
        imageNode: image.spec.node,
        hostNode: () => ensureHostNode(guestNodeCacheIn(engine.imagesDir)),
        log: (line) => request.log.meta(line),
      }),
      servicesEnv: services && forward ? services.env(forward.port) : {},
    };

    // prepare
    stopConsole?.();
    phase('prepare');
    const tar = tarStream(workspaceDir);
    const unpacked = await settleAll([
      guest.extractTar(tar.stream, layout.workspace).catch((error: unknown) => {
        tar.stop();
        throw error;
      }),
      tar.done,
    ]);
    if (unpacked.error) throw unpacked.error;
    request.onVmStarted?.();

    // run
    phase('run');
    const outcome = await request.runSteps(guest, request.log, layout, signal);

    // collect
    phase('collect');
    const summary = keptJobSummary(outcome.summary);
    return finish({ conclusion: outcome.conclusion, steps: outcome.steps, outputs: outcome.outputs, error: outcome.error, annotations: outcome.annotations, ...(summary ? { summary } : {}) });
  } catch (error) {
    const message = request.log.masker.mask((error as Error).message.split('\n')[0] ?? String(error));
    const consoleText = vm ? await consoleTail(vm.consoleLog, 40) : undefined;
    request.log.meta(`✘ ${message}`);
    const cancelled = signal.aborted;
    return finish({
      conclusion: cancelled ? 'cancelled' : 'failure',
      steps: [],
      outputs: {},
      error: consoleText && !ssh ? `${message}\nlast console lines:\n${consoleText}` : message,
      consoleTail: ssh ? undefined : consoleText || undefined,
    });
  } finally {
    // teardown
    stopConsole?.();
    phase('teardown');
    await forward?.close();
    ssh?.end();
    await vm?.stop();
    if (vm) await rename(vm.consoleLog, consoleLogPath(engine, request.id)).catch(() => {});
    if (dir) await removeJobDir(dir);
  }
}
