/**
 * GitHub's `hashFiles()` for steps. The expression evaluator is synchronous and the files live in
 * the guest, so a step first collects the hashFiles() calls of a template (hashFilesCallsIn in
 * expressions.ts), computes them here asynchronously, and the evaluator then looks the answers up.
 *
 * GitHub's runner (src/Misc/expressionFunc/hashFiles): the arguments are joined with newlines
 * into one @actions/glob pattern list, resolved against GITHUB_WORKSPACE, symbolic links
 * followed; matched paths outside the workspace and directories are skipped; the matches are
 * sorted (JavaScript's default string order on the full path); the result is SHA-256 over the
 * concatenated binary SHA-256 digests of the files, in hex, or '' when nothing matched.
 *
 * @actions/glob patterns (minimatch with dot, no braces, no extglob): `*` and `?` within one path
 * segment, `**` as a whole segment for any number of segments, `[...]` sets, `\` escapes, a
 * leading `!` excludes (the last matching pattern decides), lines starting with `#` are comments,
 * and a pattern that matches a directory matches everything under it. `src/workflow/filters.ts`
 * is not reused: there `?` and `+` are regex quantifiers and a directory does not include its files.
 *
 * In the guest: busybox `find -L WS -type f -print0` lists the files, matching happens here, and
 * `xargs -0 sha256sum` hashes only the matched ones; paths travel as data (stdin), never as script.
 * A symbolic-link cycle in the workspace makes busybox find descend until the path is too long.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Guest } from '../ssh/guest.ts';

interface GlobPattern {
  negate: boolean;
  regex: RegExp;
  /** A pattern ending in `/` matches directories only, so only the files under them. */
  directoryOnly: boolean;
}

/** Parses hashFiles() arguments into patterns resolved against the (normalized) workspace. */
function parseHashFilesPatterns(args: readonly string[], workspace: string): GlobPattern[] {
  const patterns: GlobPattern[] = [];
  for (const line of args.join('\n').split('\n')) {
    let text = line.trim();
    if (text === '' || text.startsWith('#')) continue;
    let negate = false;
    while (text.startsWith('!')) {
      negate = !negate;
      text = text.slice(1);
    }
    text = text.trim();
    if (text === '') continue;
    const directoryOnly = text.endsWith('/');
    const absolute = posix.normalize(text.startsWith('/') ? text : `${workspace}/${text}`).replace(/\/+$/, '') || '/';
    // The workspace part is literal: its name may contain glob characters.
    const inWorkspace = absolute === workspace || absolute.startsWith(`${workspace}/`);
    const source = inWorkspace ? [...workspace].map(escapeRegex).join('') + globSource(absolute.slice(workspace.length)) : globSource(absolute);
    patterns.push({ negate, regex: new RegExp(`^${source}$`, 's'), directoryOnly });
  }
  return patterns;
}

/** One glob → regex source (unanchored). */
function globSource(pattern: string): string {
  const segments = pattern.split('/');
  let source = '';
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '**') {
      source += last ? '.*' : '(?:[^/]*/)*';
    } else {
      source += segmentRegex(segment) + (last ? '' : '/');
    }
  });
  return source;
}

function segmentRegex(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else if (ch === '\\' && i + 1 < segment.length) out += escapeRegex(segment[++i]!);
    else if (ch === '[') {
      const set = characterSet(segment, i);
      if (set === undefined) out += '\\[';
      else {
        out += set.regex;
        i = set.end;
      }
    } else out += escapeRegex(ch);
  }
  return out;
}

/** `[abc]`, `[a-z]`, `[!x]` / `[^x]` starting at `start`; undefined when never closed (a literal `[`). */
function characterSet(segment: string, start: number): { regex: string; end: number } | undefined {
  let i = start + 1;
  let negated = false;
  if (segment[i] === '!' || segment[i] === '^') {
    negated = true;
    i++;
  }
  let body = '';
  let first = true;
  for (; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch === ']' && !first) return { regex: `[${negated ? '^/' : ''}${body}]`, end: i };
    first = false;
    if (ch === '\\' && i + 1 < segment.length) body += escapeClass(segment[++i]!);
    else if (ch === '-' && body !== '' && segment[i + 1] !== ']') body += '-';
    else body += escapeClass(ch);
  }
  return undefined;
}

function escapeRegex(ch: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(ch) ? `\\${ch}` : ch;
}

function escapeClass(ch: string): string {
  return /[\]\\^\-[]/.test(ch) ? `\\${ch}` : ch;
}

/** Whether a pattern matches the file or one of its parent folders (implicit descendants). */
function matchesPathOrParent(pattern: GlobPattern, file: string): boolean {
  if (!pattern.directoryOnly && pattern.regex.test(file)) return true;
  for (let cut = file.lastIndexOf('/'); cut > 0; cut = file.lastIndexOf('/', cut - 1)) {
    if (pattern.regex.test(file.slice(0, cut))) return true;
  }
  return false;
}

/** The files (absolute paths) hashFiles() would hash, in the runner's order. */
export function selectHashFiles(args: readonly string[], workspace: string, files: readonly string[]): string[] {
  const ws = posix.normalize(workspace).replace(/(.)\/+$/, '$1');
  const patterns = parseHashFilesPatterns(args, ws);
  const root = `${ws}/`;
  const selected = files.filter((file) => {
    if (!file.startsWith(root)) return false;
    let included = false;
    for (const pattern of patterns) {
      if (pattern.negate ? included : !included) {
        if (matchesPathOrParent(pattern, file)) included = !pattern.negate;
      }
    }
    return included;
  });
  return selected.sort();
}

/** GitHub's combination: SHA-256 over the binary digests in order, hex; '' for no files. */
export function combineDigests(digests: readonly Buffer[]): string {
  if (digests.length === 0) return '';
  const result = createHash('sha256');
  for (const digest of digests) result.update(digest);
  return result.digest('hex');
}

/**
 * hashFiles() answers for one step: the workspace is listed once, each file hashed at most once.
 * Make a new one per step, since steps change files.
 */
export class HashFiles {
  readonly #guest: Guest;
  readonly #workspace: string;
  #files: Promise<string[]> | undefined;
  readonly #digests = new Map<string, Buffer>();
  readonly #results = new Map<string, string>();

  constructor(guest: Guest, workspace: string) {
    this.#guest = guest;
    this.#workspace = posix.normalize(workspace).replace(/(.)\/+$/, '$1');
  }

  /** Computes the given calls (arguments as the evaluator passes them) in the guest. */
  async prepare(calls: readonly string[][]): Promise<void> {
    const pending = calls.filter((args) => !this.#results.has(keyOf(args)));
    if (pending.length === 0) return;
    const files = await (this.#files ??= this.#listFiles());
    const selections = pending.map((args) => selectHashFiles(args, this.#workspace, files));
    const missing = [...new Set(selections.flat())].filter((file) => !this.#digests.has(file));
    if (missing.length > 0) await this.#hash(missing);
    pending.forEach((args, i) => this.#results.set(keyOf(args), combineDigests(selections[i]!.map((file) => this.#digests.get(file)!))));
  }

  /** The synchronous hashFiles() for the evaluator. */
  lookup(args: string[]): string {
    const result = this.#results.get(keyOf(args));
    if (result === undefined) {
      throw new Error(`hashFiles(${args.map((a) => JSON.stringify(a)).join(', ')}) was not computed before evaluation`);
    }
    return result;
  }

  async #listFiles(): Promise<string[]> {
    const out: Buffer[] = [];
    let err = '';
    const res = await this.#guest.exec(['find', '-L', this.#workspace, '-type', 'f', '-print0'], {
      onStdout: (chunk) => out.push(chunk),
      onStderr: (chunk) => (err += chunk.toString('utf8')),
    });
    // find exits 1 when some folder could not be read; what it printed is still the listing.
    if (res.code !== 0 && res.code !== 1) throw new Error(`hashFiles(): listing ${this.#workspace} in the guest failed: ${err.trim() || `exit ${res.code ?? res.signal}`}`);
    return Buffer.concat(out)
      .toString('utf8')
      .split('\0')
      .filter((p) => p !== '');
  }

  async #hash(files: string[]): Promise<void> {
    let out = '';
    let err = '';
    const res = await this.#guest.exec(['xargs', '-0', 'sha256sum'], {
      stdin: Buffer.from(files.map((f) => `${f}\0`).join(''), 'utf8'),
      onStdout: (chunk) => (out += chunk.toString('utf8')),
      onStderr: (chunk) => (err += chunk.toString('utf8')),
    });
    if (res.code !== 0) throw new Error(`hashFiles(): hashing files in the guest failed: ${err.trim() || `exit ${res.code ?? res.signal}`}`);
    // One `DIGEST  PATH` line per file, in input order (GNU prefixes `\` to escaped names).
    const digests = out
      .split('\n')
      .map((line) => /^\\?([0-9a-f]{64}) [ *]/.exec(line)?.[1])
      .filter((d): d is string => d !== undefined);
    if (digests.length !== files.length) {
      throw new Error(`hashFiles(): expected ${files.length} digests from sha256sum in the guest, got ${digests.length}`);
    }
    files.forEach((file, i) => this.#digests.set(file, Buffer.from(digests[i]!, 'hex')));
  }
}

function keyOf(args: readonly string[]): string {
  return JSON.stringify(args);
}
