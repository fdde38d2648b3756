/**
 * Encryption of one secret value: AES-256-GCM with a fresh random 96-bit nonce per value, and the
 * forge, repository and name bound in as associated data, so a stored value copied onto another
 * repository or name fails to decrypt instead of leaking there.
 *
 * Sealed layout: version (1 byte, 1) | nonce (12) | ciphertext | tag (16). The AES key is derived
 * from the secrets key with HKDF, so the raw key is used for nothing but derivations.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Forge } from '../forge/event-types.ts';

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Where a value belongs: the associated data it is sealed with. `repo` as stored (lower-case). */
export interface SecretAddress {
  forge: Forge;
  repo: string;
  name: string;
}

function aesKey(secretsKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secretsKey, Buffer.alloc(0), 'forgevm secrets aes-256-gcm v1', 32));
}

function associatedData(at: SecretAddress): Buffer {
  return Buffer.from(JSON.stringify(['forgevm secret', VERSION, at.forge, at.repo, at.name]));
}

export function seal(secretsKey: Buffer, at: SecretAddress, value: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', aesKey(secretsKey), nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(at));
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), nonce, body, cipher.getAuthTag()]);
}

/** The value, or null when the sealed bytes were altered, belong elsewhere, or were sealed with another key. */
export function unseal(secretsKey: Buffer, at: SecretAddress, sealed: Buffer): string | null {
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== VERSION) return null;
  const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
  const body = sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', aesKey(secretsKey), nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(at));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
