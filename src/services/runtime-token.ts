/**
 * ACTIONS_RUNTIME_TOKEN: a JWT, as GitHub's runner gets one per job. @actions/artifact reads
 * the run and job backend ids from its `scp` claim (`Actions.Results:<run>:<job>`) without
 * checking the signature; the cache client only sends it back as a bearer token.
 *
 * forgevm signs it (HS256, a key that lives only in this process) and checks it on every API
 * request, but as a second line: requests are tied to their job by the connection they arrive
 * on (runner-services.ts), so a token copied from another job still acts as the connection's job.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface RuntimeClaims {
  /** forgevm's id for the job's services (one per JobServices). */
  sub: string;
  runBackendId: string;
  jobBackendId: string;
  /** Seconds since the epoch. */
  exp: number;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

const HEADER = base64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }));

export function mintRuntimeToken(key: Buffer, claims: RuntimeClaims): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = base64url(
    JSON.stringify({
      iss: 'forgevm',
      sub: claims.sub,
      iat: now,
      nbf: now,
      exp: claims.exp,
      // The scope list GitHub's tokens carry; only Actions.Results is read by the clients.
      scp: `Actions.GenericRead:00000000-0000-0000-0000-000000000000 Actions.Results:${claims.runBackendId}:${claims.jobBackendId}`,
    }),
  );
  return `${HEADER}.${payload}.${sign(key, `${HEADER}.${payload}`)}`;
}

/** The token's subject when it is ours, intact and unexpired; undefined otherwise. */
export function verifyRuntimeToken(key: Buffer, token: string, nowMs = Date.now()): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== HEADER) return undefined;
  const expected = Buffer.from(sign(key, `${parts[0]}.${parts[1]}`));
  const given = Buffer.from(parts[2]!);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown };
    if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number' || payload.exp * 1000 < nowMs) return undefined;
    return payload.sub;
  } catch {
    return undefined;
  }
}

function sign(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(`runtime-token\0${data}`).digest('base64url');
}
