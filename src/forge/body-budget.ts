/**
 * A byte budget shared by every webhook request whose body is being read. The body has to be
 * read whole before its signature can be checked, so without a bound, a few dozen unsigned
 * 24 MB requests at once hold a gigabyte. A request reserves its declared Content-Length before
 * reading anything (a chunked one grows its reservation as bytes arrive); what does not fit is
 * refused with 503 and Retry-After, and the bytes go back when the request is done.
 */

export class ByteBudget {
  #used = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`a byte budget must be a whole number ≥ 1, got ${limit}`);
  }

  /** Bytes reserved right now, over all requests. */
  get used(): number {
    return this.#used;
  }

  /** Reserves `bytes` (0 for a body of unknown length), or returns null when they do not fit. */
  reserve(bytes: number): Reservation | null {
    if (bytes < 0 || this.#used + bytes > this.limit) return null;
    this.#used += bytes;
    return new Reservation(this, bytes);
  }

  /** @internal Reservation's side. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  /** @internal Reservation's side. */
  give(bytes: number): void {
    this.#used -= bytes;
  }
}

export class Reservation {
  #held: number;
  #released = false;

  constructor(private readonly budget: ByteBudget, bytes: number) {
    this.#held = bytes;
  }

  get held(): number {
    return this.#held;
  }

  /** Makes room for a body that turned out longer than reserved: false when the budget is spent. */
  growTo(total: number): boolean {
    if (this.#released || total <= this.#held) return !this.#released;
    if (!this.budget.take(total - this.#held)) return false;
    this.#held = total;
    return true;
  }

  /** Gives the bytes back (once; later calls do nothing). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.budget.give(this.#held);
    this.#held = 0;
  }
}
