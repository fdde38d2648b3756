/**
 * Finding every occurrence of a set of literal patterns, for the masker.
 *
 * Measured on 100 MiB of log text, on a loaded 2-core machine (test/log-masker.test.ts prints
 * the masker's own throughput each run): Node's native indexOf, once per pattern, costs ~70 ms for one pattern and grows with the
 * count (~1.5 s for 100 patterns, ~10 s for 800: the lines of a large multi-line secret).
 * Past MANY_PATTERNS, a single pass with a 4-byte-prefix filter costs ~0.3 s whatever the count.
 * A RegExp alternation was slower than both (5 s for 100 patterns).
 */

/**
 * Every occurrence of every pattern, overlapping ones included (as GitHub's runner finds them),
 * merged into disjoint [start, end) ranges: overlapping or touching matches become one range,
 * so overlapping secrets are hidden whole. Flat: [start0, end0, start1, end1, …], sorted.
 * Offsets are UTF-16 units in a string, bytes in a Buffer.
 */
export function occurrences(haystack: string, patterns: readonly string[]): number[];
export function occurrences(haystack: Buffer, patterns: readonly Buffer[]): number[];
export function occurrences(haystack: string | Buffer, patterns: readonly (string | Buffer)[]): number[] {
  // Both types have indexOf(same type, from); TypeScript cannot see that through the union.
  const searched = haystack as { indexOf(pattern: string | Buffer, from: number): number };
  const found: number[] = [];
  for (const pattern of patterns) {
    for (let at = searched.indexOf(pattern, 0); at >= 0; at = searched.indexOf(pattern, at + 1)) found.push(at, at + pattern.length);
  }
  return mergeRanges(found);
}

/** Sorts flat [start, end) pairs and merges overlapping or touching ones. */
export function mergeRanges(pairs: number[]): number[] {
  if (pairs.length <= 2) return pairs;
  const order = Array.from({ length: pairs.length / 2 }, (_, i) => i).sort((a, b) => pairs[2 * a]! - pairs[2 * b]!);
  const merged: number[] = [];
  for (const i of order) {
    const start = pairs[2 * i]!;
    const end = pairs[2 * i + 1]!;
    const last = merged.length - 1;
    if (last > 0 && start <= merged[last]!) merged[last] = Math.max(merged[last]!, end);
    else merged.push(start, end);
  }
  return merged;
}

/** Beyond this many patterns of 4+ bytes, one filtered pass beats one indexOf per pattern. */
export const MANY_PATTERNS = 48;

const PREFIX_BYTES = 4;
/** 64 KiB of filter: small enough to stay in cache, few false hits for thousands of patterns. */
const FILTER_BITS = 16;

/** Where a 4-byte prefix (little-endian int32) lands in the filter. */
const slot = (word: number): number => Math.imul(word, 0x9e3779b1) >>> (32 - FILTER_BITS);

/** A 1- to 3-byte string as a number, for the set of short prefixes. */
const shortKey = (data: Buffer, from: number, length: number): number => {
  let key = length << 24;
  for (let i = 0; i < length; i++) key |= data[from + i]! << (8 * i);
  return key;
};

/**
 * Byte patterns: where they occur in a buffer (indexOf per pattern while few, one filtered pass
 * once many), and where a buffer's tail could be the start of one (for streams cut anywhere).
 */
export class BytePatterns {
  readonly #all: Buffer[] = [];
  /** Shorter than the filter's prefix: always searched with indexOf. */
  readonly #short: Buffer[] = [];
  #longCount = 0;
  /** First 4 bytes of every pattern of 4+ bytes: a slot table, and the patterns behind each slot. */
  #slots: Uint8Array | null = null;
  readonly #bySlot = new Map<number, Array<{ prefix: number; pattern: Buffer }>>();
  /** Every proper prefix of 1 to 3 bytes, as shortKey() numbers. */
  readonly #shortPrefixes = new Set<number>();
  #longest = 0;

  get list(): readonly Buffer[] {
    return this.#all;
  }

  add(pattern: Buffer): void {
    if (pattern.length === 0) return;
    this.#all.push(pattern);
    this.#longest = Math.max(this.#longest, pattern.length);
    for (let k = 1; k < Math.min(PREFIX_BYTES, pattern.length); k++) this.#shortPrefixes.add(shortKey(pattern, 0, k));
    if (pattern.length < PREFIX_BYTES) {
      this.#short.push(pattern);
      return;
    }
    this.#longCount++;
    this.#slots ??= new Uint8Array(1 << FILTER_BITS);
    const prefix = pattern.readInt32LE(0);
    const at = slot(prefix);
    this.#slots[at] = 1;
    const list = this.#bySlot.get(at);
    if (list) list.push({ prefix, pattern });
    else this.#bySlot.set(at, [{ prefix, pattern }]);
  }

  /** Merged ranges of every occurrence in data (see occurrences()). */
  find(data: Buffer): number[] {
    if (this.#longCount <= MANY_PATTERNS) return occurrences(data, this.#all);
    const found = occurrences(data, this.#short);
    this.#scan(data, 0, data.length - PREFIX_BYTES, (i, pattern) => {
      if (i + pattern.length <= data.length && data.compare(pattern, 0, pattern.length, i, i + pattern.length) === 0) found.push(i, i + pattern.length);
      return false;
    });
    return mergeRanges(found);
  }

  /**
   * The earliest offset from which data's tail is a proper prefix of some pattern (could become a
   * match with the bytes that follow); data.length when none is.
   */
  tailStart(data: Buffer): number {
    const n = data.length;
    let start = n;
    // Prefixes of 4+ bytes start with a pattern's first 4 bytes: the filter finds them.
    this.#scan(data, Math.max(0, n - (this.#longest - 1)), n - PREFIX_BYTES, (i, pattern) => {
      if (pattern.length <= n - i || data.compare(pattern, 0, n - i, i, n) !== 0) return false;
      start = i;
      return true;
    });
    if (start < n) return start;
    for (let k = Math.min(PREFIX_BYTES - 1, n); k >= 1; k--) {
      if (this.#shortPrefixes.has(shortKey(data, n - k, k))) return n - k;
    }
    return n;
  }

  /**
   * Visits, in order, each offset from..last whose next 4 bytes are some pattern's first 4, with
   * each such pattern, until visit returns true.
   */
  #scan(data: Buffer, from: number, last: number, visit: (at: number, pattern: Buffer) => boolean): void {
    const slots = this.#slots;
    if (!slots || last < from) return;
    // Holds the 4 bytes at i-1..i+2 before each step, i..i+3 after it (little-endian, as readInt32LE).
    let word = (data[from]! << 8) | (data[from + 1]! << 16) | (data[from + 2]! << 24);
    for (let i = from; i <= last; i++) {
      word = (word >>> 8) | (data[i + 3]! << 24);
      const at = slot(word);
      if (slots[at] === 0) continue;
      for (const { prefix, pattern } of this.#bySlot.get(at)!) if (prefix === word && visit(i, pattern)) return;
    }
  }
}
