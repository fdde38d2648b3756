/**
 * A second process reading secrets as `forgevm serve` does, while the test writes with the CLI:
 * reads github:acme/app's TOKEN in a loop until the stop file exists, then prints
 * `{ reads, seen, errors }` as JSON.
 */
import { existsSync } from 'node:fs';
import { SecretStore } from '../../src/secrets/store.ts';

const [stateDir, stopFile] = process.argv.slice(2) as [string, string];
const store = new SecretStore({ stateDir });
const seen = new Set<string>();
const errors: string[] = [];
let reads = 0;
while (!existsSync(stopFile)) {
  try {
    seen.add((await store.getSecrets('github', 'acme/app')).TOKEN ?? '(none)');
  } catch (error) {
    errors.push(String((error as Error).message));
  }
  reads++;
  await new Promise((resolve) => setImmediate(resolve));
}
store.close();
console.log(JSON.stringify({ reads, seen: [...seen], errors }));
