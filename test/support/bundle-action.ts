/**
 * Bundles an action's JavaScript with its npm dependencies into one CommonJS file, as published
 * actions ship `dist/index.js` (ncc or esbuild): the guest needs Node and nothing else.
 */
import { build } from 'esbuild';

export async function bundleAction(source: string): Promise<string> {
  const out = await build({
    stdin: { contents: source, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}
