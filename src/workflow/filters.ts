/**
 * GitHub's branch, tag and path filter patterns. They are not globs in the minimatch sense:
 * `*` matches anything but `/`, `**` matches anything including `/` (`**\/` also matches zero
 * directories), `?` and `+` are regex quantifiers on the preceding character or `[]` set, `[]`
 * is a character set, `\` escapes the next character, and `!` at the start negates. A list is
 * evaluated in order: the last pattern that matches decides (a negation un-includes).
 */

const cache = new Map<string, RegExp>();

export class FilterPatternError extends Error {}

/** Compiles one (non-negated) pattern to an anchored regex. Throws FilterPatternError. */
export function compileFilterPattern(pattern: string): RegExp {
  const cached = cache.get(pattern);
  if (cached) return cached;
  let source = '';
  // Whether the last emitted piece is a single-character atom a quantifier may follow.
  let quantifiable = false;
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        const segmentStart = i === 0 || pattern[i - 1] === '/';
        if (pattern[i + 2] === '/' && segmentStart) {
          source += '(?:.*/)?';
          i += 3;
        } else {
          source += '.*';
          i += 2;
        }
      } else {
        source += '[^/]*';
        i += 1;
      }
      quantifiable = false;
    } else if (ch === '?' || ch === '+') {
      if (!quantifiable) throw new FilterPatternError(`"${ch}" at position ${i + 1} has no character before it to repeat`);
      source += ch;
      quantifiable = false;
      i += 1;
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new FilterPatternError(`"[" at position ${i + 1} is never closed with "]"`);
      source += characterSet(pattern.slice(i + 1, end), i + 1);
      quantifiable = true;
      i = end + 1;
    } else if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new FilterPatternError('the pattern ends with a lone "\\"');
      source += escapeRegex(next);
      quantifiable = true;
      i += 2;
    } else {
      source += escapeRegex(ch);
      quantifiable = true;
      i += 1;
    }
  }
  const regex = new RegExp(`^${source}$`, 's');
  if (cache.size > 2000) cache.clear();
  cache.set(pattern, regex);
  return regex;
}

/** `[...]` body → regex class. GitHub allows single characters and a-z / A-Z / 0-9 ranges. */
function characterSet(body: string, position: number): string {
  if (body.length === 0) throw new FilterPatternError(`empty "[]" at position ${position}`);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (body[i + 1] === '-' && i + 2 < body.length) {
      const to = body[i + 2]!;
      if (!isRange(ch, to)) {
        throw new FilterPatternError(`range "${ch}-${to}" in "[${body}]" is invalid (use a-z, A-Z or 0-9 style ranges)`);
      }
      out += `${ch}-${to}`;
      i += 2;
    } else {
      out += escapeRegex(ch);
    }
  }
  return `[${out}]`;
}

function isRange(from: string, to: string): boolean {
  const same = (re: RegExp) => re.test(from) && re.test(to);
  return (same(/^[a-z]$/) || same(/^[A-Z]$/) || same(/^[0-9]$/)) && from <= to;
}

function escapeRegex(ch: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(ch) ? `\\${ch}` : ch;
}

/** The error in a pattern (with or without a leading `!`), or undefined when it is valid. */
export function filterPatternError(pattern: string): string | undefined {
  try {
    compileFilterPattern(pattern.startsWith('!') ? pattern.slice(1) : pattern);
    return undefined;
  } catch (err) {
    return `invalid filter pattern "${pattern}": ${(err as Error).message}`;
  }
}

/**
 * Whether `name` is selected by an ordered pattern list: each matching pattern sets the verdict
 * (a positive one includes, a `!` one excludes), and the last match wins. Invalid patterns
 * never match (validation reports them).
 */
export function matchesFilter(patterns: readonly string[], name: string): boolean {
  let included = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    let regex: RegExp;
    try {
      regex = compileFilterPattern(pattern);
    } catch {
      continue;
    }
    if (regex.test(name)) included = !negated;
  }
  return included;
}

/** The first positive pattern that matches `name`, for explanations. */
export function firstMatchingPattern(patterns: readonly string[], name: string): string | undefined {
  return patterns.find((p) => !p.startsWith('!') && safeTest(p, name));
}

function safeTest(pattern: string, name: string): boolean {
  try {
    return compileFilterPattern(pattern).test(name);
  } catch {
    return false;
  }
}
