/**
 * Typed reads from `yaml` AST nodes that never throw: a wrong type becomes a problem with the
 * node's line:column and the read returns undefined. The parser is written on top of this.
 */
import { Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, type Pair, YAMLMap, YAMLSeq } from 'yaml';
import type { SourcePos, WorkflowProblem } from './model.ts';

export type AnyNode = Node | null | undefined;

export class YamlReader {
  readonly problems: WorkflowProblem[] = [];

  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Follows aliases (`*name`) to the anchored node; a broken alias reads as absent. */
  resolve(node: AnyNode | unknown): AnyNode {
    let current = node as AnyNode;
    for (let hops = 0; hops < 20 && current && isAlias(current); hops++) {
      try {
        current = current.resolve(this.doc) as AnyNode;
      } catch {
        return undefined;
      }
    }
    return current && isAlias(current) ? undefined : current;
  }

  pos(node: AnyNode | unknown): SourcePos {
    const range = (node as Node | undefined)?.range;
    if (!range) return { line: 1, column: 1 };
    const { line, col } = this.lines.linePos(range[0]);
    return { line, column: col };
  }

  problem(node: AnyNode | unknown, message: string): void {
    const { line, column } = this.pos(node);
    this.problems.push({ file: this.file, line, column, message });
  }

  problemAt(pos: SourcePos, message: string): void {
    this.problems.push({ file: this.file, line: pos.line, column: pos.column, message });
  }

  map(node: AnyNode, what: string): YAMLMap | undefined {
    const n = this.resolve(node);
    if (isMap(n)) return n;
    this.problem(n ?? node, `${what} must be a mapping${describe(n)}`);
    return undefined;
  }

  seq(node: AnyNode, what: string): YAMLSeq | undefined {
    const n = this.resolve(node);
    if (isSeq(n)) return n;
    this.problem(n ?? node, `${what} must be a list${describe(n)}`);
    return undefined;
  }

  /** Map entries with string keys, in file order; other keys are reported. */
  entries(map: YAMLMap, what: string): Array<{ key: string; keyNode: Node; value: AnyNode; pair: Pair }> {
    const out: Array<{ key: string; keyNode: Node; value: AnyNode; pair: Pair }> = [];
    for (const pair of map.items) {
      const keyNode = this.resolve(pair.key as AnyNode);
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
        this.problem(keyNode ?? map, `${what} has a key that is not a plain name`);
        continue;
      }
      out.push({ key: String(keyNode.value), keyNode, value: this.resolve(pair.value as AnyNode), pair });
    }
    return out;
  }

  /** A scalar read as a string: strings as is, numbers and booleans in their YAML spelling. */
  string(node: AnyNode, what: string): string | undefined {
    const n = this.resolve(node);
    if (isScalar(n)) {
      const v = n.value;
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') {
        return typeof n.source === 'string' ? n.source : String(v);
      }
      if (v === null) return '';
    }
    this.problem(n ?? node, `${what} must be a string${describe(n)}`);
    return undefined;
  }

  /** A string, or a list of strings (GitHub accepts both for branches, needs, …). */
  stringList(node: AnyNode, what: string): string[] | undefined {
    const n = this.resolve(node);
    if (isSeq(n)) {
      const out: string[] = [];
      for (const item of n.items) {
        const s = this.string(item as AnyNode, `each entry of ${what}`);
        if (s !== undefined) out.push(s);
      }
      return out;
    }
    if (isScalar(n) && n.value !== null && typeof n.value !== 'object') return [String(n.value)];
    this.problem(n ?? node, `${what} must be a string or a list of strings${describe(n)}`);
    return undefined;
  }

  /** A boolean, or an expression string. */
  boolOrExpression(node: AnyNode, what: string): boolean | string | undefined {
    const n = this.resolve(node);
    if (isScalar(n)) {
      if (typeof n.value === 'boolean') return n.value;
      if (typeof n.value === 'string' && n.value.includes('${{')) return n.value;
    }
    this.problem(n ?? node, `${what} must be true, false or a \${{ }} expression${describe(n)}`);
    return undefined;
  }

  /** A number, or an expression string. */
  numberOrExpression(node: AnyNode, what: string): number | string | undefined {
    const n = this.resolve(node);
    if (isScalar(n)) {
      if (typeof n.value === 'number' && Number.isFinite(n.value)) return n.value;
      if (typeof n.value === 'string' && n.value.includes('${{')) return n.value;
    }
    this.problem(n ?? node, `${what} must be a number or a \${{ }} expression${describe(n)}`);
    return undefined;
  }

  /** A mapping of names to strings (env, with, outputs). Non-string scalars are stringified. */
  stringMap(node: AnyNode, what: string): Record<string, string> {
    const out: Record<string, string> = {};
    const n = this.resolve(node);
    if (isScalar(n) && n.value === null) return out; // `env:` with nothing under it
    const map = this.map(n, what);
    if (!map) return out;
    for (const { key, value } of this.entries(map, what)) {
      const s = this.string(value, `${what}.${key}`);
      if (s !== undefined) out[key] = s;
    }
    return out;
  }

  /** Plain JS value of a node (for matrix values); aliases are expanded with a cap. */
  plain(node: AnyNode): unknown {
    const n = this.resolve(node);
    if (!n) return null;
    try {
      return n.toJS(this.doc, { maxAliasCount: 100 });
    } catch (err) {
      this.problem(n, `cannot read this value: ${(err as Error).message}`);
      return null;
    }
  }
}

/** ", not a list" style suffix naming what was found instead. */
function describe(node: AnyNode): string {
  if (!node) return '';
  if (isMap(node)) return ', not a mapping';
  if (isSeq(node)) return ', not a list';
  if (isScalar(node)) {
    if (node.value === null) return ', but it is empty';
    return `, not ${typeof node.value === 'string' ? 'a string' : typeof node.value}`;
  }
  return '';
}

export function isNullScalar(node: AnyNode): boolean {
  return isScalar(node) && node.value === null;
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** ` (did you mean "x"?)` when a known name is close to `name`, else ''. */
export function didYouMean(name: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = name.length <= 3 ? 1 : Math.ceil(name.length / 3);
  return best !== undefined && bestDistance <= limit ? ` (did you mean "${best}"?)` : '';
}
