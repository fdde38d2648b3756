/**
 * A step's stdout and stderr on their way into the job log: split into lines, workflow commands
 * (workflow-commands.ts) taken out and acted on, registered secrets masked as `***`.
 *
 * GitHub's runner works line by line, and so do commands here. Output is not held back more
 * than it must be: only a line that might still turn into a command (its start is blank or a
 * lone `:`) waits for the rest of its line, so progress output without line breaks streams
 * live. The job log masks what it writes as a stream (job-log.ts), so a secret split across
 * chunks is caught there.
 */
import type { JobLog } from '../log/job-log.ts';
import { parseWorkflowCommand, resumeToken, type WorkflowCommand } from './workflow-commands.ts';

export type Channel = 'stdout' | 'stderr';

/** An `::error`/`::warning`/`::notice` command, for the check run's annotations. */
export interface CommandAnnotation {
  /** The Checks API's annotation levels. */
  level: 'failure' | 'warning' | 'notice';
  /** Masked. */
  message: string;
  title?: string;
  file?: string;
  line?: number;
  endLine?: number;
  column?: number;
  endColumn?: number;
}

export interface StepOutputOptions {
  /** `ACTIONS_ALLOW_UNSECURE_COMMANDS=true` in the step's env: `set-env` and `add-path` work. */
  allowUnsecureCommands?: boolean;
  /** `ACTIONS_STEP_DEBUG`: show `::debug::` lines. */
  debug?: boolean;
}

const NEWLINE = 0x0a;

interface ChannelState {
  /** The start of a line, held back. */
  held?: Buffer;
  /** Part of the current line is already written, so the line is not a command. */
  midLine: boolean;
}

export class StepOutput {
  /** `set-output` values (GITHUB_OUTPUT, read after the step, wins over them). */
  readonly outputs: Record<string, string> = {};
  /** `save-state` values. */
  readonly state: Record<string, string> = {};
  /** `set-env` values (only with unsecure commands allowed). */
  readonly env: Record<string, string> = {};
  readonly paths: string[] = [];
  readonly annotations: CommandAnnotation[] = [];
  /** Set when a command failed the step (a disabled command was used). */
  failure: string | undefined;

  readonly #log: JobLog;
  readonly #options: StepOutputOptions;
  readonly #channels: Record<Channel, ChannelState> = { stdout: { midLine: false }, stderr: { midLine: false } };
  #stopToken: string | undefined;
  #echo = false;
  #warned = new Set<string>();

  constructor(log: JobLog, options: StepOutputOptions = {}) {
    this.#log = log;
    this.#options = options;
  }

  get #masker() {
    return this.#log.masker;
  }

  write(chunk: Buffer, channel: Channel): void {
    const state = this.#channels[channel];
    let data = chunk;
    if (state.held) {
      data = Buffer.concat([state.held, chunk]);
      state.held = undefined;
    }
    // Fast path: no `::` anywhere, so no line here is a command.
    if (data.indexOf('::') < 0) {
      const lastBreak = data.lastIndexOf(NEWLINE);
      const tail = data.subarray(lastBreak + 1);
      const lineStarts = lastBreak >= 0 || !state.midLine;
      if (tail.length > 0 && lineStarts && mightBecomeCommand(tail)) {
        this.#emit(data.subarray(0, lastBreak + 1), channel);
        state.held = Buffer.from(tail);
        state.midLine = false;
      } else {
        this.#emit(data, channel);
        state.midLine = tail.length > 0;
      }
      return;
    }
    this.#lines(data, channel, state);
  }

  /** At the end of the step: whatever is held is a last line without a line break. */
  flush(): void {
    for (const channel of ['stdout', 'stderr'] as const) {
      const state = this.#channels[channel];
      if (!state.held) continue;
      const held = state.held;
      state.held = undefined;
      if (!state.midLine && this.#command(held.toString('utf8'), channel)) continue;
      this.#emit(held, channel);
    }
  }

  #lines(data: Buffer, channel: Channel, state: ChannelState): void {
    let runStart = 0;
    let pos = 0;
    while (pos < data.length) {
      const nl = data.indexOf(NEWLINE, pos);
      if (nl < 0) {
        const tail = data.subarray(pos);
        const hold = !state.midLine && mightBecomeCommand(tail);
        this.#emit(data.subarray(runStart, hold ? pos : data.length), channel);
        if (hold) state.held = Buffer.from(tail);
        else state.midLine = true;
        return;
      }
      const lineStart = !state.midLine;
      state.midLine = false;
      if (lineStart && mayBeCommand(data, pos, nl)) {
        const text = data.toString('utf8', pos, nl).replace(/\r$/, '');
        this.#emit(data.subarray(runStart, pos), channel);
        if (!this.#command(text, channel)) this.#emit(data.subarray(pos, nl + 1), channel);
        runStart = nl + 1;
      }
      pos = nl + 1;
    }
    this.#emit(data.subarray(runStart), channel);
  }

  /** The log masks what it writes. */
  #emit(data: Buffer, channel: Channel): void {
    if (data.length > 0) this.#log.write(data, channel);
  }

  #say(text: string, channel: Channel): void {
    this.#emit(Buffer.from(`${text}\n`), channel);
  }

  /** Acts on a command line; false when the line is plain output after all. */
  #command(line: string, channel: Channel): boolean {
    if (this.#stopToken !== undefined) {
      if (!resumeToken(line, this.#stopToken)) return false;
      this.#stopToken = undefined;
      return true;
    }
    const command = parseWorkflowCommand(line);
    if (!command) return false;
    if (this.#echo && command.name !== 'add-mask') this.#say(line, channel);
    this.#apply(command, channel);
    return true;
  }

  #apply(command: WorkflowCommand, channel: Channel): void {
    const { properties: p, data } = command;
    switch (command.name) {
      case 'add-mask':
        if (data.trim() !== '') this.#masker.add(data.trim());
        return;
      case 'group':
        this.#say(`▸ ${data}`, channel);
        return;
      case 'endgroup':
        return;
      case 'debug':
        if (this.#options.debug) this.#say(`Debug: ${data}`, channel);
        return;
      case 'notice':
      case 'warning':
      case 'error': {
        const level = command.name === 'error' ? 'failure' : command.name;
        const label = command.name === 'error' ? 'Error' : command.name === 'warning' ? 'Warning' : 'Notice';
        const where = p.file ? ` (${p.file}${p.line ? `:${p.line}` : ''})` : '';
        this.#say(`${label}${where}: ${p.title ? `${p.title}: ` : ''}${data}`, channel);
        this.annotations.push({
          level,
          message: this.#masker.mask(data),
          ...(p.title ? { title: this.#masker.mask(p.title) } : {}),
          ...(p.file ? { file: p.file } : {}),
          ...positions(p),
        });
        return;
      }
      case 'set-output':
        this.#deprecated('set-output', channel);
        if (p.name) this.outputs[p.name] = data;
        return;
      case 'save-state':
        this.#deprecated('save-state', channel);
        if (p.name) this.state[p.name] = data;
        return;
      case 'set-env':
      case 'add-path':
        if (!this.#options.allowUnsecureCommands) {
          this.failure ??= `the \`${command.name}\` command is disabled: write to ${command.name === 'set-env' ? 'GITHUB_ENV' : 'GITHUB_PATH'} instead, or set ACTIONS_ALLOW_UNSECURE_COMMANDS=true in the step's env`;
          this.#say(`Error: ${this.failure}`, channel);
          return;
        }
        if (command.name === 'set-env' && p.name) this.env[p.name] = data;
        if (command.name === 'add-path' && data !== '') this.paths.push(data);
        return;
      case 'echo':
        if (/^on$/i.test(data.trim())) this.#echo = true;
        else if (/^off$/i.test(data.trim())) this.#echo = false;
        return;
      case 'stop-commands':
        if (data !== '') this.#stopToken = data;
        return;
      case 'add-matcher':
      case 'remove-matcher':
        return; // problem matchers: not implemented; forgevm finds compiler errors in the log itself
    }
  }

  #deprecated(name: string, channel: Channel): void {
    if (this.#warned.has(name)) return;
    this.#warned.add(name);
    const file = name === 'set-output' ? 'GITHUB_OUTPUT' : 'GITHUB_STATE';
    this.#say(`Warning: the \`${name}\` command is deprecated; write to ${file} instead`, channel);
  }
}

function positions(p: Record<string, string>): Pick<CommandAnnotation, 'line' | 'endLine' | 'column' | 'endColumn'> {
  const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : undefined);
  const out: Pick<CommandAnnotation, 'line' | 'endLine' | 'column' | 'endColumn'> = {};
  const line = num(p.line);
  const endLine = num(p.endline);
  const column = num(p.col);
  const endColumn = num(p.endcolumn);
  if (line !== undefined) out.line = line;
  if (endLine !== undefined) out.endLine = endLine;
  if (column !== undefined) out.column = column;
  if (endColumn !== undefined) out.endColumn = endColumn;
  return out;
}

/** Blank or white space then `::`, within the bytes of one line. */
function mayBeCommand(data: Buffer, from: number, to: number): boolean {
  let i = from;
  while (i < to && (data[i] === 0x20 || data[i] === 0x09)) i++;
  return i + 1 < to && data[i] === 0x3a && data[i + 1] === 0x3a;
}

/** The start of a line that could still turn into `::…` once more bytes arrive. */
function mightBecomeCommand(tail: Buffer): boolean {
  let i = 0;
  while (i < tail.length && (tail[i] === 0x20 || tail[i] === 0x09)) i++;
  if (i === tail.length) return true;
  if (tail[i] !== 0x3a) return false;
  return i + 1 === tail.length || tail[i + 1] === 0x3a;
}
