/**
 * `uses: actions/checkout@…`, done natively: forgevm uploads the run's commit into the guest at
 * $GITHUB_WORKSPACE before the first step, so the step applies what it can of its inputs
 * (evaluated by the executor) and fails clearly on what forgevm cannot give:
 *
 * - `repository:` other than the run's repository: failure (forgevm only fetches that one).
 * - `ref:` naming anything but the run's commit or ref: failure.
 * - `path:` a copy of the repository at $GITHUB_WORKSPACE/<path> (the original stays at the root).
 * - `fetch-depth:` the upload already carries the history the job's checkout steps ask for
 *   (checkoutFetchDepth, used when the workspace is prepared); the step checks it.
 * - `submodules:` / `lfs:` failure when the repository uses them (no credentials in the VM to
 *   fetch them), a no-op otherwise.
 * - token, ssh-*, persist-credentials, clean, sparse-checkout…: not needed, noted in the log.
 */
import type { Guest } from '../ssh/guest.ts';
import type { JobDef } from '../workflow/model.ts';

export interface CheckoutInputs {
  repository?: string;
  ref?: string;
  path?: string;
  fetchDepth: number;
  submodules: boolean;
  lfs: boolean;
  /** Inputs that need nothing from forgevm. */
  ignored: string[];
}

const HANDLED = new Set(['repository', 'ref', 'path', 'fetch-depth', 'submodules', 'lfs']);

function truthy(value: string | undefined): boolean {
  const v = (value ?? '').trim().toLowerCase();
  return v === 'true' || v === 'recursive';
}

/** Reads the evaluated `with:` of a checkout step (names case-insensitive, as GitHub). */
export function checkoutInputs(withValues: Record<string, string>): CheckoutInputs {
  const byName = new Map(Object.entries(withValues).map(([k, v]) => [k.toLowerCase(), v]));
  const depth = (byName.get('fetch-depth') ?? '').trim();
  return {
    ...(byName.get('repository')?.trim() ? { repository: byName.get('repository')!.trim() } : {}),
    ...(byName.get('ref')?.trim() ? { ref: byName.get('ref')!.trim() } : {}),
    ...(byName.get('path')?.trim() ? { path: byName.get('path')!.trim() } : {}),
    fetchDepth: depth === '' || !/^\d+$/.test(depth) ? 1 : Number(depth),
    submodules: truthy(byName.get('submodules')),
    lfs: truthy(byName.get('lfs')),
    ignored: [...byName.keys()].filter((k) => !HANDLED.has(k)),
  };
}

/**
 * The history depth the job's checkout steps want (0 = all of it), for preparing the workspace:
 * literal values only; an expression counts as "all" (the safe side). 1 when no step asks.
 */
export function checkoutFetchDepth(job: JobDef): number {
  let depth = 1;
  for (const step of job.steps) {
    if (!step.uses || !/^actions\/checkout@/i.test(step.uses.trim())) continue;
    const raw = Object.entries(step.with).find(([k]) => k.toLowerCase() === 'fetch-depth')?.[1]?.trim();
    if (raw === undefined || raw === '') continue;
    const wanted = /^\d+$/.test(raw) ? Number(raw) : 0;
    if (wanted === 0) return 0;
    depth = Math.max(depth, wanted);
  }
  return depth;
}

export interface CheckoutContext {
  repository: string;
  sha: string;
  /** Refs that name the run's commit (github.ref, ref_name, head_ref). */
  refs: string[];
  workspace: string;
  log: (line: string) => void;
}

/** Returns a failure message, or undefined when the step succeeds. */
export async function runCheckoutStep(guest: Guest, inputs: CheckoutInputs, ctx: CheckoutContext): Promise<string | undefined> {
  if (inputs.repository && inputs.repository.toLowerCase() !== ctx.repository.toLowerCase()) {
    return `actions/checkout of another repository (${inputs.repository}) is not supported: forgevm only provides ${ctx.repository}; clone it in a run step instead`;
  }
  if (inputs.ref && !namesRunCommit(inputs.ref, ctx)) {
    return `actions/checkout of ref "${inputs.ref}" is not supported: forgevm provides the run's commit ${ctx.sha.slice(0, 12)} only; drop "ref:" or fetch other refs in a run step`;
  }
  const sh = async (script: string, ...args: string[]) => (await guest.exec(['sh', '-c', script, 'sh', ...args], { cwd: ctx.workspace })).code === 0;
  if (inputs.submodules && (await sh('test -f .gitmodules'))) {
    return 'actions/checkout with submodules is not supported: the VM holds no credentials to fetch them; vendor them, or fetch them in a run step';
  }
  if (inputs.lfs && (await sh('grep -qs "filter=lfs" .gitattributes'))) {
    return 'actions/checkout with lfs is not supported: the VM holds no credentials to fetch LFS objects; fetch them in a run step';
  }
  if (inputs.fetchDepth !== 1) {
    // The workspace was prepared with the depth checkoutFetchDepth asked for; say what it holds.
    let count = '';
    await guest.exec(['git', 'rev-list', '--count', 'HEAD'], { cwd: ctx.workspace, onStdout: (c) => (count += c.toString('utf8')) });
    ctx.log(`forgevm: the workspace holds ${count.trim() || 'an unknown number of'} commit(s) of history (fetch-depth: ${inputs.fetchDepth})`);
  }
  ctx.log(`forgevm: ${ctx.repository} is checked out at ${ctx.workspace} (${ctx.sha.slice(0, 12)})`);
  const path = inputs.path?.replace(/\/+$/, '');
  if (path && path !== '.' && path !== './') {
    const normalized = path.replace(/^\.\//, '');
    if (normalized.startsWith('/') || normalized.split('/').includes('..')) {
      return `actions/checkout path "${path}" must stay inside the workspace`;
    }
    // A copy, so that steps that expect the repository at the root still find it there.
    const copied = await sh(
      'dest=$1; top=${dest%%/*}; mkdir -p "$dest" && find . -mindepth 1 -maxdepth 1 ! -name "$top" -exec cp -a {} "$dest"/ \\;',
      normalized,
    );
    if (!copied) return `actions/checkout could not copy the repository to "${path}" in the workspace`;
    ctx.log(`forgevm: copied the repository to $GITHUB_WORKSPACE/${normalized}`);
  }
  if (inputs.ignored.length > 0) ctx.log(`forgevm: checkout inputs not needed here: ${inputs.ignored.join(', ')}`);
  return undefined;
}

function namesRunCommit(ref: string, ctx: CheckoutContext): boolean {
  const r = ref.trim();
  if (/^[0-9a-f]{7,64}$/i.test(r)) return ctx.sha.toLowerCase().startsWith(r.toLowerCase());
  const candidates = new Set<string>();
  for (const known of ctx.refs.filter(Boolean)) {
    candidates.add(known);
    candidates.add(known.replace(/^refs\/(heads|tags)\//, ''));
    candidates.add(`refs/heads/${known}`);
  }
  return candidates.has(r);
}
