import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.ts';

const pem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const dir = mkdtempSync(join(tmpdir(), 'forgevm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const app = { APP_ID: '1234', PRIVATE_KEY: pem, WEBHOOK_SECRET: 'shh' };

/** The config problem lines for an environment (and optional file). */
function problems(env: Record<string, string>, file?: string): string[] {
  try {
    loadConfig({ env, file, cwd: dir });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).lines;
  }
  throw new Error('expected a ConfigError');
}

function yamlFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('forgevm serve configuration', () => {
  it('reads the GitHub App from Probot-style environment variables, with defaults', () => {
    const config = loadConfig({ env: { ...app, HOME: '/home/u' }, cwd: dir });
    expect(config.github).toEqual({ appId: 1234, privateKey: pem, webhookSecret: 'shh', webhookPath: '/webhooks/github', apiUrl: 'https://api.github.com' });
    expect(config).toMatchObject({
      file: null,
      port: 3000,
      logLevel: 'info',
      forgejo: null,
      concurrency: { maxJobs: 2, perLabel: {} },
      workflowDirs: ['.forgevm/workflows'],
      defaultTimeoutMinutes: 360,
      logRetentionDays: 30,
      store: { synchronous: 'FULL' },
    });
    expect(loadConfig({ env: { FORGEVM_STORE_SYNC: 'normal' }, cwd: dir }).store).toEqual({ synchronous: 'NORMAL' });
    expect(loadConfig({ env: { FORGEVM_LOG_RETENTION_DAYS: '0' }, cwd: dir }).logRetentionDays).toBe(0);
    expect(problems({ FORGEVM_LOG_RETENTION_DAYS: '-3' })).toEqual([
      'config: FORGEVM_LOG_RETENTION_DAYS: must be 0 (keep forever) or more (set logRetentionDays (or FORGEVM_LOG_RETENTION_DAYS) to whole days, e.g. 30, or 0 to keep logs forever)',
    ]);
    expect(config.stateDir).toMatch(/forgevm$/);
    expect(Object.keys(config.images)).toContain('tiny');
  });

  it('reads the delivery settings: concurrency, retry backoff, redelivery, retention and the intake byte bound', () => {
    const config = loadConfig({ env: {}, cwd: dir });
    expect(config).toMatchObject({
      concurrency: { deliveries: 4 },
      deliveryRetry: { baseSeconds: 10, maxSeconds: 300, giveUpHours: 24 },
      redelivery: { everyMinutes: 10, maxPerDelivery: 3 },
      deliveryRetentionDays: 30,
      webhookBytesInFlight: 64 * 1024 * 1024,
    });
    const file = yamlFile('retry.yml', 'deliveryRetry:\n  baseSeconds: 0.5\n  maxSeconds: 2\n  giveUpHours: 1\n');
    expect(loadConfig({ file, env: { FORGEVM_DELIVERY_CONCURRENCY: '8', FORGEVM_DELIVERY_RETENTION_DAYS: '0' }, cwd: dir })).toMatchObject({
      concurrency: { deliveries: 8 },
      deliveryRetry: { baseSeconds: 0.5, maxSeconds: 2, giveUpHours: 1 },
      deliveryRetentionDays: 0,
    });
    expect(loadConfig({ file: yamlFile('redelivery.yml', 'redelivery:\n  everyMinutes: 0\n'), env: {}, cwd: dir }).redelivery).toEqual({ everyMinutes: 0, maxPerDelivery: 3 });
    expect(() => loadConfig({ file: yamlFile('bad-redelivery.yml', 'redelivery:\n  maxPerDelivery: 0\n'), env: {}, cwd: dir })).toThrow(
      'redelivery.maxPerDelivery: must be a whole number ≥ 1 (give redelivery.everyMinutes (0 turns it off) and redelivery.maxPerDelivery as numbers, e.g. 10 and 3)',
    );
    expect(problems({ FORGEVM_WEBHOOK_BYTES_IN_FLIGHT: '1000' })).toEqual([
      'config: FORGEVM_WEBHOOK_BYTES_IN_FLIGHT: must be at least 26214400 (one 25 MiB delivery) (set webhookBytesInFlight (or FORGEVM_WEBHOOK_BYTES_IN_FLIGHT) to bytes, e.g. 67108864 for 64 MiB)',
    ]);
    expect(problems({ FORGEVM_DELIVERY_CONCURRENCY: '0' })).toEqual([
      'config: FORGEVM_DELIVERY_CONCURRENCY: must be a whole number ≥ 1 (set concurrency.deliveries (or FORGEVM_DELIVERY_CONCURRENCY) to how many deliveries may be planned at once, e.g. 4)',
    ]);
  });

  it('accepts a one-line key with \\n escapes and a key file, and derives the GHE API URL', () => {
    const oneLine = pem.trim().replace(/\n/g, '\\n');
    expect(loadConfig({ env: { ...app, PRIVATE_KEY: oneLine }, cwd: dir }).github?.privateKey).toBe(pem.trim());
    const keyPath = yamlFile('app.pem', pem);
    const { PRIVATE_KEY: _, ...noKey } = app;
    const config = loadConfig({ env: { ...noKey, PRIVATE_KEY_PATH: keyPath, GHE_HOST: 'ghe.example.com' }, cwd: dir });
    expect(config.github?.privateKey).toBe(pem);
    expect(config.github?.apiUrl).toBe('https://ghe.example.com/api/v3');
    expect(loadConfig({ env: { ...app, GHE_HOST: 'ghe.local', GHE_PROTOCOL: 'http' }, cwd: dir }).github?.apiUrl).toBe('http://ghe.local/api/v3');
  });

  it('merges a YAML file with the environment, the environment winning', () => {
    const file = yamlFile(
      'merge.yml',
      [
        'port: 8080',
        'logLevel: debug',
        'stateDir: state',
        'forgejo:',
        '  url: https://codeberg.org/',
        '  token: tok',
        '  webhookSecret: fsecret',
        'concurrency:',
        '  maxJobs: 4',
        '  perLabel: { debian-12: 1 }',
        'workflowDirs: [.forgevm/workflows, .ci]',
        'images:',
        '  mine:',
        '    disk: { path: mine/disk.qcow2 }',
        '    user: ci',
      ].join('\n'),
    );
    const config = loadConfig({ file, env: { PORT: '9090' }, cwd: '/' });
    expect(config).toMatchObject({
      file,
      port: 9090,
      logLevel: 'debug',
      stateDir: join(dir, 'state'),
      github: null,
      forgejo: { url: 'https://codeberg.org', apiUrl: 'https://codeberg.org/api/v1', token: 'tok', webhookSecret: 'fsecret' },
      concurrency: { maxJobs: 4, perLabel: { 'debian-12': 1 } },
      workflowDirs: ['.forgevm/workflows', '.ci'],
    });
    expect(config.images.mine).toMatchObject({ user: 'ci', format: 'qcow2' });
    expect(config.images.tiny).toBeDefined();
    // FORGEVM_CONFIG names the file when --config is absent.
    expect(loadConfig({ env: { FORGEVM_CONFIG: file }, cwd: dir }).port).toBe(8080);
  });

  it.each([
    [{ ...app, APP_ID: 'abc' }, "config: APP_ID: must be a number (set APP_ID to your GitHub App's id)"],
    [{ ...app, APP_ID: '12.5' }, "config: APP_ID: must be your GitHub App id, a whole number (set APP_ID to your GitHub App's id)"],
    [{ PRIVATE_KEY: pem, WEBHOOK_SECRET: 's' }, "config: APP_ID: is required (set APP_ID to your GitHub App's id)"],
    [{ ...app, PRIVATE_KEY: 'not a key' }, 'config: PRIVATE_KEY: must be a PEM private key (-----BEGIN … PRIVATE KEY-----)'],
    [{ APP_ID: '1', PRIVATE_KEY_PATH: '/nonexistent/key.pem', WEBHOOK_SECRET: 's' }, 'config: PRIVATE_KEY_PATH: cannot read /nonexistent/key.pem (ENOENT)'],
    [{ APP_ID: '1', PRIVATE_KEY: pem }, "config: WEBHOOK_SECRET: is required (set WEBHOOK_SECRET to the secret in the GitHub App's webhook settings)"],
    [{ ...app, WEBHOOK_PATH: 'hooks' }, 'config: WEBHOOK_PATH: must be a URL path starting with "/"'],
    [{ ...app, GITHUB_API_URL: 'api.github.com' }, 'config: GITHUB_API_URL: must be an http(s) URL'],
    [{ ...app, GHE_HOST: 'ghe.example.com', GITHUB_API_URL: 'https://api.github.com' }, 'config: GITHUB_API_URL: conflicts with GHE_HOST (https://ghe.example.com/api/v3); set only one of them'],
    [{ ...app, GHE_HOST: 'x', GHE_PROTOCOL: 'ftp' }, 'config: GHE_PROTOCOL: must be http or https (set GHE_PROTOCOL to http or https)'],
    [{ PORT: '70000' }, 'config: PORT: must be 1-65535 (set PORT to a free TCP port, 1-65535)'],
    [{ PORT: 'eighty' }, 'config: PORT: must be a number (set PORT to a free TCP port, 1-65535)'],
    [{ LOG_LEVEL: 'loud' }, 'config: LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal, silent'],
    [{ FORGEJO_URL: 'codeberg.org', FORGEJO_TOKEN: 't', FORGEJO_WEBHOOK_SECRET: 's' }, 'config: FORGEJO_URL: must be an http(s) URL'],
    [{ FORGEJO_URL: 'https://codeberg.org', FORGEJO_WEBHOOK_SECRET: 's' }, 'config: FORGEJO_TOKEN: is required'],
    [{ FORGEJO_URL: 'https://codeberg.org', FORGEJO_TOKEN: 't' }, 'config: FORGEJO_WEBHOOK_SECRET: is required'],
    [{ FORGEVM_MAX_JOBS: '0' }, 'config: FORGEVM_MAX_JOBS: must be a whole number ≥ 1'],
    [{ FORGEVM_STORE_SYNC: 'off' }, 'config: FORGEVM_STORE_SYNC: must be full or normal (set FORGEVM_STORE_SYNC to full'],
  ])('reports %j as one line', (env, expected) => {
    const lines = problems(env as Record<string, string>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(expected);
  });

  it('names file settings by file and path, one line per problem', () => {
    const file = yamlFile(
      'bad.yml',
      [
        'prot: 3000',
        'defaultTimeoutMinutes: 0',
        'logCapBytes: 10',
        'workflowDirs: [/etc]',
        'concurrency:',
        '  maxJobs: 1.5',
        '  perLabel: { debian-12: 0 }',
        'github:',
        '  appId: x',
        'images:',
        '  Bad Label!:',
        '    user: ci',
      ].join('\n'),
    );
    const lines = problems({}, file);
    expect(lines).toEqual(
      expect.arrayContaining([
        `config: ${file}: prot: unknown setting (check the spelling; see the documented settings)`,
        `config: ${file}: defaultTimeoutMinutes: must be a whole number ≥ 1 (give minutes, e.g. 360)`,
        `config: ${file}: logCapBytes: must be at least 1024 (give bytes, e.g. 104857600 for 100 MiB)`,
        expect.stringContaining(`config: ${file}: workflowDirs.0: must be a folder inside the repository`),
        expect.stringContaining(`config: ${file}: concurrency.maxJobs: must be a whole number ≥ 1`),
        expect.stringContaining(`config: ${file}: concurrency.perLabel.debian-12: must be a whole number ≥ 1 (give each label`),
        `config: ${file}: github.appId: must be a number (set APP_ID to your GitHub App's id)`,
        expect.stringContaining('config: PRIVATE_KEY: is required'),
        expect.stringContaining('config: WEBHOOK_SECRET: is required'),
        expect.stringMatching(/^config: images\./),
      ]),
    );
    for (const l of lines) expect(l).not.toContain('\n');
  });

  it('gives images NAT networking unless they say isolated, and names a wrong value', () => {
    const image = (network: string) =>
      yamlFile(`net-${network}.yml`, ['images:', '  box:', '    disk: { path: box/disk.qcow2 }', '    user: ci', `    network: ${network}`].join('\n'));
    const config = loadConfig({ file: image('isolated'), env: {}, cwd: '/' });
    expect(config.images.box?.network).toBe('isolated');
    expect(config.images.tiny?.network).toBe('nat');
    expect(problems({}, image('none'))).toEqual(['config: images.box.network: must be nat or isolated']);
  });

  it('sizes the cache and keeps artifacts as GitHub does unless told otherwise', () => {
    const defaults = loadConfig({ env: {}, cwd: dir });
    expect(defaults.cache).toEqual({ maxBytes: 10 * 1024 ** 3, unusedDays: 7 });
    expect(defaults.artifacts).toEqual({ retentionDays: 90, maxBytes: 10 * 1024 ** 3 });
    const file = yamlFile('services.yml', ['cache:', '  maxBytes: 2147483648', '  unusedDays: 0', 'artifacts:', '  retentionDays: 14', '  maxBytes: 1048576'].join('\n'));
    const config = loadConfig({ file, env: { FORGEVM_ARTIFACT_RETENTION_DAYS: '30' }, cwd: dir });
    expect(config.cache).toEqual({ maxBytes: 2 * 1024 ** 3, unusedDays: 0 });
    expect(config.artifacts).toEqual({ retentionDays: 30, maxBytes: 1024 * 1024 });
    expect(loadConfig({ env: { FORGEVM_CACHE_MAX_BYTES: '5368709120' }, cwd: dir }).cache.maxBytes).toBe(5 * 1024 ** 3);
    expect(problems({ FORGEVM_CACHE_MAX_BYTES: '1000' })).toEqual([
      'config: FORGEVM_CACHE_MAX_BYTES: must be at least 1048576 (1 MiB) (set cache.maxBytes (or FORGEVM_CACHE_MAX_BYTES) to bytes, e.g. 10737418240 for 10 GiB)',
    ]);
    expect(problems({ FORGEVM_ARTIFACT_RETENTION_DAYS: '0' })).toEqual([
      'config: FORGEVM_ARTIFACT_RETENTION_DAYS: must be a whole number ≥ 1 (set artifacts.retentionDays (or FORGEVM_ARTIFACT_RETENTION_DAYS) to whole days, e.g. 90)',
    ]);
    const typo = yamlFile('typo.yml', 'cache:\n  maxbytes: 5\n');
    expect(problems({}, typo)).toEqual([`config: ${typo}: cache.maxbytes: unknown setting (check the spelling; see the documented settings)`]);
  });

  it('says which file cannot be read or parsed', () => {
    expect(problems({}, join(dir, 'missing.yml'))).toEqual([`config: ${join(dir, 'missing.yml')}: cannot read (ENOENT); check --config or create the file`]);
    expect(problems({ FORGEVM_CONFIG: join(dir, 'gone.yml') })[0]).toContain('check FORGEVM_CONFIG');
    const broken = yamlFile('broken.yml', 'port: [1, 2\n');
    expect(problems({}, broken)[0]).toMatch(new RegExp(`^config: ${broken}: not valid YAML: .+ \\(fix the file\\)$`));
    const list = yamlFile('list.yml', '- a\n- b\n');
    expect(problems({}, list)[0]).toContain('the top level must be a mapping of settings');
  });
});
