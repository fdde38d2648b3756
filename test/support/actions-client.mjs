/**
 * Runs one operation of a real @actions/cache or @actions/artifact release (installed under an
 * npm alias such as `actions-cache-6`) in a process of its own, as an action would: the clients
 * read ACTIONS_* from process.env. Usage: node actions-client.mjs <package> <operation> '<json args>'.
 * The last stdout line is `RESULT <json>`; everything the client logged comes before it.
 */
const [pkg, operation, argsText] = process.argv.slice(2);
const args = JSON.parse(argsText ?? '{}');
const loaded = await import(pkg);
// CommonJS releases arrive as a namespace whose default export holds the functions.
const lib = loaded.saveCache || loaded.DefaultArtifactClient ? loaded : loaded.default;

async function run() {
  switch (operation) {
    case 'save':
      return lib.saveCache(args.paths, args.key);
    case 'restore':
      return (await lib.restoreCache(args.paths, args.key, args.restoreKeys ?? [])) ?? null;
    case 'upload': {
      const client = new lib.DefaultArtifactClient();
      return client.uploadArtifact(args.name, args.files, args.root, args.options ?? {});
    }
    case 'list': {
      const client = new lib.DefaultArtifactClient();
      return (await client.listArtifacts()).artifacts.map((a) => ({ name: a.name, size: a.size, id: a.id, digest: a.digest }));
    }
    case 'download': {
      const client = new lib.DefaultArtifactClient();
      const { artifact } = await client.getArtifact(args.name);
      const result = await client.downloadArtifact(artifact.id, { path: args.path, expectedHash: artifact.digest });
      return { id: artifact.id, ...result };
    }
    case 'delete': {
      const client = new lib.DefaultArtifactClient();
      return client.deleteArtifact(args.name);
    }
    default:
      throw new Error(`unknown operation ${operation}`);
  }
}

try {
  const result = await run();
  process.stdout.write(`\nRESULT ${JSON.stringify({ ok: true, result })}\n`);
} catch (error) {
  process.stdout.write(`\nRESULT ${JSON.stringify({ ok: false, error: String(error?.message ?? error) })}\n`);
}
