/**
 * Check-run annotations parsed from tool output in the job log: gcc/clang, tsc, eslint (unix
 * formatter), go vet / go test, rustc / cargo, pytest. Paths are made relative to the workspace;
 * annotations pointing outside it are dropped (GitHub could not place them on the diff).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { CommandAnnotation } from '../job/step-output.ts';
import { stripAnsi } from './check-output.ts';

export type AnnotationLevel = 'notice' | 'warning' | 'failure';

/** Shaped like the Checks API's `output.annotations[]` items. */
export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  start_column?: number;
  end_column?: number;
  annotation_level: AnnotationLevel;
  message: string;
  title?: string;
}

/** GitHub accepts at most 50 annotations per create/update request. */
export const ANNOTATIONS_PER_REQUEST = 50;
/** A runaway build can print thousands of warnings; nobody reads past this many. */
export const MAX_ANNOTATIONS = 500;
const MAX_MESSAGE = 4_000;

function level(word: string): AnnotationLevel {
  const w = word.toLowerCase();
  if (w.startsWith('warn')) return 'warning';
  if (w === 'note' || w === 'info' || w === 'help') return 'notice';
  return 'failure';
}

/** Relative, forward-slash path inside the workspace, or undefined when it points elsewhere. */
export function workspaceRelative(path: string, workspace: string | undefined): string | undefined {
  let p = path.trim().replace(/\\/g, '/');
  if (p.startsWith('/') && workspace?.startsWith('*/')) {
    // `*/work/app`: the guest's home is not known here, only that the workspace ends like this.
    const marker = `${workspace.slice(1).replace(/\/+$/, '')}/`;
    const at = p.lastIndexOf(marker);
    if (at < 0) return undefined;
    p = p.slice(at + marker.length);
  } else if (p.startsWith('/')) {
    const root = workspace?.replace(/\/+$/, '');
    if (!root || !p.startsWith(`${root}/`)) return undefined;
    p = p.slice(root.length + 1);
  }
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '' || p.startsWith('../') || p.includes('/../')) return undefined;
  return p;
}

function truncate(message: string): string {
  const m = message.trim();
  return m.length > MAX_MESSAGE ? `${m.slice(0, MAX_MESSAGE - 1)}…` : m;
}

interface Raw {
  path: string;
  line: number;
  column?: number;
  level: AnnotationLevel;
  message: string;
  title?: string;
}

// gcc / clang: `src/foo.c:12:5: error: 'x' undeclared` (also `fatal error:`).
const GCC = /^(?<path>[^\s:][^:]*\.(?:c|cc|cpp|cxx|h|hh|hpp|hxx|m|mm|s|S)):(?<line>\d+):(?:(?<col>\d+):)? (?<lvl>fatal error|error|warning|note): (?<msg>.+)$/;
// tsc plain: `src/a.ts(12,5): error TS2322: Type 'string' …`
const TSC = /^(?<path>[^\s(][^(]*\.(?:ts|tsx|mts|cts|js|jsx))\((?<line>\d+),(?<col>\d+)\): (?<lvl>error|warning) (?<code>TS\d+): (?<msg>.+)$/;
// tsc --pretty: `src/a.ts:12:5 - error TS2322: …`
const TSC_PRETTY = /^(?<path>[^\s:][^:]*\.(?:ts|tsx|mts|cts|js|jsx)):(?<line>\d+):(?<col>\d+) - (?<lvl>error|warning) (?<code>TS\d+): (?<msg>.+)$/;
// eslint -f unix: `/w/src/a.js:12:5: 'x' is defined but never used. [Error/no-unused-vars]`
const ESLINT = /^(?<path>[^\s:][^:]*):(?<line>\d+):(?<col>\d+): (?<msg>.+) \[(?<lvl>Error|Warning)(?:\/(?<rule>[^\]]+))?\]$/;
// go vet / go build: `./main.go:12:2: fmt.Printf format %d has arg s of wrong type string` (sometimes prefixed `vet: `).
const GO = /^(?:vet: )?(?<path>[^\s:][^:]*\.go):(?<line>\d+):(?:(?<col>\d+):)? (?<msg>.+)$/;
// go test failure lines are indented: `    calc_test.go:15: Add(1, 2) = 4, want 3`.
const GO_TEST = /^\s+(?<path>[^\s:][^:]*_test\.go):(?<line>\d+): (?<msg>.+)$/;
// rustc: `error[E0425]: cannot find value …` then ` --> src/main.rs:2:13`.
const RUST_HEAD = /^(?<lvl>error|warning)(?:\[(?<code>[A-Z]\d+)\])?: (?<msg>.+)$/;
const RUST_AT = /^\s*--> (?<path>[^:]+):(?<line>\d+):(?<col>\d+)$/;
// pytest (default traceback): `E       assert 3 == 4` lines, then `tests/test_x.py:5: AssertionError`.
const PYTEST_E = /^E {3,}(?<msg>.*)$/;
const PYTEST_AT = /^(?<path>[^\s:][^:]*\.py):(?<line>\d+): (?<exc>[A-Za-z_][\w.]*)$/;

/** Stateful line parser: feed lines in order, then collect. */
export class AnnotationCollector {
  #seen = new Set<string>();
  #out: Annotation[] = [];
  #rustPending?: { level: AnnotationLevel; message: string; code?: string };
  #pytestE: string[] = [];

  constructor(private readonly workspace?: string) {}

  get annotations(): Annotation[] {
    return this.#out;
  }

  push(rawLine: string): void {
    if (this.#out.length >= MAX_ANNOTATIONS) return;
    const line = stripAnsi(rawLine).replace(/\r$/, '');
    const raw = this.#match(line);
    if (raw) this.#add(raw);
  }

  #match(line: string): Raw | undefined {
    let m: RegExpMatchArray | null;
    const pending = this.#rustPending;
    this.#rustPending = undefined;
    if (pending && (m = line.match(RUST_AT))) {
      const g = m.groups!;
      return { path: g.path!, line: +g.line!, column: +g.col!, level: pending.level, message: pending.message, title: pending.code ? `rustc ${pending.code}` : 'rustc' };
    }
    if ((m = line.match(PYTEST_E))) {
      this.#pytestE.push(m.groups!.msg!);
      return undefined;
    }
    if ((m = line.match(PYTEST_AT))) {
      const g = m.groups!;
      const message = this.#pytestE.length > 0 ? this.#pytestE.join('\n') : g.exc!;
      this.#pytestE = [];
      return { path: g.path!, line: +g.line!, level: 'failure', message, title: `pytest: ${g.exc}` };
    }
    // pytest separates tests with `____ test_name ____` rules; E lines never carry over.
    if (/^_{3,}/.test(line) || /^={3,}/.test(line)) this.#pytestE = [];
    if ((m = line.match(RUST_HEAD))) {
      const g = m.groups!;
      // `error: could not compile …` summaries have no location line after them; harmless.
      this.#rustPending = { level: level(g.lvl!), message: g.msg!, code: g.code };
      return undefined;
    }
    if ((m = line.match(TSC)) || (m = line.match(TSC_PRETTY))) {
      const g = m.groups!;
      return { path: g.path!, line: +g.line!, column: +g.col!, level: level(g.lvl!), message: g.msg!, title: `tsc ${g.code}` };
    }
    if ((m = line.match(GCC))) {
      const g = m.groups!;
      return { path: g.path!, line: +g.line!, column: g.col ? +g.col : undefined, level: level(g.lvl!), message: g.msg!, title: 'compiler' };
    }
    if ((m = line.match(ESLINT))) {
      const g = m.groups!;
      return { path: g.path!, line: +g.line!, column: +g.col!, level: level(g.lvl!), message: g.msg!, title: g.rule ? `eslint ${g.rule}` : 'eslint' };
    }
    if ((m = line.match(GO_TEST))) {
      const g = m.groups!;
      return { path: g.path!, line: +g.line!, level: 'failure', message: g.msg!, title: 'go test' };
    }
    if ((m = line.match(GO))) {
      const g = m.groups!;
      return { path: g.path!, line: +g.line!, column: g.col ? +g.col : undefined, level: 'failure', message: g.msg!, title: 'go' };
    }
    return undefined;
  }

  #add(raw: Raw): void {
    const path = workspaceRelative(raw.path, this.workspace);
    if (!path || raw.line < 1) return;
    const key = `${path}:${raw.line}:${raw.column ?? ''}:${raw.message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    const annotation: Annotation = {
      path,
      start_line: raw.line,
      end_line: raw.line,
      annotation_level: raw.level,
      message: truncate(raw.message),
    };
    // GitHub only accepts columns when the annotation stays on one line, which ours always do.
    if (raw.column !== undefined && raw.column > 0) {
      annotation.start_column = raw.column;
      annotation.end_column = raw.column;
    }
    if (raw.title) annotation.title = raw.title;
    this.#out.push(annotation);
  }
}

export function parseAnnotations(text: string, workspace?: string): Annotation[] {
  const collector = new AnnotationCollector(workspace);
  for (const line of text.split('\n')) collector.push(line);
  return collector.annotations;
}

/** Stream the given byte ranges of a job log through the parsers without loading the file. */
export async function annotationsFromLog(logPath: string, ranges: { start: number; end: number }[], workspace?: string): Promise<Annotation[]> {
  const collector = new AnnotationCollector(workspace);
  for (const range of ranges) {
    if (range.end <= range.start) continue;
    const stream = createReadStream(logPath, { start: range.start, end: range.end - 1, encoding: 'utf8' });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    try {
      for await (const line of lines) collector.push(line);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return collector.annotations;
}

/** Split into request-sized batches (the first goes with the completing PATCH, the rest append). */
export function batchAnnotations(annotations: Annotation[], size = ANNOTATIONS_PER_REQUEST): Annotation[][] {
  const batches: Annotation[][] = [];
  for (let i = 0; i < annotations.length; i += size) batches.push(annotations.slice(i, i + size));
  return batches;
}

/**
 * Annotations from workflow commands, in the Checks API's shape. A command without a file (or
 * with one outside the workspace) is placed on line 1 of `fallbackPath`, the workflow file: the
 * Checks API needs a path, and GitHub shows such annotations at the job, not in the diff.
 */
export function commandAnnotations(commands: CommandAnnotation[], workspace: string | undefined, fallbackPath: string): Annotation[] {
  const out: Annotation[] = [];
  for (const c of commands.slice(0, MAX_ANNOTATIONS)) {
    const path = c.file ? workspaceRelative(c.file, workspace) : undefined;
    const start = path && c.line && c.line > 0 ? c.line : 1;
    const end = path && c.endLine && c.endLine >= start ? c.endLine : start;
    const annotation: Annotation = { path: path ?? fallbackPath, start_line: start, end_line: end, annotation_level: c.level, message: truncate(c.message) || '(no message)' };
    // Columns only on single-line annotations (the Checks API's rule).
    if (path && start === end && c.column && c.column > 0) {
      annotation.start_column = c.column;
      annotation.end_column = c.endColumn && c.endColumn >= c.column ? c.endColumn : c.column;
    }
    if (c.title) annotation.title = c.title.slice(0, 255);
    out.push(annotation);
  }
  return out;
}
