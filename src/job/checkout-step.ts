/**
 * `uses: actions/checkout@…`, done natively: forgevm uploads the repository into the guest before
 * the first step, at $GITHUB_WORKSPACE, so the step only explains what it honours.
 *
 * - `repository:` other than the run's repository fails the step (forgevm only has that one).
 * - `path:` is not applied: the repository stays at $GITHUB_WORKSPACE (a note is logged).
 * - `ref:`, `fetch-depth:`, `submodules:`, `lfs:` and the rest are ignored with a note: the
 *   workspace is the tree forgevm uploaded for the run's commit.
 * Returns a failure message, or undefined when the step succeeds.
 */
import type { StepDef } from '../workflow/model.ts';

export function isCheckout(uses: string): boolean {
  return /^actions\/checkout@/i.test(uses.trim());
}

export function runCheckoutStep(step: StepDef, repository: string, workspace: string, logLine: (line: string) => void): string | undefined {
  const uses = step.uses ?? '';
  if (!isCheckout(uses)) {
    return `✘ "uses: ${uses}" is not supported: forgevm runs only "run:" steps and actions/checkout; replace the action with a run step`;
  }
  const wanted = step.with.repository?.trim();
  if (wanted && wanted.toLowerCase() !== repository.toLowerCase()) {
    return `✘ actions/checkout of another repository (${wanted}) is not supported: forgevm only provides ${repository}; clone it in a run step instead`;
  }
  logLine(`forgevm: ${repository} is already checked out at ${workspace}`);
  const path = step.with.path?.trim();
  if (path && path !== '.' && path !== './') {
    logLine(`forgevm: path "${path}" is not applied; the repository stays at $GITHUB_WORKSPACE (${workspace})`);
  }
  const ignored = Object.keys(step.with).filter((k) => k !== 'repository' && k !== 'path');
  if (ignored.length > 0) {
    logLine(`forgevm: ignored checkout inputs: ${ignored.join(', ')} (the workspace is the tree uploaded for this commit)`);
  }
  return undefined;
}
