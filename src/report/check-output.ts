/**
 * Turns a JobResult into the title / summary / text a check run shows. Pure apart from reading
 * byte ranges of the job log, and it only ever reads bounded slices of that file.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { JobResult, StepResult } from '../job/result.ts';

/** GitHub rejects output.summary / output.text longer than 65,535 characters. */
export const OUTPUT_FIELD_LIMIT = 65_535;
/** Stay a little below the hard limit: the truncation notice and fences need room. */
const TEXT_BUDGET = 64_000;
const TAIL_LINES = 100;
const TAIL_BYTES = 256 * 1024;
const ERROR_SCAN_BYTES = 512 * 1024;
const MAX_ERROR_LINES = 20;
const ERROR_SECTION_BUDGET = 8_000;

export interface CheckOutput {
  title: string;
  summary: string;
  text: string;
}

// CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and lone escapes.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** `48s`, `3m12s`, `1h02m`; under a second prints `0s`. */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  if (minutes > 0) return `${minutes}m${String(seconds).padStart(2, '0')}s`;
  return `${seconds}s`;
}

/** The step that decided the job's fate: the first whose failure was not forgiven by continue-on-error. */
export function decisiveStep(result: JobResult): StepResult | undefined {
  const wanted = result.conclusion === 'cancelled' ? 'cancelled' : 'failure';
  return (
    result.steps.find((s) => s.conclusion === wanted) ??
    result.steps.find((s) => s.timedOut) ??
    result.steps.find((s) => s.outcome === 'failure')
  );
}

function firstLine(text: string, max = 200): string {
  const line = (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function exitPart(step: StepResult): string {
  return step.exitCode === null ? '' : ` (exit ${step.exitCode})`;
}

export function checkTitle(result: JobResult, skippedReason?: string): string {
  const after = formatDuration(result.durationMs);
  if (result.conclusion === 'skipped') return skippedReason ? `Skipped: ${firstLine(skippedReason)}` : 'Skipped';
  if (result.conclusion === 'cancelled' && result.error) {
    const step = decisiveStep(result);
    return step ? `Cancelled during step "${step.name}" after ${after}: ${firstLine(result.error)}` : `Cancelled: ${firstLine(result.error)}`;
  }
  if (result.error && result.steps.length === 0) {
    // A console tail means the VM was started but never became reachable.
    return result.consoleTail !== undefined ? `Could not start the VM: ${firstLine(result.error)}` : firstLine(result.error);
  }
  const step = decisiveStep(result);
  switch (result.conclusion) {
    case 'success':
      return `Passed in ${after}`;
    case 'timed_out':
      return step ? `Timed out at step "${step.name}" after ${after}` : `Timed out after ${after}`;
    case 'cancelled':
      return step ? `Cancelled during step "${step.name}" after ${after}` : `Cancelled after ${after}`;
    case 'failure':
      if (step) return `Failed at step "${step.name}"${exitPart(step)} after ${after}`;
      return result.error ? `Failed: ${firstLine(result.error)}` : `Failed after ${after}`;
  }
}

function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

const OUTCOME_MARK: Record<string, string> = {
  success: '✅ success',
  failure: '❌ failure',
  cancelled: '⏹️ cancelled',
  skipped: '⏭️ skipped',
};

export function stepsSummary(result: JobResult): string {
  const lines: string[] = [];
  if (result.error) lines.push(`**${cell(firstLine(result.error, 500))}**`, '');
  if (result.steps.length === 0) {
    lines.push('No steps ran.');
    return lines.join('\n');
  }
  const artifacts = artifactLines(result);
  lines.push('| Step | Outcome | Duration | Exit code |', '| --- | --- | --- | --- |');
  for (const step of result.steps) {
    let outcome = OUTCOME_MARK[step.outcome] ?? step.outcome;
    if (step.timedOut) outcome += ' (timed out)';
    if (step.outcome !== step.conclusion) outcome += ` → ${step.conclusion} (continue-on-error)`;
    const duration = step.outcome === 'skipped' ? '' : formatDuration(step.durationMs);
    const exit = step.exitCode === null ? '' : String(step.exitCode);
    lines.push(`| ${cell(step.name)} | ${outcome} | ${duration} | ${exit} |`);
  }
  return [...lines, ...artifacts].join('\n');
}

/** The run's artifacts (upload-artifact), kept on the forgevm host: name and size. */
function artifactLines(result: JobResult): string[] {
  const artifacts = result.artifacts ?? [];
  if (artifacts.length === 0) return [];
  const shown = artifacts.slice(0, 50).map((a) => `- \`${cell(a.name)}\` (${formatBytes(a.size)})`);
  const more = artifacts.length > 50 ? [`- … and ${artifacts.length - 50} more`] : [];
  return ['', `**Artifacts of this run** (kept by forgevm; \`download-artifact\` in a later job gets them):`, ...shown, ...more];
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Read at most `maxBytes` of the log slice [start, end), from its end (tail) or its start (head). */
export function readLogSlice(path: string, range: { start: number; end: number }, maxBytes: number, from: 'tail' | 'head'): string {
  const length = Math.max(0, Math.min(maxBytes, range.end - range.start));
  if (length === 0) return '';
  const position = from === 'tail' ? range.end - length : range.start;
  const buffer = Buffer.alloc(length);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const read = readSync(fd, buffer, 0, length, position);
    let text = buffer.subarray(0, read).toString('utf8');
    // A slice cut mid-line starts (tail) or ends (head) with a partial line: drop it.
    if (from === 'tail' && position > range.start) text = text.slice(text.indexOf('\n') + 1);
    if (from === 'head' && read < range.end - range.start) text = text.slice(0, text.lastIndexOf('\n') + 1);
    return text;
  } finally {
    closeSync(fd);
  }
}

const ERROR_LIKE = /\b(error|fatal|panic|exception|failed|failure|traceback)\b|^E\s{2,}|:\d+:\d+: error/i;

export function errorLikeLines(text: string, max = MAX_ERROR_LINES): string[] {
  const found: string[] = [];
  for (const line of text.split('\n')) {
    if (ERROR_LIKE.test(line)) found.push(line.trimEnd());
    if (found.length >= max) break;
  }
  return found;
}

/** A Markdown code fence longer than any backtick run inside the content, so logs cannot break out of it. */
function fenced(content: string): string {
  const longest = Math.max(2, ...Array.from(content.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}text\n${content}\n${fence}`;
}

function lastLines(text: string, count: number): string {
  const lines = text.replace(/\n+$/, '').split('\n');
  return lines.slice(-count).join('\n');
}

/** Cut from the front so the end, where failures show up, always survives. */
export function keepEnd(text: string, budget: number, notice = '… (earlier output cut)\n'): string {
  if (text.length <= budget) return text;
  const kept = text.slice(text.length - Math.max(0, budget - notice.length));
  const lineStart = kept.indexOf('\n');
  return notice + (lineStart >= 0 && lineStart < 200 ? kept.slice(lineStart + 1) : kept);
}

export interface ExcerptParts {
  stepName?: string;
  tail?: string;
  errorLines?: string[];
  consoleTail?: string;
}

export function excerptText(parts: ExcerptParts, budget = TEXT_BUDGET): string {
  const sections: string[] = [];
  let errors = '';
  if (parts.errorLines && parts.errorLines.length > 0) {
    const body = keepEnd(stripAnsi(parts.errorLines.join('\n')), ERROR_SECTION_BUDGET);
    errors = `### Lines that look like errors\n\n${fenced(body)}`;
  }
  const room = budget - errors.length - 200;
  if (parts.tail !== undefined && parts.tail.trim() !== '') {
    const header = parts.stepName ? `### End of step "${cell(parts.stepName)}"` : '### End of the log';
    const body = keepEnd(lastLines(stripAnsi(parts.tail), TAIL_LINES), room);
    sections.push(`${header}\n\n${fenced(body)}`);
  }
  if (errors) sections.push(errors);
  if (parts.consoleTail !== undefined && parts.consoleTail.trim() !== '') {
    const body = keepEnd(lastLines(stripAnsi(parts.consoleTail), TAIL_LINES), room);
    sections.push(`### Serial console (last lines)\n\n${fenced(body)}`);
  }
  const text = sections.join('\n\n');
  return keepEnd(text, Math.min(budget, OUTPUT_FIELD_LIMIT - 1));
}

export interface CheckOutputOptions {
  /** Reason shown for skipped jobs. */
  skippedReason?: string;
}

export function buildCheckOutput(result: JobResult, options: CheckOutputOptions = {}): CheckOutput {
  const title = checkTitle(result, options.skippedReason);
  const steps = keepEnd(stepsSummary(result), TEXT_BUDGET);
  // The steps' own job summary follows the table, as GitHub shows it under the job.
  const room = TEXT_BUDGET - steps.length - 10;
  const jobSummary = result.summary && room > 200 ? (result.summary.length > room ? `${result.summary.slice(0, room - 40)}\n\n… (job summary cut)` : result.summary) : undefined;
  const summary = jobSummary ? `${steps}\n\n---\n\n${jobSummary}` : steps;
  const step = result.conclusion === 'success' ? undefined : decisiveStep(result);
  const parts: ExcerptParts = {};
  if (step) {
    parts.stepName = step.name;
    parts.tail = readLogSlice(result.logPath, step.log, TAIL_BYTES, 'tail');
    const head = readLogSlice(result.logPath, step.log, ERROR_SCAN_BYTES, 'head');
    const tailSet = new Set(stripAnsi(lastLines(parts.tail, TAIL_LINES)).split('\n').map((l) => l.trimEnd()));
    // Error lines already shown in the tail add nothing.
    parts.errorLines = errorLikeLines(stripAnsi(head), MAX_ERROR_LINES * 4)
      .filter((l) => !tailSet.has(l))
      .slice(0, MAX_ERROR_LINES);
  }
  if (result.steps.length === 0 && result.consoleTail !== undefined) parts.consoleTail = result.consoleTail;
  return { title: firstLine(title, 1000), summary, text: excerptText(parts) };
}
