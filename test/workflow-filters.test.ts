import { describe, expect, it } from 'vitest';
import { compileFilterPattern, filterPatternError, matchesFilter } from '../src/workflow/filters.ts';

const matches = (pattern: string, name: string) => matchesFilter([pattern], name);

// Every row of "Filter pattern cheat sheet" in GitHub's "Workflow syntax for GitHub Actions".
describe("GitHub's cheat sheet: branches and tags", () => {
  const rows: Array<[string, string[], string[]]> = [
    ['feature/*', ['feature/my-branch', 'feature/your-branch'], ['feature/beta-a/my-branch', 'feature', 'main']],
    ['feature/**', ['feature/beta-a/my-branch', 'feature/your-branch', 'feature/mona/the/octocat'], ['features/x', 'main']],
    ['main', ['main'], ['main2', 'xmain', 'feature/main']],
    ['releases/mona-the-octocat', ['releases/mona-the-octocat'], ['releases/mona-the-octocatX']],
    ['*', ['main', 'releases'], ['all/the/branches']],
    ['**', ['all/the/branches', 'every/tag', 'main'], []],
    ['*feature', ['mona-feature', 'feature', 'ver-10-feature'], ['feature/x', 'a/mona-feature', 'features']],
    ['v2*', ['v2', 'v2.0', 'v2.9'], ['v1', 'v2/x', 'xv2']],
    ['v[12].[0-9]+.[0-9]+', ['v1.10.1', 'v2.0.0'], ['v3.0.0', 'v1.x.1', 'v1.0', 'v2.0.0-rc1']],
  ];
  for (const [pattern, yes, no] of rows) {
    it(`${pattern} matches ${yes.join(', ')}${no.length ? ` but not ${no.join(', ')}` : ''}`, () => {
      for (const name of yes) expect(matches(pattern, name), name).toBe(true);
      for (const name of no) expect(matches(pattern, name), name).toBe(false);
    });
  }
});

describe("GitHub's cheat sheet: file paths", () => {
  const rows: Array<[string, string[], string[]]> = [
    ['*', ['README.md', 'server.rb'], ['docs/README.md']],
    ['*.jsx?', ['page.js', 'page.jsx'], ['page.jsxx', 'src/page.js']],
    ['**', ['all/the/files.md', 'a'], []],
    ['*.js', ['app.js', 'index.js'], ['js/index.js', 'app.jsx']],
    ['**.js', ['index.js', 'js/index.js', 'src/js/app.js'], ['index.ts']],
    ['docs/*', ['docs/README.md', 'docs/file.txt'], ['docs/mona/octocat.txt', 'x/docs/a.md']],
    ['docs/**', ['docs/README.md', 'docs/mona/octocat.txt'], ['README.md', 'src/docs/a.md']],
    ['docs/**/*.md', ['docs/README.md', 'docs/mona/hello-world.md', 'docs/a/markdown/file.md'], ['docs/a.txt', 'README.md']],
    ['**/docs/**', ['docs/hello.md', 'dir/docs/my-file.txt', 'space/docs/plan/space.doc'], ['mydocs/a.md', 'docs']],
    ['**/README.md', ['README.md', 'js/README.md'], ['README.mdx', 'js/NOTREADME.md']],
    ['**/*src/**', ['a/src/app.js', 'my-src/code/js/app.js'], ['src', 'a/source/x.js']],
    ['**/*-post.md', ['my-post.md', 'path/their-post.md'], ['post.md', 'path/my-post.mdx']],
    ['**/migrate-*.sql', ['migrate-10909.sql', 'db/migrate-v1.0.sql', 'db/sept/migrate-v1.sql'], ['db/migrate.sql', 'migrate-1.sqlite']],
  ];
  for (const [pattern, yes, no] of rows) {
    it(`${pattern} matches ${yes.join(', ')}`, () => {
      for (const name of yes) expect(matches(pattern, name), name).toBe(true);
      for (const name of no) expect(matches(pattern, name), name).toBe(false);
    });
  }

  it("'*.md', '!README.md' excludes README.md", () => {
    const list = ['*.md', '!README.md'];
    expect(matchesFilter(list, 'hello.md')).toBe(true);
    expect(matchesFilter(list, 'README.md')).toBe(false);
    expect(matchesFilter(list, 'docs/hello.md')).toBe(false);
  });
  it("'*.md', '!README.md', 'README*' re-includes README files (patterns are checked in order)", () => {
    const list = ['*.md', '!README.md', 'README*'];
    expect(matchesFilter(list, 'hello.md')).toBe(true);
    expect(matchesFilter(list, 'README.md')).toBe(true);
    expect(matchesFilter(list, 'README.doc')).toBe(true);
  });
});

describe('pattern details', () => {
  it('treats regex metacharacters other than ?, + and [] literally', () => {
    expect(matches('release.(1)', 'release.(1)')).toBe(true);
    expect(matches('release.1', 'releaseX1')).toBe(false);
    expect(matches('a$b^c|d', 'a$b^c|d')).toBe(true);
  });
  it('escapes special characters with a backslash', () => {
    expect(matches('feature\\+x', 'feature+x')).toBe(true);
    expect(matches('feature\\+x', 'featureex')).toBe(false);
    expect(matches('a\\*', 'a*')).toBe(true);
    expect(matches('a\\*', 'ab')).toBe(false);
  });
  it('applies + and ? to a character set', () => {
    expect(matches('v[0-9]+', 'v123')).toBe(true);
    expect(matches('v[0-9]?', 'v')).toBe(true);
    expect(matches('v[0-9]?', 'v12')).toBe(false);
  });
  it('only lets **/ match zero directories at the start of a segment', () => {
    expect(matches('a/**/b', 'a/b')).toBe(true);
    expect(matches('x**/b', 'xb')).toBe(false);
    expect(matches('x**/b', 'xy/z/b')).toBe(true);
  });
  it('is case-sensitive and anchored at both ends', () => {
    expect(matches('main', 'Main')).toBe(false);
    expect(matches('docs/*', 'x/docs/a')).toBe(false);
  });
  it('an empty list or a list of negations matches nothing', () => {
    expect(matchesFilter([], 'main')).toBe(false);
    expect(matchesFilter(['!main'], 'dev')).toBe(false);
  });
  it('reports invalid patterns', () => {
    expect(filterPatternError('v[0-9')).toMatch(/never closed/);
    expect(filterPatternError('+x')).toMatch(/no character before it/);
    expect(filterPatternError('[z-a]')).toMatch(/range "z-a"/);
    expect(filterPatternError('!docs/**')).toBeUndefined();
    expect(() => compileFilterPattern('trailing\\')).toThrow(/lone/);
    expect(matchesFilter(['v[0-9', 'main'], 'main')).toBe(true);
  });
});
