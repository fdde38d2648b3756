/**
 * Secrets registered with a job log never reach its file or its live listeners, whatever the
 * steps print and however the output is cut: the real step executor, run on this host.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runSteps } from '../src/job/steps.ts';
import { JobLog } from '../src/log/job-log.ts';
import { githubContext, instanceOf, jobDef, workflowOf } from './support/job-model.ts';
import { LocalGuest } from './support/local-guest.ts';

let root: string;
beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'forgevm-masking-'));
  await mkdir(join(root, 'work', 'demo'), { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const TOKEN = 'tok-5ecret-Zq8uWm3x';
const KEY = '-----BEGIN TEST KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEF\nAASCAUEwggE9AgEAAkEAx9Vb8Q==\n-----END TEST KEY-----';

it('masks secrets in step output, split writes, stderr, encodings, multi-line values and step names', async () => {
  const job = jobDef({
    env: { TOKEN, KEY },
    steps: [
      {
        name: `deploy with ${TOKEN}`,
        run: [
          'echo "plain $TOKEN"',
          // The secret in two writes, apart in time: two SSH chunks in a VM, two reads here.
          'printf "split %s" "${TOKEN:0:7}"; sleep 0.3; printf "%s done\\n" "${TOKEN:7}"',
          'echo "on stderr $TOKEN" >&2',
          'printf "%s" "user:$TOKEN" | base64',
          'echo "$KEY"',
          'echo "line alone: MIIBVwIBADANBgkqhkiG9w0BAQEF"',
          'printf "no newline at the end: tok-"',
        ].join('\n'),
      },
    ],
  });
  const log = new JobLog(join(root, 'job.log'), 1_000_000);
  log.masker.add(TOKEN);
  log.masker.add(KEY);
  const seen: Buffer[] = [];
  log.onData((chunk) => seen.push(chunk));
  const outcome = await runSteps(
    new LocalGuest(root, { termAfterMs: 300, killAfterMs: 300 }),
    log,
    {
      instance: instanceOf(job, workflowOf([job])),
      github: githubContext(),
      needs: {},
      inputs: {},
      vars: {},
      workspace: join(root, 'work', 'demo'),
      tempDir: join(root, 'temp'),
      defaultTimeoutMinutes: 360,
    },
    new AbortController().signal,
  );
  log.close();
  expect(outcome.conclusion).toBe('success');
  const text = readFileSync(join(root, 'job.log'), 'utf8');
  expect(Buffer.concat(seen).toString()).toBe(text);
  for (const hidden of [TOKEN, 'MIIBVwIBADANBgkqhkiG9w0BAQEF', 'AASCAUEwggE9AgEAAkEAx9Vb8Q==', Buffer.from(TOKEN).toString('base64').slice(0, 24)]) {
    expect(text, hidden).not.toContain(hidden);
  }
  expect(text).toContain('▶ deploy with ***');
  expect(text).toContain('plain ***\n');
  expect(text).toContain('split *** done\n');
  expect(text).toContain('on stderr ***\n');
  // base64 of "user:" + the token: only the first byte of the token shows, in a digit shared with "user:".
  expect(text).toContain('\ndXNlcjp0***\n');
  expect(text).toContain('\n***\nline alone: ***\n'); // the whole key, then one of its lines
  expect(text).toContain('line alone: ***\n');
  // A tail that only looks like the start of a secret is released at the step's end.
  expect(text).toContain('no newline at the end: tok-');
});
