/**
 * The configuration's shape, as written in forgevm.yml (camelCase) after environment variables
 * were merged in. Messages are short predicates ("must be a number"); config.ts prefixes the
 * setting's name and appends a hint.
 */
import { z } from 'zod';
import { parseKeyText } from '../secrets/key.ts';
import {
  DEFAULT_ARTIFACT_MAX_BYTES,
  DEFAULT_ARTIFACT_RETENTION_DAYS,
  DEFAULT_CACHE_MAX_BYTES,
  DEFAULT_CACHE_UNUSED_DAYS,
} from '../services/defaults.ts';

const required = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`);

const nonEmpty = z.string({ error: required('a string') }).min(1, 'must not be empty');
/** Type errors say "must be a number"; fractions and values < 1 say `must be <what>`. */
const positiveInt = (what = 'a whole number ≥ 1') =>
  z.number({ error: required('a number') }).int(`must be ${what}`).min(1, `must be ${what}`);
/** Seconds or hours: fractions allowed, zero not. */
const positiveNumber = z.number({ error: required('a number') }).positive('must be more than 0');
/** GitHub's cap on a webhook payload (src/forge/body.ts MAX_WEBHOOK_BYTES). */
const MAX_PAYLOAD_BYTES = 25 * 1024 * 1024;
const httpUrl = z
  .string({ error: required('a URL') })
  .refine((v) => /^https?:\/\/[^/\s]+/.test(v) && URL.canParse(v), 'must be an http(s) URL');

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const githubSchema = z
  .object({
    appId: positiveInt('your GitHub App id, a whole number'),
    privateKey: nonEmpty.refine(
      (v) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v) && /-----END [A-Z ]*PRIVATE KEY-----/.test(v),
      'must be a PEM private key (-----BEGIN … PRIVATE KEY-----)',
    ),
    /** Only used to read privateKey; kept for messages. */
    privateKeyPath: z.string().optional(),
    webhookSecret: nonEmpty,
    webhookPath: z
      .string({ error: required('a path') })
      .regex(/^\/[A-Za-z0-9._~\/-]*$/, 'must be a URL path starting with "/"')
      .default('/webhooks/github'),
    apiUrl: httpUrl.default('https://api.github.com'),
    gheHost: z.string().optional(),
    gheProtocol: z.enum(['http', 'https'], { error: 'must be http or https' }).optional(),
  })
  .strict();

export const forgejoSchema = z
  .object({
    url: httpUrl,
    token: nonEmpty,
    webhookSecret: nonEmpty,
  })
  .strict();

export const fileSchema = z
  .object({
    port: z.number({ error: required('a number') }).int('must be a whole number').min(1, 'must be 1-65535').max(65535, 'must be 1-65535').default(3000),
    host: nonEmpty.default('0.0.0.0'),
    logLevel: z.enum(logLevels, { error: `must be one of ${logLevels.join(', ')}` }).default('info'),
    stateDir: nonEmpty.optional(),
    github: githubSchema.optional(),
    forgejo: forgejoSchema.optional(),
    concurrency: z
      .object({
        maxJobs: positiveInt().default(2),
        perLabel: z.record(z.string(), positiveInt()).default({}),
        /** Deliveries planned at once (API calls, no VMs); retrying ones wait aside. */
        deliveries: positiveInt().max(64, 'must be at most 64').default(4),
      })
      .strict()
      .default({ maxJobs: 2, perLabel: {}, deliveries: 4 }),
    /** Deliveries that failed for a passing reason (forge down, 5xx, rate limit) are tried again. */
    deliveryRetry: z
      .object({
        baseSeconds: positiveNumber.default(10),
        maxSeconds: positiveNumber.default(300),
        giveUpHours: positiveNumber.default(24),
      })
      .strict()
      .default({ baseSeconds: 10, maxSeconds: 300, giveUpHours: 24 }),
    /**
     * GitHub does not redeliver a webhook that failed: `serve` asks it to, at start and every
     * `everyMinutes` (0: never), at most `maxPerDelivery` times for one event.
     */
    redelivery: z
      .object({
        everyMinutes: z.number({ error: required('a number') }).min(0, 'must be 0 (never) or more').default(10),
        maxPerDelivery: positiveInt().max(20, 'must be at most 20').default(3),
      })
      .strict()
      .default({ everyMinutes: 10, maxPerDelivery: 3 }),
    /** Finished deliveries older than this are pruned by `serve`; 0 keeps them forever. */
    deliveryRetentionDays: z
      .number({ error: required('a number') })
      .int('must be a whole number')
      .min(0, 'must be 0 (keep forever) or more')
      .max(36500, 'must be at most 36500')
      .default(30),
    /** Bytes of webhook bodies being read at once, all requests together; beyond it, 503. */
    webhookBytesInFlight: positiveInt('a whole number of bytes')
      .min(MAX_PAYLOAD_BYTES, `must be at least ${MAX_PAYLOAD_BYTES} (one 25 MiB delivery)`)
      .default(64 * 1024 * 1024),
    workflowDirs: z
      .array(
        z
          .string()
          .min(1, 'must not be empty')
          .refine((v) => !v.startsWith('/') && !v.split('/').includes('..'), 'must be a folder inside the repository (relative, no "..")'),
        { error: required('a list of folders') },
      )
      .min(1, 'must list at least one folder')
      .default(['.forgevm/workflows']),
    defaultTimeoutMinutes: positiveInt().max(10080, 'must be at most 10080 (one week)').default(360),
    logCapBytes: positiveInt()
      .min(1024, 'must be at least 1024')
      .default(100 * 1024 * 1024),
    /** Job and console logs in `<state>/logs` older than this are deleted by `serve`; 0 keeps them forever. */
    logRetentionDays: z
      .number({ error: required('a number') })
      .int('must be a whole number')
      .min(0, 'must be 0 (keep forever) or more')
      .max(36500, 'must be at most 36500')
      .default(30),
    /**
     * SQLite durability of acknowledged deliveries.
     * `full` (default): each 2xx waits for an fsync of the WAL, group-committed (the deliveries
     * that arrive together share one fdatasync on the writer thread), so an acknowledged delivery
     * survives power loss.
     * `normal`: a 2xx means committed; it survives a crash or kill of forgevm, and the WAL is
     * synced in the background every 100 ms, so a power loss or kernel crash can drop at most
     * that last window (the forge shows those as delivered; redeliver them from its webhook
     * page). For disks whose fsync latency is too high for the forge's delivery timeout.
     */
    store: z
      .object({ synchronous: z.enum(['full', 'normal'], { error: 'must be full or normal' }).default('full') })
      .strict()
      .default({ synchronous: 'full' }),
    /** Where the key that encrypts secrets comes from (src/secrets/key.ts); neither: `<stateDir>/secrets.key`. */
    secrets: z
      .object({
        key: z
          .string({ error: required('a string') })
          .refine((v) => parseKeyText(v) !== null, 'must be 32 bytes as 64 hex digits or base64')
          .optional(),
        keyFile: nonEmpty.optional(),
      })
      .strict()
      .refine((s) => s.key === undefined || s.keyFile === undefined, 'give the key or a key file, not both')
      .default({}),
    /** The actions/cache service (README: "Cache and artifacts"). */
    cache: z
      .object({
        /** Total size of the cache, and of its largest entry; least recently used entries go first. */
        maxBytes: positiveInt().min(1024 * 1024, 'must be at least 1048576 (1 MiB)').default(DEFAULT_CACHE_MAX_BYTES),
        /** Entries not restored for this many days are deleted; 0 keeps them until the size cap. */
        unusedDays: z
          .number({ error: required('a number') })
          .int('must be a whole number')
          .min(0, 'must be 0 (no limit) or more')
          .max(36500, 'must be at most 36500')
          .default(DEFAULT_CACHE_UNUSED_DAYS),
      })
      .strict()
      .default({ maxBytes: DEFAULT_CACHE_MAX_BYTES, unusedDays: DEFAULT_CACHE_UNUSED_DAYS }),
    /** The upload-artifact/download-artifact service. */
    artifacts: z
      .object({
        /** Default and longest retention; a workflow's retention-days may only shorten it. */
        retentionDays: positiveInt().max(36500, 'must be at most 36500').default(DEFAULT_ARTIFACT_RETENTION_DAYS),
        /** Largest artifact. */
        maxBytes: positiveInt().default(DEFAULT_ARTIFACT_MAX_BYTES),
      })
      .strict()
      .default({ retentionDays: DEFAULT_ARTIFACT_RETENTION_DAYS, maxBytes: DEFAULT_ARTIFACT_MAX_BYTES }),
    /** Where `uses: owner/repo@ref` is fetched from (Forgejo's DEFAULT_ACTIONS_URL); full-URL `uses:` name their own host. */
    actions: z
      .object({
        url: httpUrl.default('https://github.com'),
        /** Fetched action trees no job used for this many days are deleted; 0 keeps them. */
        unusedDays: z.number({ error: required('a number') }).int('must be a whole number').min(0, 'must be 0 (keep forever) or more').default(30),
      })
      .strict()
      .default({ url: 'https://github.com', unusedDays: 30 }),
    /** Validated separately by the image catalog (src/config/catalog.ts). */
    images: z.record(z.string(), z.unknown(), { error: 'must be a mapping of label → image' }).default({}),
  })
  .strict();

export type FileConfig = z.input<typeof fileSchema>;
export type ParsedConfig = z.output<typeof fileSchema>;
