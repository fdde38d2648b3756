/**
 * The `forgevm` command. Each subcommand loads only the modules it needs.
 */
import { Command, Option } from 'commander';
import { cliConfig, cliEngine, reportFatal, type GlobalOptions } from './context.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

const program = new Command('forgevm')
  .description('Run GitHub Actions-style CI jobs in throwaway QEMU VMs, locally or as a forge app')
  .option('-c, --config <file>', 'configuration file (default: $FORGEVM_CONFIG or ./forgevm.yml)')
  .showHelpAfterError();

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
const collect = (value: string, previous: string[]) => [...previous, value];

/** Run an action, turning failures into one clear line and the exit code. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (error) {
      reportFatal(error);
    }
  };
}

program
  .command('run')
  .description('run the workflows of the git repository here, each job in a fresh VM')
  .option('-w, --workflow <file>', 'only this workflow file')
  .option('-j, --job <id>', 'only this job (and the matrix instances of it)')
  .option('-i, --image <label>', 'run every job on this image, whatever its runs-on says')
  .option('-e, --event <name>', 'act as this event (push, pull_request, workflow_dispatch) and honour the triggers')
  .option('--event-file <file>', 'JSON payload for github.event')
  .option('--input <name=value>', 'workflow_dispatch input (repeatable)', collect, [])
  .option('-p, --max-parallel <n>', 'jobs to run at once', (v) => Number.parseInt(v, 10))
  .option('--json <file>', 'also write the results (run and job conclusions, steps) as JSON to this file')
  .option('--console', "show each VM's serial console while it boots")
  .option('-s, --secret <name>', 'a secret for the jobs, its value taken from the environment variable of that name (repeatable)', collect, [])
  .option('--secret-file <file>', 'secrets as NAME=value lines (dotenv style)')
  .action(
    action(async (options: { workflow?: string; job?: string; image?: string; event?: string; eventFile?: string; input: string[]; maxParallel?: number; json?: string; console?: boolean; secret: string[]; secretFile?: string }) => {
      const { runCommand } = await import('./run.ts');
      const config = cliConfig(globals());
      const engine = await cliEngine(config);
      return runCommand(config, engine, options, out);
    }),
  );

program
  .command('plan')
  .description('show which workflows and jobs an event would run, and why (or why not)')
  .addOption(new Option('--event <name>', 'event').choices(['push', 'pull_request', 'workflow_dispatch']).default('push'))
  .option('--ref <ref>', 'branch or tag (default: the current branch)')
  .option('--base <branch>', 'pull_request base branch, or push "before" commit')
  .option('--sha <sha>', 'commit (default: HEAD)')
  .option('--json', 'machine-readable output')
  .action(
    action(async (options: { event: string; ref?: string; base?: string; sha?: string; json?: boolean }) => {
      const { planCommand } = await import('../workflow/commands.ts');
      const config = cliConfig(globals());
      return planCommand({ repoDir: process.cwd(), folders: config.workflowDirs, ...options }, out);
    }),
  );

program
  .command('validate [files...]')
  .description('check workflow files; prints file:line:column: problem and exits non-zero on any')
  .action(
    action(async (files: string[]) => {
      const { validateCommand } = await import('../workflow/commands.ts');
      const config = cliConfig(globals());
      return validateCommand({ repoDir: process.cwd(), files, folders: config.workflowDirs, catalog: config.images }, out);
    }),
  );

const image = program.command('image').description('manage VM images');
image
  .command('list')
  .description('show the image catalog and what is present')
  .action(
    action(async () => {
      const { imageList } = await import('./image.ts');
      return imageList(cliConfig(globals()), out);
    }),
  );
image
  .command('pull <label>')
  .description('download an image and verify its checksum')
  .option('-f, --force', 'download again even if present')
  .action(
    action(async (label: string, options: { force?: boolean }) => {
      const { imagePull } = await import('./image.ts');
      return imagePull(cliConfig(globals()), label, !!options.force, err);
    }),
  );
image
  .command('build <label>')
  .description('build a built-in image (tiny) from Debian packages')
  .option('-f, --force', 'rebuild even if the recipe did not change')
  .action(
    action(async (label: string, options: { force?: boolean }) => {
      const { imageBuild } = await import('./image.ts');
      return imageBuild(cliConfig(globals()), label, !!options.force, err);
    }),
  );

const secret = program.command('secret').description("manage a repository's secrets (secrets.* in its runs; never given to forks)");
const forgeOption = () => new Option('--forge <forge>', 'the forge the repository is on (default: the one configured)').choices(['github', 'forgejo']);
secret
  .command('set <owner/repo> <name>')
  .description('set a secret; the value is read from standard input, or typed without echo')
  .addOption(forgeOption())
  .action(
    action(async (repo: string, name: string, options: { forge?: 'github' | 'forgejo' }) => {
      const { secretSet } = await import('./secret.ts');
      return secretSet(cliConfig(globals()), repo, name, options, out, err);
    }),
  );
secret
  .command('list [owner/repo]')
  .description("list a repository's secrets (names and times, never values), or the repositories that have some")
  .addOption(forgeOption())
  .action(
    action(async (repo: string | undefined, options: { forge?: 'github' | 'forgejo' }) => {
      const { secretList } = await import('./secret.ts');
      return secretList(cliConfig(globals()), repo, options, out);
    }),
  );
secret
  .command('remove <owner/repo> <name>')
  .description('remove a secret')
  .addOption(forgeOption())
  .action(
    action(async (repo: string, name: string, options: { forge?: 'github' | 'forgejo' }) => {
      const { secretRemove } = await import('./secret.ts');
      return secretRemove(cliConfig(globals()), repo, name, options, out);
    }),
  );

secret
  .command('rotate-key')
  .description('re-seal every secret with a new key (made for you, unless the key is your own: then give --new-key-file)')
  .option('--new-key-file <file>', 'the new key (32 bytes, hex or base64, mode 0600)')
  .action(
    action(async (options: { newKeyFile?: string }) => {
      const { secretRotateKey } = await import('./secret.ts');
      const newKeyFile = options.newKeyFile === undefined ? undefined : (await import('node:path')).resolve(options.newKeyFile);
      return secretRotateKey(cliConfig(globals()), { newKeyFile }, out);
    }),
  );

program
  .command('doctor')
  .description('check that this host can run jobs, and say how to fix what is missing')
  .option('--recheck', 'probe KVM again instead of using the cached verdict')
  .action(
    action(async (options: { recheck?: boolean }) => {
      const { doctor } = await import('./doctor.ts');
      return doctor(cliConfig(globals()), options, out);
    }),
  );

program
  .command('serve')
  .description('receive webhooks from GitHub and Forgejo/Gitea and run their jobs')
  .action(
    action(async () => {
      const { serveCommand } = await import('../forge/serve.ts');
      const { startWorker } = await import('../scheduler/start-worker.ts');
      const { startLogRetention } = await import('../log/log-retention.ts');
      const { startDeliveryRetention } = await import('../store/delivery-retention.ts');
      const { startMissedDeliveries } = await import('../forge/missed-deliveries.ts');
      const { stateDir } = await import('../vm/state-dir.ts');
      const engine = await cliEngine(cliConfig(globals()));
      await serveCommand({
        config: globals().config,
        startWorker: async (context) => {
          const worker = await startWorker({ ...context, engine });
          const background = [
            startLogRetention({ dir: stateDir(context.config.stateDir).logs, days: context.config.logRetentionDays, log: context.logger }),
            startDeliveryRetention({ store: context.store, days: context.config.deliveryRetentionDays, log: context.logger }),
            ...(context.config.github ? [startMissedDeliveries(context)] : []),
          ];
          return {
            wake: () => worker.notify(),
            stop: () => {
              for (const b of background) b.stop();
              return worker.stop();
            },
          };
        },
      });
      // Serve until a signal stops it (serveCommand exits the process then).
      return new Promise<number>(() => {});
    }),
  );

await program.parseAsync(process.argv);
