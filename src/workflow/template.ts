/**
 * Splits a string holding `${{ }}` expressions into literal and expression segments, the way
 * GitHub's runner does: an expression ends at the first `}}` outside a single-quoted string
 * literal (`''` escapes a quote inside one). There is no escape for `${{` itself.
 */

export type TemplateSegment = { kind: 'text'; text: string } | { kind: 'expr'; expr: string; offset: number };

export class TemplateError extends Error {}

export function splitTemplate(template: string): TemplateSegment[] {
  const segments: TemplateSegment[] = [];
  let index = 0;
  while (index < template.length) {
    const start = template.indexOf('${{', index);
    if (start < 0) {
      segments.push({ kind: 'text', text: template.slice(index) });
      break;
    }
    if (start > index) segments.push({ kind: 'text', text: template.slice(index, start) });
    const end = findExpressionEnd(template, start + 3);
    if (end < 0) {
      throw new TemplateError(`unclosed expression: "${template.slice(start, start + 60)}" has no matching "}}"`);
    }
    segments.push({ kind: 'expr', expr: template.slice(start + 3, end).trim(), offset: start });
    index = end + 2;
  }
  return segments;
}

/** Index of the `}}` closing an expression whose body starts at `from`, or -1. */
function findExpressionEnd(template: string, from: number): number {
  let inString = false;
  for (let i = from; i < template.length; i++) {
    const ch = template[i];
    if (inString) {
      if (ch === "'") {
        if (template[i + 1] === "'") i++;
        else inString = false;
      }
    } else if (ch === "'") {
      inString = true;
    } else if (ch === '}' && template[i + 1] === '}') {
      return i;
    }
  }
  return -1;
}

export function hasExpression(text: string): boolean {
  return text.includes('${{');
}

/** When the whole (trimmed) string is a single `${{ }}`, the expression inside it. */
export function soleExpression(template: string): string | undefined {
  let segments: TemplateSegment[];
  try {
    segments = splitTemplate(template.trim());
  } catch {
    return undefined;
  }
  const only = segments[0];
  return segments.length === 1 && only?.kind === 'expr' ? only.expr : undefined;
}
