/**
 * The webhook receiver. Each request is checked in a fixed order — size, content type,
 * signature, JSON — then normalised and stored before we answer. No forge API calls and no VM
 * work happen here: the worker picks stored deliveries up (woken by `onDelivery`, or polling).
 */
import type { IncomingMessage } from 'node:http';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Store } from '../store/store.ts';
import { logDelivery, silentLogger, type Logger } from '../log/logger.ts';
import { declaredLength, discardRest, MAX_WEBHOOK_BYTES, readCappedBody } from './body.ts';
import { ByteBudget } from './body-budget.ts';
import { GithubSignatureVerifier, verifyForgejoSignature } from './signature.ts';
import { normalizeForgejo, normalizeGithub, type Normalized } from './normalize.ts';
import type { Forge, ForgeEvent } from './event-types.ts';

export interface AppDeps {
  store: Store;
  /** GitHub App settings; null/absent = GitHub deliveries are refused (404). */
  github?: { appId: number; webhookSecret: string; webhookPath?: string } | null;
  /** Forgejo/Gitea webhook secret; null/absent = Forgejo deliveries are refused (404). */
  forgejo?: { webhookSecret: string } | null;
  logger?: Logger;
  /** Default 25 MiB. */
  maxBodyBytes?: number;
  /** Bytes of bodies read at once over all requests (default 64 MiB); beyond it, 503 + Retry-After. */
  maxBytesInFlight?: number;
  /** Called after a delivery was stored, to wake the worker without waiting for its poll. */
  onDelivery?: () => void;
}

export const FORGEJO_WEBHOOK_PATH = '/webhooks/forgejo';
export const DEFAULT_BYTES_IN_FLIGHT = 64 * 1024 * 1024;
/** Seconds a sender is asked to wait when the intake is full. */
const BUSY_RETRY_AFTER_SECONDS = 5;
export const DEFAULT_GITHUB_WEBHOOK_PATH = '/webhooks/github';

/** A header from a list of alternatives (Forgejo first, then Gitea). */
function header(c: Context, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = c.req.header(name);
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

function isJsonContentType(value: string | undefined): boolean {
  return (value ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';
}

interface ForgeRequest {
  forge: Forge;
  event: string | undefined;
  delivery: string | undefined;
  /** `text` is `body` decoded as UTF-8 (GitHub's library signs text; Forgejo's check uses bytes). */
  signatureOk: (body: Buffer, text: string) => Promise<boolean> | boolean;
  normalize: (event: string, payload: unknown) => Normalized;
  /** Header names, for messages. */
  eventHeader: string;
  deliveryHeader: string;
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const log = deps.logger ?? silentLogger();
  const maxBytes = deps.maxBodyBytes ?? MAX_WEBHOOK_BYTES;
  const github = deps.github ?? null;
  // @octokit/webhooks checks GitHub signatures (constant time), built once per app.
  const githubVerifier = github ? new GithubSignatureVerifier(github.webhookSecret) : null;
  const budget = new ByteBudget(deps.maxBytesInFlight ?? DEFAULT_BYTES_IN_FLIGHT);

  /** The delivery id and event the headers claim, for log lines (even on requests we refuse). */
  const claimed = (req: ForgeRequest) => ({ delivery: (req.delivery ?? '-').slice(0, 200), event: (req.event ?? '-').slice(0, 100) });

  const reject = (c: Context, req: ForgeRequest, status: ContentfulStatusCode, error: string) => {
    logDelivery(log, { forge: req.forge, ...claimed(req), outcome: 'rejected', status, reason: error });
    return c.json({ error }, status);
  };

  async function receive(c: Context, req: ForgeRequest): Promise<Response> {
    // 0. Room to read the body: the bytes being read at once are bounded over all requests.
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const declared = declaredLength(c.req.header('content-length'));
    const reservation = declared !== undefined && declared > maxBytes ? undefined : budget.reserve(declared ?? 0);
    if (reservation === null) {
      if (incoming) discardRest(incoming);
      c.header('Retry-After', String(BUSY_RETRY_AFTER_SECONDS));
      c.header('Connection', 'close');
      return reject(c, req, 503, `too many webhook bytes in flight (${budget.limit} bytes at once); try again in ${BUSY_RETRY_AFTER_SECONDS} s`);
    }
    try {
      return await receiveBody(c, req, incoming, reservation);
    } finally {
      reservation?.release();
    }
  }

  async function receiveBody(c: Context, req: ForgeRequest, incoming: IncomingMessage | undefined, reservation: ReturnType<ByteBudget['reserve']> | undefined): Promise<Response> {
    const started = performance.now();
    const { forge } = req;

    // 1. Size, while reading.
    const body = await readCappedBody(c.req.raw, maxBytes, incoming, reservation ?? undefined);
    if (!body.ok) {
      // Keep reading (and dropping) the rest for a bounded time instead of letting Node close a
      // socket with unread data: that close resets the connection and can destroy our 413.
      c.header('Connection', 'keep-alive');
      if (body.reason === 'aborted') return reject(c, req, 400, 'the request body ended early (client aborted)');
      if (body.reason === 'busy') {
        c.header('Retry-After', String(BUSY_RETRY_AFTER_SECONDS));
        return reject(c, req, 503, `too many webhook bytes in flight (${budget.limit} bytes at once); try again in ${BUSY_RETRY_AFTER_SECONDS} s`);
      }
      return reject(c, req, 413, `payload larger than ${maxBytes} bytes; webhook payloads are at most 25 MB`);
    }

    // 2. Content type.
    const contentType = c.req.header('content-type');
    if (!isJsonContentType(contentType)) {
      const form = (contentType ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
      return reject(
        c,
        req,
        415,
        form
          ? 'form-encoded webhooks are not supported; set the webhook content type to application/json in the webhook settings'
          : `content type must be application/json, got ${JSON.stringify(contentType ?? '(none)')}`,
      );
    }

    // 3. Signature. The body is decoded once; the same text is verified and parsed.
    const text = body.body.toString('utf8');
    if (!(await req.signatureOk(body.body, text))) {
      return reject(c, req, 401, 'missing or invalid signature; check that the webhook secret matches forgevm\'s configuration');
    }
    if (!req.event) return reject(c, req, 400, `missing ${req.eventHeader} header`);
    if (!req.delivery || req.delivery.length > 200) return reject(c, req, 400, `missing or invalid ${req.deliveryHeader} header`);
    const meta = { delivery: req.delivery, event: req.event };

    // 4. JSON.
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (error) {
      return reject(c, req, 400, `body is not valid JSON: ${(error as Error).message}`);
    }

    // 5. What it means to us.
    const normalized = req.normalize(req.event, payload);
    if (normalized.kind === 'invalid') return reject(c, req, 400, normalized.message);
    if (normalized.kind === 'ignored') {
      logDelivery(log, { forge, ...meta, outcome: 'ignored', status: 202, reason: normalized.reason, ms: performance.now() - started });
      return c.json({ ignored: normalized.reason }, 202);
    }

    // 6. Store, then answer.
    const event = normalized.event;
    const isInstallation = event.kind === 'installation' || event.kind === 'installation_repositories';
    if (isInstallation && (await deps.store.getDelivery(req.delivery))) {
      return duplicate(c, forge, meta, normalized.action, started);
    }
    // Installation changes are local bookkeeping, applied now (idempotent, so applying before
    // recording the delivery is safe if we crash in between).
    if (isInstallation) await applyInstallationChange(deps.store, event);
    const { inserted } = await deps.store.insertDelivery({
      id: req.delivery,
      forge,
      event: req.event,
      action: normalized.action,
      dedupeKey: normalized.dedupeKey,
      normalized: event,
      payload: body.body,
      status: isInstallation ? 'done' : 'pending',
    });
    if (!inserted) {
      // A redelivery of one that failed (or waits for its retry) is run again, not dropped.
      const requeued = isInstallation ? null : await deps.store.requeueDelivery(req.delivery, normalized.dedupeKey);
      if (requeued === null) return duplicate(c, forge, meta, normalized.action, started);
      logDelivery(log, { forge, ...meta, action: normalized.action, outcome: 'requeued', status: 202, reason: requeued === req.delivery ? undefined : `as ${requeued}`, ms: performance.now() - started });
      deps.onDelivery?.();
      return c.json({ delivery: req.delivery, requeued: true }, 202);
    }
    logDelivery(log, {
      forge,
      ...meta,
      action: normalized.action,
      repo: 'repo' in event ? event.repo.fullName : undefined,
      outcome: 'stored',
      status: 202,
      ms: performance.now() - started,
    });
    if (!isInstallation) deps.onDelivery?.();
    return c.json({ delivery: req.delivery }, 202);
  }

  function duplicate(c: Context, forge: Forge, meta: { delivery: string; event: string }, action: string | null, started: number): Response {
    logDelivery(log, { forge, ...meta, action, outcome: 'duplicate', status: 200, ms: performance.now() - started });
    return c.json({ duplicate: true, delivery: meta.delivery }, 200);
  }

  app.post(deps.github?.webhookPath ?? DEFAULT_GITHUB_WEBHOOK_PATH, async (c) => {
    const request: ForgeRequest = {
      forge: 'github',
      event: header(c, 'x-github-event'),
      delivery: header(c, 'x-github-delivery'),
      eventHeader: 'X-GitHub-Event',
      deliveryHeader: 'X-GitHub-Delivery',
      signatureOk: (_body, text) => githubVerifier!.verify(text, header(c, 'x-hub-signature-256')),
      normalize: (event, payload) => normalizeGithub(event, payload, github!.appId),
    };
    if (!github) return reject(c, request, 404, 'GitHub webhooks are not configured; set APP_ID, PRIVATE_KEY and WEBHOOK_SECRET');
    return receive(c, request);
  });

  app.post(FORGEJO_WEBHOOK_PATH, async (c) => {
    const secret = deps.forgejo?.webhookSecret ?? '';
    const request: ForgeRequest = {
      forge: 'forgejo',
      event: header(c, 'x-forgejo-event', 'x-gitea-event'),
      delivery: header(c, 'x-forgejo-delivery', 'x-gitea-delivery'),
      eventHeader: 'X-Forgejo-Event',
      deliveryHeader: 'X-Forgejo-Delivery',
      signatureOk: (body) => verifyForgejoSignature(secret, body, header(c, 'x-forgejo-signature', 'x-gitea-signature')),
      normalize: normalizeForgejo,
    };
    if (!secret) return reject(c, request, 404, 'Forgejo webhooks are not configured; set FORGEJO_URL, FORGEJO_TOKEN and FORGEJO_WEBHOOK_SECRET');
    return receive(c, request);
  });

  app.get('/healthz', async (c) => {
    const health = await deps.store.health().catch((error: unknown) => ({ ok: false, reason: `store: ${(error as Error).message}` }));
    if (!health.ok) log.warn({ kind: 'health', reason: health.reason }, `health check failed: ${health.reason}`);
    return c.json({ ok: health.ok, store: health.ok, ...(health.ok ? {} : { reason: health.reason }) }, health.ok ? 200 : 503);
  });

  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    // Storage failures land here: answer 500 so the forge records a failed delivery (it can be redelivered).
    log.error({ err: error, path: c.req.path }, `webhook handling failed: ${error.message}`);
    return c.json({ error: 'internal error while storing the delivery; it can be redelivered' }, 500);
  });
  return app;
}

async function applyInstallationChange(store: Store, event: ForgeEvent): Promise<void> {
  if (event.kind === 'installation') {
    switch (event.action) {
      case 'created':
      case 'new_permissions_accepted':
        if (event.action === 'created' || !(await store.getInstallation(event.installationId))) {
          await store.upsertInstallation({ id: event.installationId, account: event.account, repos: event.repos });
        }
        return;
      case 'deleted':
        await store.deleteInstallation(event.installationId);
        return;
      case 'suspend':
      case 'unsuspend':
        if (!(await store.getInstallation(event.installationId))) {
          await store.upsertInstallation({ id: event.installationId, account: event.account, repos: event.repos });
        }
        await store.setInstallationSuspended(event.installationId, event.action === 'suspend');
        return;
      default:
        return;
    }
  }
  if (event.kind === 'installation_repositories') {
    await store.updateInstallationRepos(event.installationId, event.account, {
      added: event.added,
      removed: event.removed,
      selection: event.selection,
    });
  }
}
