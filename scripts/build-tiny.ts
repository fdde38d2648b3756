/**
 * Build the offline `tiny` test guest image: `tsx scripts/build-tiny.ts [imagesDir] [--force]`.
 * imagesDir defaults to $FORGEVM_STATE_DIR/images, else ~/.local/share/forgevm/images.
 */
import os from 'node:os';
import path from 'node:path';
import { buildTinyImage } from '../src/vm/image/tiny/build.ts';

function defaultImagesDir(): string {
  const stateDir = process.env.FORGEVM_STATE_DIR;
  if (stateDir) return path.join(stateDir, 'images');
  return path.join(os.homedir(), '.local', 'share', 'forgevm', 'images');
}

async function main(argv: string[]): Promise<void> {
  const force = argv.includes('--force');
  const positional = argv.filter((a) => !a.startsWith('--'));
  const imagesDir = path.resolve(positional[0] ?? defaultImagesDir());
  const started = Date.now();
  const image = await buildTinyImage({ imagesDir, force, log: (line) => console.error(`build-tiny: ${line}`) });
  console.error(`build-tiny: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(JSON.stringify(image, null, 2));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`build-tiny: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
