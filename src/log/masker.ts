/**
 * Replaces registered secret values with `***` (placeholder; the secrets slice provides the
 * full implementation with GitHub's encodings).
 */
export class Masker {
  #values: string[] = [];

  get active(): boolean {
    return this.#values.length > 0;
  }

  add(value: string): void {
    for (const part of [value, ...value.split(/\r?\n/)]) {
      const v = part.trim() === '' ? '' : part;
      if (v !== '' && !this.#values.includes(v)) this.#values.push(v);
    }
    this.#values.sort((a, b) => b.length - a.length);
  }

  mask(text: string): string {
    let out = text;
    for (const v of this.#values) if (out.includes(v)) out = out.split(v).join('***');
    return out;
  }
}
