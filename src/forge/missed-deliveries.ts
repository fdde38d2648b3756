/**
 * Missed GitHub deliveries, asked for again. GitHub does not redeliver a webhook that failed
 * (forgevm was down or restarting, the network between was, or the intake answered 503 under
 * load), so that push would never run. At start and every `everyMinutes`, this reads the app's
 * recent deliveries (`GET /app/hook/deliveries`, newest first) and asks GitHub to redeliver each
 * event that no attempt delivered, that the store does not hold, and that was redelivered fewer
 * than `maxPerDelivery` times. A redelivery is an ordinary signed webhook: it goes through the
 * intake like any other, with the event's original id.
 *
 * GitHub keeps deliveries, and redelivers them, for 3 days: the first round looks back that far
 * (forgevm may have been down); later ones look back over a few intervals.
 */
import type { Config } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import type { Store } from '../store/store.ts';
import { classifyFailure } from './api-failure.ts';
import { GithubClients, type ForgeLogger, type GithubOctokit } from './github-client.ts';

/** One attempt at delivering an event, as `GET /app/hook/deliveries` lists it (hook-delivery-item). */
export interface HookDeliveryAttempt {
  id: number;
  /** The event's id, shared by its redeliveries: the `X-GitHub-Delivery` header. */
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
}

/** An event none of whose attempts was answered 2xx. */
export interface MissedDelivery {
  guid: string;
  event: string;
  action: string | null;
  /** The newest attempt: the one to redeliver. */
  latest: HookDeliveryAttempt;
  /** Redeliveries already made (by anyone). */
  redeliveries: number;
}

/** GitHub redelivers deliveries of the last 3 days; an hour's margin keeps clear of the edge. */
const FIRST_LOOKBACK_MS = 71 * 3_600_000;
/** A busy app lists thousands of deliveries a day: a round reads at most this many pages of 100. */
const MAX_PAGES = 50;
/** A redelivery asked for is not asked for again before GitHub has had time to make it. */
const REQUESTED_QUIET_MS = 5 * 60_000;

const delivered = (a: HookDeliveryAttempt) => a.status_code >= 200 && a.status_code < 300;

/** Groups attempts by event and returns the events that no attempt delivered, newest first. */
export function missedDeliveries(attempts: HookDeliveryAttempt[]): MissedDelivery[] {
  const byGuid = new Map<string, HookDeliveryAttempt[]>();
  for (const a of attempts) {
    const list = byGuid.get(a.guid);
    if (list) list.push(a);
    else byGuid.set(a.guid, [a]);
  }
  const missed: MissedDelivery[] = [];
  for (const [guid, all] of byGuid) {
    if (all.some(delivered)) continue;
    const latest = all.reduce((a, b) => (Date.parse(b.delivered_at) > Date.parse(a.delivered_at) || (b.delivered_at === a.delivered_at && b.id > a.id) ? b : a));
    missed.push({ guid, event: latest.event, action: latest.action, latest, redeliveries: all.filter((a) => a.redelivery).length });
  }
  return missed.sort((a, b) => Date.parse(b.latest.delivered_at) - Date.parse(a.latest.delivered_at));
}

export interface RedeliveryRound {
  /** Attempts read. */
  listed: number;
  /** Guids asked for again. */
  redelivered: string[];
  /** Guids left alone because they were redelivered `maxPerDelivery` times already. */
  exhausted: string[];
  /** Guids GitHub refused to redeliver (a 4xx: too old, gone): not asked again by this process. */
  refused: string[];
}

export interface MissedDeliveryOptions {
  /** The app's Octokit (JWT auth). */
  app: () => GithubOctokit;
  store: Pick<Store, 'getDelivery'>;
  log: ForgeLogger;
  everyMinutes: number;
  maxPerDelivery: number;
  now?: () => number;
}

export class MissedDeliveries {
  readonly #options: MissedDeliveryOptions;
  readonly #now: () => number;
  /** guid → when we asked: GitHub lists the redelivery only once it was made. */
  readonly #requested = new Map<string, number>();
  /** Exhausted guids already reported, so the log says it once. */
  readonly #reported = new Set<string>();
  /** Guids GitHub refused to redeliver. */
  readonly #refused = new Set<string>();
  #lastRound: number | undefined;

  constructor(options: MissedDeliveryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** One pass: list, compare with the store, ask for what is missing. */
  async round(): Promise<RedeliveryRound> {
    const started = this.#now();
    const since = this.#lastRound === undefined ? started - FIRST_LOOKBACK_MS : Math.max(started - FIRST_LOOKBACK_MS, this.#lastRound - 3 * this.#options.everyMinutes * 60_000);
    const attempts = await this.#list(since);
    const round: RedeliveryRound = { listed: attempts.length, redelivered: [], exhausted: [], refused: [] };
    for (const missed of missedDeliveries(attempts)) {
      // Decided in memory first: the store read below brings the whole payload.
      if (this.#refused.has(missed.guid)) continue;
      const asked = this.#requested.get(missed.guid);
      if (asked !== undefined && started - asked < REQUESTED_QUIET_MS) continue;
      if (await this.#options.store.getDelivery(missed.guid)) continue; // stored: answered 2xx, GitHub timed out first
      const what = `GitHub delivery ${missed.guid} (${missed.event}${missed.action ? `.${missed.action}` : ''}, ${missed.latest.delivered_at})`;
      if (missed.redeliveries >= this.#options.maxPerDelivery) {
        round.exhausted.push(missed.guid);
        if (!this.#reported.has(missed.guid)) {
          this.#reported.add(missed.guid);
          this.#options.log.error(
            `${what} was redelivered ${missed.redeliveries} times and never reached forgevm, last with "${missed.latest.status}" (${missed.latest.status_code}); not asking again: fix the cause, then redeliver it from the app's Advanced settings`,
          );
        }
        continue;
      }
      try {
        await this.#options.app().rest.apps.redeliverWebhookDelivery({ delivery_id: missed.latest.id });
      } catch (error) {
        const failure = classifyFailure(error);
        if (failure.kind !== 'permanent') throw error; // GitHub is down or we are stopping: the next round
        // One that GitHub refuses (too old, gone) must not hold up the others.
        this.#refused.add(missed.guid);
        round.refused.push(missed.guid);
        const status = (error as { status?: number }).status;
        this.#options.log.warn(`${what} never reached forgevm, and GitHub refused to redeliver it${status ? ` (${status})` : ''}: ${failure.reason}`);
        continue;
      }
      this.#requested.set(missed.guid, started);
      round.redelivered.push(missed.guid);
      this.#options.log.info(`${what} never reached forgevm (last answer: "${missed.latest.status}", ${missed.latest.status_code}); asked GitHub to redeliver it`);
    }
    this.#lastRound = started;
    for (const [guid, at] of this.#requested) if (started - at > FIRST_LOOKBACK_MS) this.#requested.delete(guid);
    return round;
  }

  /** Attempts delivered at or after `since`, newest first, at most MAX_PAGES pages. */
  async #list(since: number): Promise<HookDeliveryAttempt[]> {
    const octokit = this.#options.app();
    const attempts: HookDeliveryAttempt[] = [];
    let pages = 0;
    for await (const page of octokit.paginate.iterator(octokit.rest.apps.listWebhookDeliveries, { per_page: 100 })) {
      const items = page.data as HookDeliveryAttempt[];
      attempts.push(...items.filter((a) => Date.parse(a.delivered_at) >= since));
      pages += 1;
      const oldest = items.at(-1);
      if (!oldest || Date.parse(oldest.delivered_at) < since) break;
      if (pages >= MAX_PAGES) {
        this.#options.log.warn(`read ${pages * 100} GitHub deliveries back to ${oldest.delivered_at} and stopped there; older missed deliveries are not asked for again`);
        break;
      }
    }
    return attempts;
  }

  /** Runs a round now and then every `everyMinutes`; a failed round is logged and tried at the next. */
  start(): { firstRound: Promise<void>; stop(): void } {
    if (this.#options.everyMinutes === 0) return { firstRound: Promise.resolve(), stop: () => undefined };
    let running = false;
    const run = async () => {
      if (running) return; // a slow round (a big backlog, a slow API) is not overlapped
      running = true;
      try {
        await this.round();
      } catch (error) {
        const failure = classifyFailure(error);
        if (failure.kind === 'aborted') return;
        this.#options.log.warn(`cannot check GitHub for missed deliveries: ${failure.reason}; trying again in ${this.#options.everyMinutes} min`);
      } finally {
        running = false;
      }
    };
    const timer = setInterval(() => void run(), this.#options.everyMinutes * 60_000);
    timer.unref();
    return { firstRound: run(), stop: () => clearInterval(timer) };
  }
}

/** `serve`'s missed-delivery rounds for the configured GitHub App; `stop` also ends a call in flight. */
export function startMissedDeliveries(context: { config: Config; store: Store; logger: Logger }): { firstRound: Promise<void>; stop(): void } {
  const { config, store, logger } = context;
  if (!config.github) throw new Error('missed deliveries: no GitHub App configured');
  const calls = new AbortController();
  const log: ForgeLogger = { info: (m) => logger.info(m), warn: (m) => logger.warn(m), error: (m) => logger.error(m) };
  const clients = new GithubClients({ appId: config.github.appId, privateKey: config.github.privateKey, apiUrl: config.github.apiUrl, log, signal: calls.signal });
  const rounds = new MissedDeliveries({ app: () => clients.asApp(), store, log, ...config.redelivery }).start();
  return {
    firstRound: rounds.firstRound,
    stop: () => {
      rounds.stop();
      calls.abort();
    },
  };
}
