/**
 * A forgevm process for crash tests: runs one long job in the given state folder, printing
 * `booted <qemu pid>` and `step-started` so the parent knows when to kill it.
 */
import { buildCatalog } from '../../src/config/catalog.ts';
import { runJob } from '../../src/job/run-job.ts';
import { createEngine } from '../../src/vm/engine.ts';
import { jobFromYaml, logIn, stepsOf } from './job-fixture.ts';

const [stateRoot, repoDir, sha, accelCacheFile] = process.argv.slice(2) as [string, string, string, string];
const engine = await createEngine({ stateDir: stateRoot, catalog: buildCatalog().catalog, accelCacheFile });
const instance = jobFromYaml(`
jobs:
  long:
    runs-on: tiny
    steps:
      - run: echo step-started && sleep 600
`);
const log = logIn(stateRoot, 'child');
log.onData((chunk) => {
  if (chunk.toString().includes('step-started')) console.log('step-started');
});
await runJob(engine, {
  id: 'crashme',
  label: 'tiny',
  workspace: { repoDir, sha },
  repoName: 'repo',
  log,
  runSteps: stepsOf(instance, sha),
  onBooted: ({ pid }) => console.log(`booted ${pid}`),
});
