/**
 * Signed URLs for blob transfers, in the shape of Azure's SAS URLs (`se` expiry, `sp`
 * permission, `sig` signature): the clients fetch them without any other credential, and
 * @actions/artifact masks `sig` in logs. The signature binds the permission and the resource
 * (e.g. one cache archive), so a URL for one download cannot be bent into another. The
 * services still check that the resource belongs to the connection's job.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type Permission = 'r' | 'w';

/** `se=…&sp=…&sig=…` for the resource, valid until expiresAtMs. */
export function signedQuery(key: Buffer, resource: string, permission: Permission, expiresAtMs: number): string {
  const se = String(Math.floor(expiresAtMs / 1000));
  return new URLSearchParams({ se, sp: permission, sig: signature(key, resource, permission, se) }).toString();
}

/** Whether the URL carries a valid, unexpired signature for this resource and permission. */
export function verifySignedQuery(key: Buffer, resource: string, permission: Permission, url: URL, nowMs = Date.now()): boolean {
  const se = url.searchParams.get('se');
  const sp = url.searchParams.get('sp');
  const sig = url.searchParams.get('sig');
  if (!se || !/^\d{1,12}$/.test(se) || sp !== permission || !sig) return false;
  if (Number(se) * 1000 < nowMs) return false;
  const expected = Buffer.from(signature(key, resource, permission, se));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function signature(key: Buffer, resource: string, permission: Permission, se: string): string {
  return createHmac('sha256', key).update(`signed-url\0${resource}\0${permission}\0${se}`).digest('base64url');
}
