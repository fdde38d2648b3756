import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { annotationsFromLog, batchAnnotations, commandAnnotations, parseAnnotations } from '../src/report/annotations.ts';

const WS = '/home/runner/work/app';

describe('annotations from tool output', () => {
  it('parses gcc / clang diagnostics', () => {
    const out = parseAnnotations(
      [
        `${WS}/src/main.c: In function 'main':`,
        `${WS}/src/main.c:12:5: error: 'count' undeclared (first use in this function)`,
        `src/util.h:3:1: warning: unused function 'helper' [-Wunused-function]`,
        `src/util.h:1:1: note: declared here`,
      ].join('\n'),
      WS,
    );
    expect(out).toEqual([
      { path: 'src/main.c', start_line: 12, end_line: 12, start_column: 5, end_column: 5, annotation_level: 'failure', message: "'count' undeclared (first use in this function)", title: 'compiler' },
      expect.objectContaining({ path: 'src/util.h', start_line: 3, annotation_level: 'warning' }),
      expect.objectContaining({ path: 'src/util.h', start_line: 1, annotation_level: 'notice' }),
    ]);
  });

  it('parses tsc in both plain and pretty formats', () => {
    const out = parseAnnotations(
      [
        "src/app.ts(7,11): error TS2322: Type 'string' is not assignable to type 'number'.",
        "src/index.ts:3:1 - error TS2304: Cannot find name 'foo'.",
      ].join('\n'),
      WS,
    );
    expect(out).toEqual([
      expect.objectContaining({ path: 'src/app.ts', start_line: 7, start_column: 11, annotation_level: 'failure', title: 'tsc TS2322' }),
      expect.objectContaining({ path: 'src/index.ts', start_line: 3, message: "Cannot find name 'foo'.", title: 'tsc TS2304' }),
    ]);
  });

  it('parses eslint unix output and drops paths outside the workspace', () => {
    const out = parseAnnotations(
      [
        `${WS}/lib/a.js:4:7: 'unused' is assigned a value but never used. [Error/no-unused-vars]`,
        `${WS}/lib/a.js:9:1: Unexpected console statement. [Warning/no-console]`,
        `/usr/lib/node_modules/x.js:1:1: Parsing error [Error]`,
        '',
        '2 problems',
      ].join('\n'),
      WS,
    );
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ path: 'lib/a.js', start_line: 4, annotation_level: 'failure', title: 'eslint no-unused-vars' });
    expect(out[1]).toMatchObject({ path: 'lib/a.js', start_line: 9, annotation_level: 'warning' });
  });

  it('parses go vet and go test failures', () => {
    const out = parseAnnotations(
      [
        '# example.com/calc',
        'vet: ./calc.go:14:2: fmt.Printf format %d has arg name of wrong type string',
        '--- FAIL: TestAdd (0.00s)',
        '    calc_test.go:15: Add(1, 2) = 4, want 3',
        'FAIL',
      ].join('\n'),
      WS,
    );
    expect(out).toEqual([
      expect.objectContaining({ path: 'calc.go', start_line: 14, start_column: 2, title: 'go' }),
      expect.objectContaining({ path: 'calc_test.go', start_line: 15, message: 'Add(1, 2) = 4, want 3', title: 'go test' }),
    ]);
  });

  it('parses rustc errors and warnings with their location line', () => {
    const out = parseAnnotations(
      [
        '   Compiling demo v0.1.0 (/home/runner/work/app)',
        'warning: unused variable: `y`',
        ' --> src/main.rs:3:9',
        '  |',
        'error[E0425]: cannot find value `x` in this scope',
        ' --> src/main.rs:2:13',
        '  |',
        'error: could not compile `demo` (bin "demo") due to 1 previous error',
      ].join('\n'),
      WS,
    );
    expect(out).toEqual([
      expect.objectContaining({ path: 'src/main.rs', start_line: 3, annotation_level: 'warning', message: 'unused variable: `y`' }),
      expect.objectContaining({ path: 'src/main.rs', start_line: 2, start_column: 13, annotation_level: 'failure', title: 'rustc E0425' }),
    ]);
  });

  it('parses pytest assertion failures with their E lines', () => {
    const out = parseAnnotations(
      [
        '___________________________ test_add ___________________________',
        '',
        '    def test_add():',
        '>       assert add(1, 2) == 4',
        'E       assert 3 == 4',
        'E        +  where 3 = add(1, 2)',
        '',
        'tests/test_math.py:5: AssertionError',
        '=========================== short test summary info ===========================',
        'FAILED tests/test_math.py::test_add - assert 3 == 4',
      ].join('\n'),
      WS,
    );
    expect(out).toEqual([
      { path: 'tests/test_math.py', start_line: 5, end_line: 5, annotation_level: 'failure', message: 'assert 3 == 4\n+  where 3 = add(1, 2)', title: 'pytest: AssertionError' },
    ]);
  });

  it('reads only the given byte ranges of a log and batches by 50', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forgevm-annotations-'));
    const ignored = 'src/skip.c:1:1: error: outside the range\n';
    const lines = Array.from({ length: 120 }, (_, i) => `src/a.c:${i + 1}:1: warning: w${i}`).join('\n') + '\n';
    writeFileSync(join(dir, 'job.log'), ignored + lines);
    const start = Buffer.byteLength(ignored);
    const found = await annotationsFromLog(join(dir, 'job.log'), [{ start, end: start + Buffer.byteLength(lines) }], WS);
    expect(found).toHaveLength(120);
    expect(found.some((a) => a.path === 'src/skip.c')).toBe(false);
    expect(batchAnnotations(found).map((b) => b.length)).toEqual([50, 50, 20]);
  });
});

describe('annotations from workflow commands', () => {
  it('places ::error/::warning on the file and lines they name, relative to the workspace, and the rest on the workflow file', () => {
    const out = commandAnnotations(
      [
        { level: 'failure', message: 'broken', file: '/root/work/app/src/a.ts', line: 3, column: 5, endColumn: 9, title: 'tsc' },
        { level: 'warning', message: 'spans', file: 'lib/b.c', line: 2, endLine: 4, column: 1 },
        { level: 'notice', message: 'no file' },
        { level: 'failure', message: 'outside', file: '/etc/passwd', line: 1 },
      ],
      '*/work/app',
      '.forgevm/workflows/ci.yml',
    );
    expect(out).toEqual([
      { path: 'src/a.ts', start_line: 3, end_line: 3, start_column: 5, end_column: 9, annotation_level: 'failure', message: 'broken', title: 'tsc' },
      { path: 'lib/b.c', start_line: 2, end_line: 4, annotation_level: 'warning', message: 'spans' },
      { path: '.forgevm/workflows/ci.yml', start_line: 1, end_line: 1, annotation_level: 'notice', message: 'no file' },
      { path: '.forgevm/workflows/ci.yml', start_line: 1, end_line: 1, annotation_level: 'failure', message: 'outside' },
    ]);
  });
});
