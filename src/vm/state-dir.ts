/** Where forgevm keeps things on the host. One folder, laid out by purpose. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface StateDir {
  root: string;
  /** Base images: `<images>/<label>/…`. Never written by jobs. */
  images: string;
  /** One folder per live job; removed at teardown, swept at start. */
  jobs: string;
  /** Job logs, kept after the job folder is gone. */
  logs: string;
  /** Per-repository git caches for the forge worker. */
  repos: string;
  /** Fetched actions: `<host>/<owner>/<repo>/<sha>/` trees and a bare git cache per repository. */
  actions: string;
  /** Repository secrets, encrypted (src/secrets/store.ts). */
  secrets: string;
  /** The key that encrypts them, unless the operator gives one; made at the first `secret set`. */
  secretsKey: string;
  /** Cached KVM probe result. */
  accelCache: string;
}

export function defaultStateRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FORGEVM_STATE_DIR) return resolve(env.FORGEVM_STATE_DIR);
  const dataHome = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(dataHome, 'forgevm');
}

export function stateDir(root: string = defaultStateRoot()): StateDir {
  return {
    root,
    images: join(root, 'images'),
    jobs: join(root, 'jobs'),
    logs: join(root, 'logs'),
    repos: join(root, 'repos'),
    actions: join(root, 'actions'),
    secrets: join(root, 'secrets.db'),
    secretsKey: join(root, 'secrets.key'),
    accelCache: join(root, 'accel.json'),
  };
}
