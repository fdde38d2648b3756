import { describe, expect, it } from 'vitest';
import {
  checkExpressionSyntax,
  contextsUsedBy,
  evaluateCondition,
  evaluateExpression,
  evaluateValue,
  interpolate,
  type StatusFunctions,
} from '../src/workflow/expressions.ts';
import { splitTemplate } from '../src/workflow/template.ts';

const contexts = {
  github: { event_name: 'push', ref: 'refs/heads/main', event: { commits: [{ id: 'a1' }, { id: 'b2' }] } },
  matrix: { os: 'debian', node: 20, flag: true },
  env: { GREETING: 'hello' },
  needs: { build: { result: 'success', outputs: { version: '1.2.3' } } },
};
const passing: StatusFunctions = { success: () => true, failure: () => false, cancelled: () => false };
const failing: StatusFunctions = { success: () => false, failure: () => true, cancelled: () => false };

describe('evaluateExpression', () => {
  it('compares strings case-insensitively, like GitHub', () => {
    expect(evaluateExpression("github.event_name == 'PUSH'", contexts)).toBe(true);
  });
  it('converts results back to plain JS values', () => {
    expect(evaluateExpression(`fromJSON('{"a":[1,"x",null,true]}')`, contexts)).toEqual({ a: [1, 'x', null, true] });
    expect(evaluateExpression('matrix.node', contexts)).toBe(20);
    expect(evaluateExpression('github.event.commits.*.id', contexts)).toEqual(['a1', 'b2']);
  });
  it('offers the built-in functions of the package', () => {
    expect(evaluateExpression("format('{0}-{1}', matrix.os, matrix.node)", contexts)).toBe('debian-20');
    expect(evaluateExpression("join(github.event.commits.*.id, '+')", contexts)).toBe('a1+b2');
    expect(evaluateExpression("contains(github.event.commits.*.id, 'B2')", contexts)).toBe(true);
    expect(evaluateExpression("startsWith(github.ref, 'refs/heads/')", contexts)).toBe(true);
    expect(evaluateExpression("endsWith(github.ref, 'main')", contexts)).toBe(true);
    expect(evaluateExpression('toJSON(matrix.os)', contexts)).toBe('"debian"');
  });
  it('reads missing properties and unsupplied contexts as null', () => {
    expect(evaluateExpression('github.nothing.deeper', contexts)).toBeNull();
    expect(evaluateExpression('steps', contexts)).toBeNull();
    expect(evaluateExpression("needs.build.outputs.version", contexts)).toBe('1.2.3');
  });
  it('throws a clear error naming the expression', () => {
    expect(() => evaluateExpression('github.ref ==', contexts)).toThrow(/github\.ref ==/);
    expect(() => evaluateExpression('nosuchcontext.x', contexts)).toThrow(/Unrecognized named-value: 'nosuchcontext'/);
    expect(() => evaluateExpression("fromJSON('not json')", contexts)).toThrow(/fromJSON\('not json'\).*JSON/);
    expect(() => evaluateExpression('', contexts)).toThrow(/empty/);
  });
  it('refuses status functions when the caller supplied none', () => {
    expect(() => evaluateExpression('success()', contexts)).toThrow(/success\(\) is not available/);
    expect(evaluateExpression('failure()', contexts, failing)).toBe(true);
  });
  it('calls the caller-supplied hashFiles with every pattern', () => {
    const seen: string[][] = [];
    const status = { ...passing, hashFiles: (p: string[]) => (seen.push(p), 'abc') };
    expect(evaluateExpression("hashFiles('**/package-lock.json', 'x')", contexts, status)).toBe('abc');
    expect(seen).toEqual([['**/package-lock.json', 'x']]);
    expect(() => evaluateExpression("hashFiles('x')", contexts, passing)).toThrow(/hashFiles\(\) is not available/);
  });
});

describe('interpolate', () => {
  it('replaces every expression with GitHub string coercion', () => {
    expect(interpolate('${{ env.GREETING }}, ${{ matrix.os }} ${{ matrix.node }} ${{ matrix.flag }}', contexts)).toBe(
      'hello, debian 20 true',
    );
    expect(interpolate('[${{ matrix.missing }}]', contexts)).toBe('[]');
    expect(interpolate('${{ github.event }} ${{ github.event.commits }}', contexts)).toBe('Object Array');
    expect(interpolate('${{ 1.50 }}', contexts)).toBe('1.5');
  });
  it('leaves text without expressions alone', () => {
    expect(interpolate('plain {text} $ {{ x }}', contexts)).toBe('plain {text} $ {{ x }}');
  });
  it("does not end an expression at a '}}' inside a string literal", () => {
    expect(interpolate("a${{ '}}' }}b", contexts)).toBe('a}}b');
    expect(splitTemplate("x ${{ 'it''s }}' }}")).toEqual([
      { kind: 'text', text: 'x ' },
      { kind: 'expr', expr: "'it''s }}'", offset: 2 },
    ]);
  });
  it('reports an unclosed expression', () => {
    expect(() => interpolate('echo ${{ matrix.os', contexts)).toThrow(/unclosed expression/);
  });
});

describe('evaluateValue', () => {
  it('keeps the type of a sole expression and interpolates mixed text', () => {
    expect(evaluateValue('${{ matrix.node }}', contexts)).toBe(20);
    expect(evaluateValue(' ${{ fromJSON(\'[1,2]\') }} ', contexts)).toEqual([1, 2]);
    expect(evaluateValue('v${{ matrix.node }}', contexts)).toBe('v20');
  });
});

describe('evaluateCondition', () => {
  it('accepts conditions with and without ${{ }}', () => {
    expect(evaluateCondition("github.ref == 'refs/heads/main'", contexts, passing)).toBe(true);
    expect(evaluateCondition("${{ github.ref == 'refs/heads/dev' }}", contexts, passing)).toBe(false);
  });
  it('implies success() when no status function is used', () => {
    expect(evaluateCondition('true', contexts, failing)).toBe(false);
    expect(evaluateCondition("matrix.os == 'debian'", contexts, failing)).toBe(false);
    expect(evaluateCondition('failure()', contexts, failing)).toBe(true);
    expect(evaluateCondition('always()', contexts, failing)).toBe(true);
    expect(evaluateCondition("${{ !cancelled() && matrix.os == 'debian' }}", contexts, failing)).toBe(true);
  });
  it('treats text around an expression as a non-empty string (true), as GitHub does', () => {
    expect(evaluateCondition('${{ false }} && false', contexts, passing)).toBe(true);
  });
  it('uses GitHub truthiness', () => {
    expect(evaluateCondition("''", contexts, passing)).toBe(false);
    expect(evaluateCondition('0', contexts, passing)).toBe(false);
    expect(evaluateCondition('github.event', contexts, passing)).toBe(true);
    expect(evaluateCondition('', contexts, passing)).toBe(true);
  });
});

describe('checkExpressionSyntax', () => {
  it('accepts good templates', () => {
    expect(checkExpressionSyntax('ci ${{ github.ref }} on ${{ inputs.x }}', ['github', 'inputs'])).toBeUndefined();
    expect(checkExpressionSyntax('no expressions', [])).toBeUndefined();
  });
  it('reports contexts not available at that place', () => {
    expect(checkExpressionSyntax('${{ matrix.os }}', ['github', 'vars'])).toMatch(
      /Unrecognized named-value: 'matrix' \(contexts available here: github, vars\)/,
    );
  });
  it('reports syntax errors and functions not allowed there', () => {
    expect(checkExpressionSyntax('${{ github.ref == }}', ['github'])).toMatch(/Unexpected end of expression/);
    expect(checkExpressionSyntax("${{ hashFiles('x') }}", ['github'], ['success'])).toMatch(/hashfiles\(\) cannot be used here/);
    expect(checkExpressionSyntax('${{ nope() }}', ['github'])).toMatch(/Unrecognized function: 'nope'/);
    expect(checkExpressionSyntax('${{ github.ref ', ['github'])).toMatch(/unclosed/);
  });
});

describe('contextsUsedBy', () => {
  it('lists the contexts an expression reads', () => {
    expect(contextsUsedBy("needs.a.result == 'success' || github.ref").sort()).toEqual(['github', 'needs']);
    expect(contextsUsedBy("format('{0}', matrix.os)")).toEqual(['matrix']);
  });
});
