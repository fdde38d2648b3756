/**
 * Delivery retention for `forgevm serve`: every stored webhook keeps its raw payload (up to
 * 25 MB) for `github.event`, so the database only grows. Finished deliveries received more than
 * `deliveryRetentionDays` ago are pruned at start and then every few hours: deleted when no run
 * refers to them, otherwise stripped of their payload (the row stays for the run history).
 * A re-run of such a run is refused with a reason (as GitHub refuses re-runs after 30 days);
 * deliveries whose jobs have not all finished keep everything. SQLite reuses the freed pages
 * for new deliveries; the file does not shrink.
 */
import type { Logger } from '../log/logger.ts';
import { startRetention, type Retention, type RetentionOptions } from '../log/log-retention.ts';
import type { Store } from './store.ts';

export function startDeliveryRetention(options: RetentionOptions & { store: Store; log: Logger }): Retention {
  const { store, days, log } = options;
  return startRetention(options, async (olderThan) => {
    try {
      const { deleted, stripped } = await store.pruneDeliveries(olderThan.toISOString());
      if (deleted + stripped > 0) {
        log.info({ kind: 'delivery_retention', deleted, stripped, days }, `pruned deliveries older than ${days} days: ${deleted} deleted, ${stripped} kept without their payload`);
      }
    } catch (error) {
      log.warn({ kind: 'delivery_retention' }, `cannot prune deliveries older than ${days} days: ${(error as Error).message}`);
    }
  });
}
