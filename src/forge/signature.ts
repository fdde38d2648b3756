/**
 * Webhook signature checks. Both compare in constant time and never throw on garbage input:
 * a malformed header is simply "not valid".
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Webhooks } from '@octokit/webhooks';

/** GitHub: `X-Hub-Signature-256: sha256=<hex>`, checked by @octokit/webhooks (constant time). */
export class GithubSignatureVerifier {
  readonly #webhooks: Webhooks;

  constructor(secret: string) {
    this.#webhooks = new Webhooks({ secret });
  }

  /**
   * `body` is the raw body decoded as UTF-8: the library signs text. A body that is not valid
   * UTF-8 cannot match, which is fine because it could not be a JSON delivery either.
   */
  async verify(body: string, header: string | null | undefined): Promise<boolean> {
    if (!header || !/^sha256=[0-9a-fA-F]{64}$/.test(header) || body.length === 0) return false;
    try {
      return await this.#webhooks.verify(body, header.toLowerCase());
    } catch {
      return false;
    }
  }
}

/**
 * Forgejo / Gitea: `X-Forgejo-Signature` / `X-Gitea-Signature`, the bare hex HMAC-SHA256 of the
 * raw body. Anything but exactly 64 hex digits is rejected before comparing.
 */
export function verifyForgejoSignature(secret: string, body: Buffer, header: string | null | undefined): boolean {
  if (!header || !/^[0-9a-fA-F]{64}$/.test(header)) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = Buffer.from(header, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
