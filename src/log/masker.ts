/**
 * Hides secret values in text, as GitHub Actions does: every occurrence of a registered value, of
 * each of its lines and of its usual encodings (secret-forms.ts) becomes `***`. Matches that
 * overlap or touch become a single `***`, so when secrets overlap the longest stretch is hidden
 * whole (GitHub's runner merges them the same way).
 *
 * Pure and synchronous. With nothing registered, mask() and maskBuffer() return their input
 * untouched after one check, so a job without secrets pays nothing. Give it whole lines (or
 * whole texts): a value split across two calls is not found. For a byte stream cut anywhere, use
 * MaskingStream (masking-stream.ts).
 */
import { BytePatterns, MANY_PATTERNS, occurrences } from './pattern-search.ts';
import { secretForms } from './secret-forms.ts';

/** What a secret is replaced with. */
export const MASK = '***';
const MASK_BYTES = Buffer.from(MASK);

export class Masker {
  /** Values given to add(), to skip repeats cheaply. */
  readonly #values = new Set<string>();
  /** Every form registered, as text and as UTF-8 bytes (same order). */
  readonly #forms = new Set<string>();
  readonly #texts: string[] = [];
  readonly #bytes = new BytePatterns();

  /** Registers a secret value (blank values are ignored). */
  add(value: string): void {
    if (this.#values.has(value)) return;
    this.#values.add(value);
    for (const form of secretForms(value)) {
      if (this.#forms.has(form)) continue;
      this.#forms.add(form);
      this.#texts.push(form);
      this.#bytes.add(Buffer.from(form, 'utf8'));
    }
  }

  /** True until a non-blank value is added: masking is then a no-op. */
  get isEmpty(): boolean {
    return this.#texts.length === 0;
  }

  /** The patterns searched for, as UTF-8 bytes (for MaskingStream). */
  get patterns(): readonly Buffer[] {
    return this.#bytes.list;
  }

  /** Merged [start, end) byte ranges to hide in data, flat (for MaskingStream). */
  rangesIn(data: Buffer): number[] {
    return this.#bytes.find(data);
  }

  /** Where data's tail could begin a secret continued by the next bytes; data.length if nowhere (for MaskingStream). */
  tailStart(data: Buffer): number {
    return this.#bytes.tailStart(data);
  }

  /** The text with every registered form replaced by `***`. For log lines, excerpts, annotations, titles. */
  mask(text: string): string {
    if (this.#texts.length === 0 || text.length === 0) return text;
    // Many patterns: the byte search's single filtered pass is faster than one indexOf each.
    if (this.#texts.length > MANY_PATTERNS) return this.maskBuffer(Buffer.from(text, 'utf8')).toString('utf8');
    const ranges = occurrences(text, this.#texts);
    if (ranges.length === 0) return text;
    let out = '';
    let from = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      out += text.slice(from, ranges[i]) + MASK;
      from = ranges[i + 1]!;
    }
    return out + text.slice(from);
  }

  /** The bytes with every registered form (as UTF-8) replaced by `***`; the same Buffer when nothing matched. */
  maskBuffer(data: Buffer): Buffer {
    if (this.#texts.length === 0 || data.length === 0) return data;
    return replaceRanges(data, this.#bytes.find(data));
  }
}

/** data with each [start, end) range (flat, sorted, disjoint) replaced by `***`. */
export function replaceRanges(data: Buffer, ranges: readonly number[], upTo = data.length): Buffer {
  if (ranges.length === 0) return upTo === data.length ? data : data.subarray(0, upTo);
  let hidden = 0;
  for (let i = 0; i < ranges.length; i += 2) hidden += ranges[i + 1]! - ranges[i]!;
  const out = Buffer.allocUnsafe(upTo - hidden + (ranges.length / 2) * MASK_BYTES.length);
  let from = 0;
  let to = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    to += data.copy(out, to, from, ranges[i]);
    to += MASK_BYTES.copy(out, to);
    from = ranges[i + 1]!;
  }
  data.copy(out, to, from, upTo);
  return out;
}
