/**
 * Masks a byte stream cut at arbitrary places (SSH chunks), for one output channel of a step.
 *
 * write() returns what can be shown now, masked. It holds back only the bytes that could be the
 * start of a secret completed by the next chunk (a tail that is a prefix of some pattern), or a
 * match at the very end that a longer or adjacent one may extend, so a step that stops mid-line
 * is still seen live unless its last bytes look like a secret's beginning. end() releases the
 * rest. The output is what Masker.maskBuffer() would give for the whole stream at once.
 *
 * With no secrets registered and nothing held, write() returns its chunk as is.
 *
 * The one exception: a run of back-to-back matches longer than MAX_HELD_BYTES (a 1-character
 * secret in a long run of that character) is released at the end of its last complete match;
 * a longer secret continuing past that point is then not recognised.
 */
import { Masker, replaceRanges } from './masker.ts';

const MAX_HELD_BYTES = 64 * 1024;

export class MaskingStream {
  readonly #masker: Masker;
  #held: Buffer = Buffer.alloc(0);

  constructor(masker: Masker) {
    this.#masker = masker;
  }

  /** Bytes held back, waiting for the next chunk or end(). */
  get heldBytes(): number {
    return this.#held.length;
  }

  /** The chunk's bytes that are safe to show, masked. May be empty; never holds a whole secret back unmasked. */
  write(chunk: Buffer): Buffer {
    if (this.#masker.isEmpty && this.#held.length === 0) return chunk;
    const data = this.#held.length === 0 ? chunk : Buffer.concat([this.#held, chunk]);
    const ranges = this.#masker.rangesIn(data);
    let cut = this.#masker.tailStart(data);
    // Never cut through a match, nor right after one (the next chunk may continue or touch it).
    const around = rangeEndingAtOrCovering(ranges, cut);
    if (around >= 0) {
      const [start, end] = [ranges[around]!, ranges[around + 1]!];
      cut = data.length - start <= MAX_HELD_BYTES ? start : end;
    }
    this.#held = Buffer.from(data.subarray(cut));
    return replaceRanges(data, ranges.slice(0, firstRangeFrom(ranges, cut)), cut);
  }

  /** Everything still held, masked. The stream can be written again afterwards. */
  end(): Buffer {
    const rest = this.#held;
    this.#held = Buffer.alloc(0);
    return this.#masker.maskBuffer(rest);
  }
}

/** Index (in the flat list) of the range with start < at <= end, or -1. */
function rangeEndingAtOrCovering(ranges: readonly number[], at: number): number {
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i]! < at && at <= ranges[i + 1]!) return i;
    if (ranges[i]! >= at) break;
  }
  return -1;
}

/** Index (in the flat list) of the first range starting at or after `at`. */
function firstRangeFrom(ranges: readonly number[], at: number): number {
  let i = 0;
  while (i < ranges.length && ranges[i]! < at) i += 2;
  return i;
}
