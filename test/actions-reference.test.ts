import { describe, expect, it } from 'vitest';
import { parseActionRef, type ActionRef } from '../src/actions/reference.ts';

function ok(uses: string): ActionRef {
  const result = parseActionRef(uses);
  if (!result.ok) throw new Error(`expected ${uses} to parse, got: ${result.error}`);
  return result.ref;
}

function refused(uses: string): string {
  const result = parseActionRef(uses);
  if (result.ok) throw new Error(`expected ${uses} to be refused, got ${JSON.stringify(result.ref)}`);
  expect(result.error.split('\n')).toHaveLength(1);
  expect(result.error.startsWith('uses: "')).toBe(true);
  return result.error;
}

describe('uses: references', () => {
  it('reads local actions as a normalised path inside the workspace', () => {
    expect(ok('./.github/actions/setup')).toEqual({ kind: 'local', uses: './.github/actions/setup', path: '.github/actions/setup' });
    expect(ok('./')).toEqual({ kind: 'local', uses: './', path: '' });
    expect(ok('./tools//lint/')).toMatchObject({ path: 'tools/lint' });
    expect(ok('./a/../b')).toMatchObject({ path: 'b' });
  });

  it('reads owner/repo[/path]@ref and tells actions/checkout apart', () => {
    expect(ok('actions/setup-node@v4')).toEqual({ kind: 'remote', uses: 'actions/setup-node@v4', owner: 'actions', repo: 'setup-node', path: '', ref: 'v4', isCheckout: false });
    expect(ok('github/codeql-action/init@v3')).toMatchObject({ owner: 'github', repo: 'codeql-action', path: 'init', ref: 'v3' });
    expect(ok('dtolnay/rust-toolchain@stable')).toMatchObject({ ref: 'stable' });
    expect(ok('acme/actions@releases/v1.2')).toMatchObject({ ref: 'releases/v1.2' });
    expect(ok('acme/.github@main')).toMatchObject({ repo: '.github' });
    expect(ok(`acme/tool@${'a1'.repeat(20)}`)).toMatchObject({ ref: 'a1'.repeat(20) });
    expect(ok('actions/checkout@v4')).toMatchObject({ isCheckout: true });
    expect(ok('Actions/Checkout@v4')).toMatchObject({ isCheckout: true });
    expect(ok('actions/checkout/sub@v4')).toMatchObject({ isCheckout: false });
  });

  it('reads full-URL references (Forgejo) with the host they name', () => {
    expect(ok('https://code.forgejo.org/actions/setup-node@v4')).toEqual({
      kind: 'remote',
      uses: 'https://code.forgejo.org/actions/setup-node@v4',
      server: 'https://code.forgejo.org',
      owner: 'actions',
      repo: 'setup-node',
      path: '',
      ref: 'v4',
      isCheckout: false,
    });
    expect(ok('http://git.example:3000/team/tools/lint@main')).toMatchObject({ server: 'http://git.example:3000', owner: 'team', repo: 'tools', path: 'lint' });
    expect(ok('https://code.forgejo.org/actions/checkout@v4')).toMatchObject({ isCheckout: true });
  });

  it('recognises docker:// as its own kind, for the caller to refuse', () => {
    expect(ok('docker://alpine:3.20')).toEqual({ kind: 'docker', uses: 'docker://alpine:3.20', image: 'alpine:3.20' });
    expect(refused('docker://')).toContain('names no image');
  });

  it('refuses malformed references with one line that says what is wrong', () => {
    expect(refused('actions/setup-node')).toBe('uses: "actions/setup-node": a remote action needs a version: actions/setup-node@<tag, branch or SHA> (local actions start with "./")');
    expect(refused('.github/actions/setup')).toContain('local actions start with "./"');
    expect(refused('setup-node')).toContain('expected ./path, owner/repo@ref');
    expect(refused('acme/tool@')).toContain('empty version');
    expect(refused('acme/tool@v1@v2')).toContain('more than one "@"');
    expect(refused('acme/tool.git@v1')).toContain('leave out the ".git"');
    expect(refused('https://code.forgejo.org/actions/setup-node')).toContain('needs a version');
    expect(refused('https://code.forgejo.org/actions@v4')).toContain('names no repository');
    expect(refused('ftp://example.org/a/b@v1')).toContain('only https://');
    expect(refused('https://user:secret@example.org/a/b@v1')).toContain('carries credentials');
    expect(refused('')).toContain('empty');
  });

  it('refuses hostile references: climbing out, option-like, very long, unicode, control characters', () => {
    expect(refused('./../outside')).toContain('must stay inside the workspace');
    expect(refused('./a/../../outside')).toContain('must stay inside the workspace');
    expect(refused('../outside')).toContain('must start with "./"');
    expect(refused('/etc/passwd')).toContain('must start with "./"');
    expect(refused('./.git/hooks')).toContain('inside .git');
    expect(refused('owner/../x@v1')).toContain('repository ".." is not a valid name');
    expect(refused('../../x@v1')).toContain('must start with "./"');
    expect(refused('owner/repo/../../../etc@v1')).toContain('path "../../../etc"');
    expect(refused('owner/repo/./x@v1')).toContain('path "./x"');
    expect(refused('-x/repo@v1')).toContain('owner "-x"');
    expect(refused('owner/-repo@v1')).toContain('repository "-repo"');
    expect(refused('owner/repo@--upload-pack=touch')).toContain('version "--upload-pack=touch"');
    expect(refused('owner/repo@-x')).toContain('version "-x"');
    expect(refused('owner/repo@a..b')).toContain('not a valid tag, branch or commit SHA');
    expect(refused('owner/repo@v1.lock')).toContain('not a valid tag');
    expect(refused('owner/repo@.hidden')).toContain('not a valid tag');
    expect(refused('owner/repo@x/')).toContain('not a valid tag');
    expect(refused('owner/repo@x;rm -rf /')).toContain('spaces, control or non-ASCII');
    expect(refused('owner/repo@$(id)')).toContain('not a valid tag');
    expect(refused('owner/repo@`id`')).toContain('not a valid tag');
    expect(refused('owner/repo@v1\nx')).toContain('control');
    expect(refused('owner/repo@v1\u0000')).toContain('control');
    expect(refused('ownér/repo@v1')).toContain('non-ASCII');
    expect(refused('owner/repo@v\u200b1')).toContain('non-ASCII');
    expect(refused(`owner/repo@${'v'.repeat(600)}`)).toMatch(/too long \(611 characters, at most 512\)$/);
    expect(refused(`${'o'.repeat(101)}/repo@v1`)).toContain('is not a valid name');
    expect(refused(`owner/${'r'.repeat(101)}@v1`)).toContain('is not a valid name');
    // Long input is shortened in the message itself.
    expect(refused(`owner/repo@${'v'.repeat(600)}`).length).toBeLessThan(200);
  });
});
