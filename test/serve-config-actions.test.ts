import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'forgevm-config-actions-'));

describe('the actions host setting', () => {
  it('defaults to github.com and 30 unused days, and takes the file or FORGEVM_ACTIONS_URL', () => {
    expect(loadConfig({ env: {}, cwd: dir }).actions).toEqual({ url: 'https://github.com', unusedDays: 30 });
    const file = join(dir, 'forgevm.yml');
    writeFileSync(file, 'actions:\n  url: https://code.forgejo.org/\n  unusedDays: 0\n');
    expect(loadConfig({ file, env: {}, cwd: dir }).actions).toEqual({ url: 'https://code.forgejo.org', unusedDays: 0 });
    expect(loadConfig({ file, env: { FORGEVM_ACTIONS_URL: 'https://forgejo.example' }, cwd: dir }).actions.url).toBe('https://forgejo.example');
  });

  it('refuses a value that is not an http(s) URL, with the fix', () => {
    const error = (() => {
      try {
        loadConfig({ env: { FORGEVM_ACTIONS_URL: 'github.com' }, cwd: dir });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error.lines).toEqual([
      'config: FORGEVM_ACTIONS_URL: must be an http(s) URL (set actions.url (or FORGEVM_ACTIONS_URL) to the web root actions come from, e.g. https://github.com or https://code.forgejo.org)',
    ]);
  });
});
