/**
 * Workflow commands (`::error::…`, `::add-mask::…`, …) and masking as a step's output reaches
 * the job log: parsed by GitHub's runner rules, acted on, and never written out raw.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StepOutput } from '../src/job/step-output.ts';
import { parseWorkflowCommand } from '../src/job/workflow-commands.ts';
import { JobLog } from '../src/log/job-log.ts';

let dir: string;
let log: JobLog;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'forgevm-commands-'));
  log = new JobLog(join(dir, 'job.log'), 10_000_000);
});
afterEach(() => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

const written = () => readFileSync(join(dir, 'job.log'), 'utf8');

function feed(output: StepOutput, ...chunks: string[]): void {
  for (const chunk of chunks) output.write(Buffer.from(chunk), 'stdout');
  output.flush();
}

describe('parsing a command line', () => {
  it('reads name, properties and data with the runner\'s escapes', () => {
    expect(parseWorkflowCommand('::error file=a%2Cb.ts,line=3,title=Bad%3A thing::two%0Alines 100%25')).toEqual({
      name: 'error',
      properties: { file: 'a,b.ts', line: '3', title: 'Bad: thing' },
      data: 'two\nlines 100%',
    });
    expect(parseWorkflowCommand('   ::group::Build')).toEqual({ name: 'group', properties: {}, data: 'Build' });
    expect(parseWorkflowCommand('::set-output name=x::')?.data).toBe('');
  });

  it('leaves plain output alone: unknown names, no second ::, text before ::', () => {
    expect(parseWorkflowCommand('::frobnicate::x')).toBeUndefined();
    expect(parseWorkflowCommand('::error no end')).toBeUndefined();
    expect(parseWorkflowCommand('say ::error::x')).toBeUndefined();
    expect(parseWorkflowCommand('')).toBeUndefined();
  });
});

describe('a step\'s output in the log', () => {
  it('passes plain output through unchanged, and streams a partial line without waiting', () => {
    const output = new StepOutput(log);
    output.write(Buffer.from('progress 10%'), 'stdout');
    expect(written()).toBe('progress 10%');
    feed(output, ' 20%\nline two\n');
    expect(written()).toBe('progress 10% 20%\nline two\n');
  });

  it('takes commands out, also when a command line is split across chunks', () => {
    const output = new StepOutput(log);
    feed(output, 'before\n::', 'group::Compile\nin group\n::endgroup::\n  ::warn', 'ing file=src/a.ts,line=4::careful\nafter');
    expect(written()).toBe('before\n▸ Compile\nin group\nWarning (src/a.ts:4): careful\nafter');
    expect(output.annotations).toEqual([{ level: 'warning', message: 'careful', file: 'src/a.ts', line: 4 }]);
  });

  it('a line that only looks like a command in its middle stays output', () => {
    const output = new StepOutput(log);
    feed(output, 'abc', '::error::not a command\n');
    expect(written()).toBe('abc::error::not a command\n');
    expect(output.annotations).toEqual([]);
  });

  it('masks add-mask values from the next line on, never writes the command, and holds lines whole', () => {
    const output = new StepOutput(log);
    feed(output, '::add-mask::hunter2\nthe password is hun', 'ter2 ok\n::error title=hunter2::hunter2 leaked?\n');
    const text = written();
    expect(text).not.toContain('hunter2');
    expect(text).toContain('the password is *** ok\n');
    expect(output.annotations[0]).toMatchObject({ level: 'failure', message: '*** leaked?', title: '***' });
  });

  it('collects set-output and save-state (with a deprecation warning once), and fails on set-env unless allowed', () => {
    const output = new StepOutput(log);
    feed(output, '::set-output name=a::1\n::set-output name=b::two\n::save-state name=s::x\n::set-env name=X::y\n');
    expect(output.outputs).toEqual({ a: '1', b: 'two' });
    expect(output.state).toEqual({ s: 'x' });
    expect(output.failure).toContain('`set-env` command is disabled');
    expect(written().match(/deprecated/g)).toHaveLength(2);
    const allowed = new StepOutput(log, { allowUnsecureCommands: true });
    feed(allowed, '::set-env name=X::y\n::add-path::/opt/bin\n');
    expect(allowed.failure).toBeUndefined();
    expect(allowed.env).toEqual({ X: 'y' });
    expect(allowed.paths).toEqual(['/opt/bin']);
  });

  it('stops and resumes command processing with stop-commands, and echoes commands when asked', () => {
    const output = new StepOutput(log);
    feed(output, '::stop-commands::tok42\n::error::shown as text\n::tok42::\n::echo::on\n::notice::hi\n');
    expect(written()).toBe('::error::shown as text\n::notice::hi\nNotice: hi\n');
    expect(output.annotations).toEqual([{ level: 'notice', message: 'hi' }]);
  });

  it('hides debug lines unless step debugging is on', () => {
    const quiet = new StepOutput(log);
    feed(quiet, '::debug::details\n');
    expect(written()).toBe('');
    const loud = new StepOutput(log, { debug: true });
    feed(loud, '::debug::details\n');
    expect(written()).toBe('Debug: details\n');
  });

  it('keeps stdout and stderr lines apart', () => {
    const output = new StepOutput(log);
    output.write(Buffer.from('::err'), 'stdout');
    output.write(Buffer.from('plain stderr\n'), 'stderr');
    output.write(Buffer.from('or::boom\n'), 'stdout');
    output.flush();
    expect(written()).toBe('plain stderr\nError: boom\n');
  });
});
