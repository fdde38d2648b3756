/**
 * Loads forgevm's configuration: an optional YAML file merged with the environment (which wins),
 * using Probot's variable names for the GitHub App so that existing deployments carry over.
 * Every problem becomes one line: `config: <setting>: <what is wrong> (<what to do>)`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildCatalog, type ImageCatalog } from './catalog.ts';
import { fileSchema, logLevels } from './schema.ts';
import { defaultStateRoot } from '../vm/state-dir.ts';

export type LogLevel = (typeof logLevels)[number];

export interface GithubAppConfig {
  appId: number;
  /** PEM text. */
  privateKey: string;
  webhookSecret: string;
  /** Route for GitHub deliveries (WEBHOOK_PATH), default `/webhooks/github`. */
  webhookPath: string;
  /** REST API base, `https://api.github.com` or `<GHE>/api/v3`. */
  apiUrl: string;
}

export interface ForgejoConfig {
  /** Base URL of the instance, without trailing slash. */
  url: string;
  /** `<url>/api/v1`. */
  apiUrl: string;
  token: string;
  webhookSecret: string;
}

export interface Config {
  /** The YAML file read, if any. */
  file: string | null;
  port: number;
  host: string;
  logLevel: LogLevel;
  /** Absolute. */
  stateDir: string;
  github: GithubAppConfig | null;
  forgejo: ForgejoConfig | null;
  /** VMs at once (overall and per label), and deliveries planned at once. */
  concurrency: { maxJobs: number; perLabel: Record<string, number>; deliveries: number };
  /** Backoff for deliveries that failed for a passing reason, and when to give up. */
  deliveryRetry: { baseSeconds: number; maxSeconds: number; giveUpHours: number };
  /** `serve` asks GitHub to redeliver webhooks it could not deliver (0 minutes: never). */
  redelivery: { everyMinutes: number; maxPerDelivery: number };
  /** `serve` prunes finished deliveries older than this many days; 0 keeps them forever. */
  deliveryRetentionDays: number;
  /** Bytes of webhook bodies read at once, over all requests; beyond it the intake answers 503. */
  webhookBytesInFlight: number;
  workflowDirs: string[];
  defaultTimeoutMinutes: number;
  logCapBytes: number;
  /** `serve` deletes job and console logs older than this many days; 0 keeps them forever. */
  logRetentionDays: number;
  /** SQLite `synchronous` for the store: FULL unless the operator chose speed over power-loss safety. */
  store: { synchronous: 'FULL' | 'NORMAL' };
  /** The key for secrets at rest: its text, or a file holding it (absolute); both null: `<stateDir>/secrets.key`. */
  secrets: { key: string | null; keyFile: string | null };
  /** The actions/cache service: total size (LRU beyond it), and days an unused entry is kept (0: no limit). */
  cache: { maxBytes: number; unusedDays: number };
  /** The artifact service: default and longest retention, and the largest artifact. */
  artifacts: { retentionDays: number; maxBytes: number };
  /** Built-in images merged with the file's `images:` section. */
  images: ImageCatalog;
  /** Web root `uses: owner/repo@ref` is fetched from, without trailing slash (default https://github.com). */
  actions: { url: string; unusedDays: number };
}

export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Environment variable → setting path. `number` values are converted when they look numeric. */
const envSettings: Array<{ name: string; path: string[]; number?: boolean }> = [
  { name: 'APP_ID', path: ['github', 'appId'], number: true },
  { name: 'PRIVATE_KEY', path: ['github', 'privateKey'] },
  { name: 'PRIVATE_KEY_PATH', path: ['github', 'privateKeyPath'] },
  { name: 'WEBHOOK_SECRET', path: ['github', 'webhookSecret'] },
  { name: 'WEBHOOK_PATH', path: ['github', 'webhookPath'] },
  { name: 'GITHUB_API_URL', path: ['github', 'apiUrl'] },
  { name: 'GHE_HOST', path: ['github', 'gheHost'] },
  { name: 'GHE_PROTOCOL', path: ['github', 'gheProtocol'] },
  { name: 'PORT', path: ['port'], number: true },
  { name: 'HOST', path: ['host'] },
  { name: 'LOG_LEVEL', path: ['logLevel'] },
  { name: 'FORGEJO_URL', path: ['forgejo', 'url'] },
  { name: 'FORGEJO_TOKEN', path: ['forgejo', 'token'] },
  { name: 'FORGEJO_WEBHOOK_SECRET', path: ['forgejo', 'webhookSecret'] },
  { name: 'FORGEVM_STATE_DIR', path: ['stateDir'] },
  { name: 'FORGEVM_MAX_JOBS', path: ['concurrency', 'maxJobs'], number: true },
  { name: 'FORGEVM_STORE_SYNC', path: ['store', 'synchronous'] },
  { name: 'FORGEVM_LOG_RETENTION_DAYS', path: ['logRetentionDays'], number: true },
  { name: 'FORGEVM_DELIVERY_CONCURRENCY', path: ['concurrency', 'deliveries'], number: true },
  { name: 'FORGEVM_DELIVERY_RETENTION_DAYS', path: ['deliveryRetentionDays'], number: true },
  { name: 'FORGEVM_WEBHOOK_BYTES_IN_FLIGHT', path: ['webhookBytesInFlight'], number: true },
  { name: 'FORGEVM_SECRETS_KEY', path: ['secrets', 'key'] },
  { name: 'FORGEVM_SECRETS_KEY_FILE', path: ['secrets', 'keyFile'] },
  { name: 'FORGEVM_CACHE_MAX_BYTES', path: ['cache', 'maxBytes'], number: true },
  { name: 'FORGEVM_ARTIFACT_RETENTION_DAYS', path: ['artifacts', 'retentionDays'], number: true },
  { name: 'FORGEVM_ACTIONS_URL', path: ['actions', 'url'] },
];

/** What to do about a bad setting, by path. */
const hints: Record<string, string> = {
  'github.appId': "set APP_ID to your GitHub App's id",
  'github.privateKey': "set PRIVATE_KEY to the app's PEM private key, or PRIVATE_KEY_PATH to the .pem file GitHub gave you",
  'github.privateKeyPath': 'point PRIVATE_KEY_PATH at the .pem file GitHub gave you',
  'github.webhookSecret': "set WEBHOOK_SECRET to the secret in the GitHub App's webhook settings",
  'github.webhookPath': 'set WEBHOOK_PATH to a path such as /webhooks/github',
  'github.apiUrl': 'set GITHUB_API_URL to e.g. https://api.github.com, or GHE_HOST for GitHub Enterprise Server',
  'github.gheProtocol': 'set GHE_PROTOCOL to http or https',
  port: 'set PORT to a free TCP port, 1-65535',
  logLevel: `set LOG_LEVEL to one of ${logLevels.join(', ')}`,
  'forgejo.url': 'set FORGEJO_URL to the base URL of your Forgejo or Gitea, e.g. https://codeberg.org',
  'forgejo.token': 'set FORGEJO_TOKEN to an access token with repository write access (commit statuses)',
  'forgejo.webhookSecret': "set FORGEJO_WEBHOOK_SECRET to the secret in the repository's webhook settings",
  stateDir: 'set FORGEVM_STATE_DIR to a writable folder',
  'concurrency.maxJobs': 'set concurrency.maxJobs (or FORGEVM_MAX_JOBS) to how many VMs may run at once',
  'concurrency.perLabel': 'give each label a whole number ≥ 1',
  'concurrency.deliveries': 'set concurrency.deliveries (or FORGEVM_DELIVERY_CONCURRENCY) to how many deliveries may be planned at once, e.g. 4',
  deliveryRetry: 'give deliveryRetry.baseSeconds, maxSeconds and giveUpHours as numbers, e.g. 10, 300 and 24',
  redelivery: 'give redelivery.everyMinutes (0 turns it off) and redelivery.maxPerDelivery as numbers, e.g. 10 and 3',
  deliveryRetentionDays: 'set deliveryRetentionDays (or FORGEVM_DELIVERY_RETENTION_DAYS) to whole days, e.g. 30, or 0 to keep deliveries forever',
  webhookBytesInFlight: 'set webhookBytesInFlight (or FORGEVM_WEBHOOK_BYTES_IN_FLIGHT) to bytes, e.g. 67108864 for 64 MiB',
  workflowDirs: 'list folders relative to the repository root, e.g. [.forgevm/workflows]',
  defaultTimeoutMinutes: 'give minutes, e.g. 360',
  logCapBytes: 'give bytes, e.g. 104857600 for 100 MiB',
  logRetentionDays: 'set logRetentionDays (or FORGEVM_LOG_RETENTION_DAYS) to whole days, e.g. 30, or 0 to keep logs forever',
  'store.synchronous': 'set FORGEVM_STORE_SYNC to full (survives power loss) or normal (survives crashes, faster)',
  'secrets.key': 'make one with: openssl rand -base64 32',
  'secrets.keyFile': 'point FORGEVM_SECRETS_KEY_FILE at a file holding the key (mode 0600)',
  secrets: 'keep one of FORGEVM_SECRETS_KEY (secrets.key) and FORGEVM_SECRETS_KEY_FILE (secrets.keyFile)',
  'cache.maxBytes': 'set cache.maxBytes (or FORGEVM_CACHE_MAX_BYTES) to bytes, e.g. 10737418240 for 10 GiB',
  'cache.unusedDays': 'set cache.unusedDays to whole days, e.g. 7, or 0 to keep entries until the size cap',
  'artifacts.retentionDays': 'set artifacts.retentionDays (or FORGEVM_ARTIFACT_RETENTION_DAYS) to whole days, e.g. 90',
  'artifacts.maxBytes': 'set artifacts.maxBytes to bytes, e.g. 10737418240 for 10 GiB',
  images: 'see the images: section in the documentation',
  'actions.url': 'set actions.url (or FORGEVM_ACTIONS_URL) to the web root actions come from, e.g. https://github.com or https://code.forgejo.org',
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isRecord(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
}

function getPath(source: unknown, path: string[]): unknown {
  let node = source;
  for (const key of path) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/** Probot accepts keys with literal `\n` (one-line env values) and base64-encoded keys. */
function normalisePrivateKey(key: string): string {
  if (key.includes('-----BEGIN')) return key.replace(/\\n/g, '\n');
  const decoded = Buffer.from(key, 'base64').toString('utf8');
  return decoded.includes('-----BEGIN') ? decoded : key;
}

function resolveConfigFile(file: string | undefined, env: Env, cwd: string): { path: string | null; explicit: string | null } {
  const named = file ?? env.FORGEVM_CONFIG;
  if (named) return { path: resolve(cwd, named), explicit: file ? '--config' : 'FORGEVM_CONFIG' };
  const fallback = resolve(cwd, 'forgevm.yml');
  return { path: existsSync(fallback) ? fallback : null, explicit: null };
}

export interface LoadConfigOptions {
  /** `--config`; default `$FORGEVM_CONFIG`, else `./forgevm.yml` when present. */
  file?: string;
  env: Env;
  /** For relative paths; default process.cwd(). */
  cwd?: string;
}

export function loadConfig(options: LoadConfigOptions): Config {
  const { env } = options;
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];
  const { path: file, explicit } = resolveConfigFile(options.file, env, cwd);
  const fileLabel = file ? file : 'forgevm.yml';

  // 1. The file.
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new ConfigError([`config: ${file}: cannot read (${why}); check ${explicit ?? 'the path'} or create the file`]);
    }
    try {
      const parsed: unknown = parseYaml(text) ?? {};
      if (!isRecord(parsed)) throw new Error('the top level must be a mapping of settings');
      raw = parsed;
    } catch (error) {
      const first = String((error as Error).message).split('\n')[0];
      throw new ConfigError([`config: ${file}: not valid YAML: ${first} (fix the file)`]);
    }
  }
  const baseDir = file ? dirname(file) : cwd;

  // 2. The environment wins over the file. Remember which setting came from where, for messages.
  const fromEnv = new Map<string, string>();
  for (const setting of envSettings) {
    const value = env[setting.name];
    if (value === undefined || value === '') continue;
    const converted = setting.number && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
    setPath(raw, setting.path, converted);
    fromEnv.set(setting.path.join('.'), setting.name);
  }
  const envNameOf = new Map(envSettings.map((s) => [s.path.join('.'), s.name]));
  const nameOf = (path: string): string => {
    if (fromEnv.has(path)) return fromEnv.get(path)!;
    if (file && getPath(raw, path.split('.')) !== undefined) return `${fileLabel}: ${path}`;
    return envNameOf.get(path) ?? path;
  };
  const line = (path: string, message: string, hintPath = path): string => {
    const hint = hints[hintPath] ?? hints[hintPath.split('.')[0]!];
    return `config: ${nameOf(path)}: ${message}${hint ? ` (${hint})` : ''}`;
  };

  // 3. Derived GitHub settings: the key file, and GitHub Enterprise's API URL.
  const github = raw.github;
  if (isRecord(github)) {
    if (typeof github.privateKeyPath === 'string' && github.privateKey === undefined) {
      const keyPath = resolve(fromEnv.has('github.privateKeyPath') ? cwd : baseDir, github.privateKeyPath);
      try {
        github.privateKey = readFileSync(keyPath, 'utf8');
      } catch (error) {
        problems.push(line('github.privateKeyPath', `cannot read ${keyPath} (${(error as NodeJS.ErrnoException).code ?? error})`));
      }
    }
    if (typeof github.privateKey === 'string') github.privateKey = normalisePrivateKey(github.privateKey);
    const protocol = github.gheProtocol ?? 'https';
    // A bad GHE_PROTOCOL is reported by the schema; no URL is derived from it.
    if (typeof github.gheHost === 'string' && (protocol === 'http' || protocol === 'https')) {
      const gheUrl = `${protocol}://${github.gheHost.replace(/\/+$/, '')}/api/v3`;
      if (github.apiUrl !== undefined && github.apiUrl !== gheUrl) {
        problems.push(line('github.apiUrl', `conflicts with GHE_HOST (${gheUrl}); set only one of them`));
      } else {
        github.apiUrl = gheUrl;
      }
    }
  }

  // 4. Shape and values.
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.map(String).join('.');
      if (path.startsWith('images')) continue; // reported by the catalog below, with its own wording
      if (path === 'github.privateKey' && problems.some((p) => p.includes('PRIVATE_KEY_PATH') || p.includes('privateKeyPath'))) continue;
      if (issue.code === 'unrecognized_keys') {
        const where = path ? `${path}.` : '';
        for (const key of issue.keys) {
          problems.push(`config: ${fileLabel}: ${where}${key}: unknown setting (check the spelling; see the documented settings)`);
        }
        continue;
      }
      problems.push(line(path, issue.message, path.replace(/^concurrency\.perLabel\..*/, 'concurrency.perLabel')));
    }
  }
  const images = buildCatalog(isRecord(raw.images) ? raw.images : {});
  if (raw.images !== undefined && !isRecord(raw.images)) problems.push(line('images', 'must be a mapping of label → image'));
  for (const problem of images.problems) problems.push(`config: ${problem}`);
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const c = parsed.data;
  const stateDir = c.stateDir
    ? resolve(fromEnv.has('stateDir') ? cwd : baseDir, c.stateDir.replace(/^~(?=\/|$)/, env.HOME ?? '~'))
    : defaultStateRoot({ ...env, FORGEVM_STATE_DIR: undefined } as NodeJS.ProcessEnv);
  return {
    file,
    port: c.port,
    host: c.host,
    logLevel: c.logLevel,
    stateDir,
    github: c.github
      ? {
          appId: c.github.appId,
          privateKey: c.github.privateKey,
          webhookSecret: c.github.webhookSecret,
          webhookPath: c.github.webhookPath,
          apiUrl: c.github.apiUrl.replace(/\/+$/, ''),
        }
      : null,
    forgejo: c.forgejo
      ? {
          url: c.forgejo.url.replace(/\/+$/, ''),
          apiUrl: `${c.forgejo.url.replace(/\/+$/, '')}/api/v1`,
          token: c.forgejo.token,
          webhookSecret: c.forgejo.webhookSecret,
        }
      : null,
    concurrency: c.concurrency,
    workflowDirs: c.workflowDirs,
    defaultTimeoutMinutes: c.defaultTimeoutMinutes,
    logCapBytes: c.logCapBytes,
    logRetentionDays: c.logRetentionDays,
    deliveryRetry: c.deliveryRetry,
    redelivery: c.redelivery,
    deliveryRetentionDays: c.deliveryRetentionDays,
    webhookBytesInFlight: c.webhookBytesInFlight,
    store: { synchronous: c.store.synchronous === 'normal' ? 'NORMAL' : 'FULL' },
    secrets: {
      key: c.secrets.key ?? null,
      keyFile: c.secrets.keyFile ? resolve(fromEnv.has('secrets.keyFile') ? cwd : baseDir, c.secrets.keyFile) : null,
    },
    cache: c.cache,
    artifacts: c.artifacts,
    images: images.catalog,
    actions: { url: c.actions.url.replace(/\/+$/, ''), unusedDays: c.actions.unusedDays },
  };
}
