/**
 * The `secrets` context of a job. A job of the top-level workflow sees the run's secrets. A job
 * of a called workflow sees what each call on its way passes down: with `secrets: inherit`,
 * everything its caller sees; with a mapping, only those names, each evaluated with the caller's
 * contexts (its needs, matrix, inputs and secrets). The step executor calls this once per job.
 */
import { interpolate } from './expressions.ts';
import type { CallFrame, JobInstance } from './model.ts';

export function secretsForJob(
  instance: JobInstance,
  runSecrets: Record<string, string>,
  run: { github: unknown; vars?: Record<string, string> },
): Record<string, string> {
  const frames: CallFrame[] = [];
  for (let frame = instance.call; frame; frame = frame.parent) frames.unshift(frame);
  let secrets = runSecrets;
  for (const frame of frames) {
    const rule = frame.job.call?.secrets ?? {};
    if (rule === 'inherit') continue;
    const s = frame.strategy;
    const contexts = {
      github: run.github,
      vars: run.vars ?? {},
      needs: frame.needs ?? {},
      matrix: frame.matrix,
      strategy: { 'fail-fast': s.failFast, 'job-index': s.jobIndex, 'job-total': s.jobTotal, 'max-parallel': s.maxParallel ?? s.jobTotal },
      inputs: frame.callerInputs,
      secrets,
    };
    const passed: Record<string, string> = {};
    for (const [name, expression] of Object.entries(rule)) passed[name] = interpolate(expression, contexts);
    secrets = passed;
  }
  return secrets;
}
