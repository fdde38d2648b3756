/**
 * Which runs get a repository's secrets, as on GitHub: none for a pull request from a fork (its
 * code comes from someone who cannot see them, approved or not), and none for runs Dependabot
 * started (GitHub gives those Dependabot's own secrets, which forgevm does not have).
 */
import type { PullRequestEvent, PushEvent } from '../forge/event-types.ts';
import type { SecretStore } from './store.ts';

const DEPENDABOT = 'dependabot[bot]';

export function runGetsSecrets(event: PushEvent | PullRequestEvent): boolean {
  if (event.kind === 'pull_request' && event.isFork) return false;
  return event.actor !== DEPENDABOT;
}

/** The `secrets` context for a run of this event: the repository's secrets, or {} when it may not have them. */
export async function secretsForRun(store: Pick<SecretStore, 'getSecrets'>, event: PushEvent | PullRequestEvent): Promise<Record<string, string>> {
  return runGetsSecrets(event) ? store.getSecrets(event.forge, event.repo.fullName) : {};
}
