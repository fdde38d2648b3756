import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JOB_SUMMARY_LIMIT, keptJobSummary, type JobResult, type StepResult } from '../src/job/result.ts';
import { buildCheckOutput, checkTitle, excerptText, formatDuration, OUTPUT_FIELD_LIMIT, stepsSummary, stripAnsi } from '../src/report/check-output.ts';

const dir = mkdtempSync(join(tmpdir(), 'forgevm-check-output-'));

function step(name: string, over: Partial<StepResult> = {}): StepResult {
  return { name, outcome: 'success', conclusion: 'success', exitCode: 0, startedAt: '2026-01-01T00:00:00Z', durationMs: 1000, log: { start: 0, end: 0 }, ...over };
}

function job(over: Partial<JobResult>): JobResult {
  return { conclusion: 'success', steps: [], outputs: {}, logPath: join(dir, 'none.log'), startedAt: '2026-01-01T00:00:00Z', durationMs: 48_000, ...over };
}

/** Writes a log with one section per step and returns the steps' byte ranges. */
function writeLog(name: string, sections: string[]): { path: string; ranges: { start: number; end: number }[] } {
  const path = join(dir, name);
  const ranges: { start: number; end: number }[] = [];
  let offset = 0;
  for (const section of sections) {
    const bytes = Buffer.byteLength(section);
    ranges.push({ start: offset, end: offset + bytes });
    offset += bytes;
  }
  writeFileSync(path, sections.join(''));
  return { path, ranges };
}

describe('check run title', () => {
  it('says how long a passing job took', () => {
    expect(checkTitle(job({ conclusion: 'success', durationMs: 48_000 }))).toBe('Passed in 48s');
  });

  it('names the failing step, its exit code and the duration', () => {
    const result = job({
      conclusion: 'failure',
      durationMs: 192_000,
      steps: [step('Build'), step('Test', { outcome: 'failure', conclusion: 'failure', exitCode: 2 }), step('Deploy', { outcome: 'skipped', conclusion: 'skipped', exitCode: null })],
    });
    expect(checkTitle(result)).toBe('Failed at step "Test" (exit 2) after 3m12s');
  });

  it('ignores a step whose failure continue-on-error forgave', () => {
    const result = job({
      conclusion: 'failure',
      steps: [step('Lint', { outcome: 'failure', conclusion: 'success', exitCode: 1 }), step('Test', { outcome: 'failure', conclusion: 'failure', exitCode: 3 })],
    });
    expect(checkTitle(result)).toMatch(/^Failed at step "Test" \(exit 3\)/);
  });

  it('explains a VM that never came up', () => {
    const result = job({ conclusion: 'failure', error: 'SSH did not answer within 120s\nmore', consoleTail: 'Kernel panic' });
    expect(checkTitle(result)).toBe('Could not start the VM: SSH did not answer within 120s');
  });

  it('covers timeouts and skips', () => {
    expect(checkTitle(job({ conclusion: 'timed_out', durationMs: 3_600_000, steps: [step('Soak', { outcome: 'failure', conclusion: 'failure', timedOut: true, exitCode: null })] }))).toBe(
      'Timed out at step "Soak" after 1h00m',
    );
    expect(checkTitle(job({ conclusion: 'skipped' }), "if: github.ref == 'refs/heads/main' was false")).toBe("Skipped: if: github.ref == 'refs/heads/main' was false");
  });

  it('says why a job was cancelled, when it is known', () => {
    const why = 'superseded in concurrency group "ci-refs/heads/main" (cancel-in-progress)';
    const during = [step('Test', { outcome: 'cancelled', conclusion: 'cancelled', exitCode: null })];
    expect(checkTitle(job({ conclusion: 'cancelled', durationMs: 72_000, steps: during, error: why }))).toBe(`Cancelled during step "Test" after 1m12s: ${why}`);
    expect(checkTitle(job({ conclusion: 'cancelled', error: why }))).toBe(`Cancelled: ${why}`);
    expect(checkTitle(job({ conclusion: 'cancelled', durationMs: 72_000, steps: during }))).toBe('Cancelled during step "Test" after 1m12s');
  });

  it('formats durations', () => {
    expect(formatDuration(400)).toBe('0s');
    expect(formatDuration(61_000)).toBe('1m01s');
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe('2h05m');
  });
});

describe('check run summary', () => {
  it('is a Markdown table of steps with outcome, duration and exit code', () => {
    const summary = stepsSummary(
      job({ conclusion: 'failure', steps: [step('Build | all', { durationMs: 5_000 }), step('Test', { outcome: 'failure', conclusion: 'failure', exitCode: 2, durationMs: 65_000 })] }),
    );
    const rows = summary.split('\n');
    expect(rows[0]).toBe('| Step | Outcome | Duration | Exit code |');
    expect(rows[2]).toBe('| Build \\| all | ✅ success | 5s | 0 |');
    expect(rows[3]).toBe('| Test | ❌ failure | 1m05s | 2 |');
  });

  it('shows the job summary the steps wrote (GITHUB_STEP_SUMMARY) under the steps table', () => {
    const { summary } = buildCheckOutput(job({ steps: [step('Test')], summary: '## Coverage\n\n| file | % |\n| --- | --- |\n| a.c | 93 |\n' }));
    expect(summary).toMatch(/^\| Step \| Outcome/);
    expect(summary).toContain('| Test | ✅ success | 1s | 0 |\n\n---\n\n## Coverage\n\n| file | % |');
    expect(buildCheckOutput(job({ steps: [step('Test')] })).summary).not.toContain('\n---\n');
  });

  it('keeps the start of a job summary too long for a check run, and says it was cut', () => {
    expect(keptJobSummary('  \n')).toBeUndefined();
    const long = Array.from({ length: 5_000 }, (_, i) => `| row ${i} | ${'x'.repeat(20)} |`).join('\n');
    const kept = keptJobSummary(`# Report\n${long}`)!;
    expect(kept.length).toBeLessThanOrEqual(JOB_SUMMARY_LIMIT);
    expect(kept).toMatch(/^# Report\n\| row 0 \|/);
    expect(kept).toMatch(/\| row \d+ \| x+ \|\n\n… \(the job summary was cut here: \d+ characters, a check run shows 60000\)\n$/);
    // With many steps the table comes first, and the whole summary still fits the field.
    const steps = Array.from({ length: 300 }, (_, i) => step(`step ${i} ${'n'.repeat(100)}`));
    const { summary } = buildCheckOutput(job({ steps, summary: kept }));
    expect(summary.length).toBeLessThan(OUTPUT_FIELD_LIMIT);
    expect(summary).toContain('| step 299 ');
    expect(summary).toContain('# Report');
    expect(summary).toMatch(/… \(job summary cut\)$/);
  });
});

describe('check run text', () => {
  it('strips ANSI colour and hyperlink sequences', () => {
    expect(stripAnsi('\u001b[31mred\u001b[0m \u001b]8;;https://x\u0007link\u001b]8;;\u0007')).toBe('red link');
  });

  it('shows the last 100 lines of the failing step, then earlier error lines', () => {
    const testLines = ['error: early failure in setup'];
    for (let i = 1; i <= 300; i++) testLines.push(`\u001b[32mline ${i}\u001b[0m`);
    const { path, ranges } = writeLog('fail.log', ['build output\nerror: not this step\n', `${testLines.join('\n')}\n`]);
    const result = job({
      conclusion: 'failure',
      logPath: path,
      steps: [step('Build', { log: ranges[0]! }), step('Test', { outcome: 'failure', conclusion: 'failure', exitCode: 1, log: ranges[1]! })],
    });
    const { text } = buildCheckOutput(result);
    expect(text).toContain('End of step "Test"');
    expect(text).toContain('line 300');
    expect(text).toContain('line 201');
    expect(text).not.toContain('line 200\n');
    expect(text).not.toContain('\u001b');
    expect(text.indexOf('line 300')).toBeLessThan(text.indexOf('error: early failure in setup'));
    expect(text).not.toContain('not this step');
  });

  it('stays under the 65,535 character limit by cutting the front, keeping the end', () => {
    const huge = Array.from({ length: 100 }, (_, i) => `${i}:${'x'.repeat(2_000)}`).join('\n') + '\nTHE VERY LAST LINE';
    const text = excerptText({ stepName: 'Test', tail: huge, errorLines: ['error: a'.repeat(5_000)] });
    expect(text.length).toBeLessThan(OUTPUT_FIELD_LIMIT);
    expect(text).toContain('THE VERY LAST LINE');
    expect(text).toContain('earlier output cut');
  });

  it('shows the serial console when the VM never came up', () => {
    const { text } = buildCheckOutput(job({ conclusion: 'failure', error: 'VM did not boot', consoleTail: 'Booting…\nKernel panic - not syncing' }));
    expect(text).toContain('Serial console');
    expect(text).toContain('Kernel panic - not syncing');
  });

  it('keeps a log containing backticks inside its code fence', () => {
    const text = excerptText({ tail: 'before\n```\nescape attempt\n' });
    expect(text).toMatch(/^````text$/m);
  });
});
