/**
 * The step "file commands": GITHUB_ENV, GITHUB_OUTPUT and GITHUB_PATH, parsed by the rules of
 * GitHub's runner so that scripts written for GitHub behave the same here.
 *
 * GITHUB_ENV / GITHUB_OUTPUT lines are either `NAME=value` (the rest of the line, untrimmed) or a
 * heredoc `NAME<<DELIMITER`, followed by value lines and a line that is exactly DELIMITER. Whichever
 * of `=` and `<<` comes first on the line decides the form. Empty lines are ignored.
 */

export class FileCommandError extends Error {}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True when a name can be passed as an environment variable (and so set through GITHUB_ENV). */
export function isValidEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/**
 * Action inputs and state names may also hold `-` and `.` (INPUT_NODE-VERSION, STATE_cache-key):
 * the guest passes them with `env`.
 */
export function isValidActionEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name);
}

interface Line {
  text: string;
  /** The line break that ended it ('' at the end of the file without one). */
  newline: string;
  /** Offset just past the line break. */
  next: number;
}

function readLine(text: string, from: number): Line | undefined {
  if (from >= text.length) return undefined;
  const lf = text.indexOf('\n', from);
  if (lf < 0) return { text: text.slice(from), newline: '', next: text.length };
  const crlf = lf > from && text[lf - 1] === '\r';
  return { text: text.slice(from, crlf ? lf - 1 : lf), newline: crlf ? '\r\n' : '\n', next: lf + 1 };
}

/**
 * Parses a GITHUB_ENV or GITHUB_OUTPUT file into name/value pairs in file order (later pairs
 * override earlier ones when applied). `file` names the file in error messages.
 */
export function parseKeyValueFile(text: string, file: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let index = 0;
  for (let line = readLine(text, index); line; line = readLine(text, index)) {
    index = line.next;
    if (line.text === '') continue;
    const equals = line.text.indexOf('=');
    const heredoc = line.text.indexOf('<<');
    if (equals >= 0 && (heredoc < 0 || equals < heredoc)) {
      const name = line.text.slice(0, equals);
      if (name === '') throw new FileCommandError(`${file}: invalid line "${clip(line.text)}": the name before "=" is empty`);
      pairs.push([name, line.text.slice(equals + 1)]);
      continue;
    }
    if (heredoc < 0) {
      throw new FileCommandError(`${file}: invalid line "${clip(line.text)}": expected NAME=value or NAME<<DELIMITER`);
    }
    const name = line.text.slice(0, heredoc);
    const delimiter = line.text.slice(heredoc + 2);
    if (name === '' || delimiter === '') {
      throw new FileCommandError(`${file}: invalid line "${clip(line.text)}": NAME<<DELIMITER needs both a name and a delimiter`);
    }
    const valueStart = index;
    let valueEnd = valueStart;
    for (;;) {
      const valueLine = readLine(text, index);
      if (!valueLine) {
        throw new FileCommandError(
          `${file}: the value of ${name} never ends: no line matching the delimiter "${clip(delimiter)}" was found; end the value with a line holding exactly that delimiter`,
        );
      }
      index = valueLine.next;
      if (valueLine.text === delimiter) break;
      if (valueLine.newline === '') {
        throw new FileCommandError(`${file}: the value of ${name} ends without the delimiter "${clip(delimiter)}" on its own line`);
      }
      valueEnd = valueLine.next - valueLine.newline.length;
    }
    pairs.push([name, text.slice(valueStart, valueEnd)]);
  }
  return pairs;
}

/** GITHUB_PATH: one folder per non-empty line, in the order written. */
export function parsePathFile(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line !== '');
}

/**
 * Adds GITHUB_PATH folders to the job's prepend list the runner's way: a folder added again moves
 * to the end, and the last added folder comes first in PATH.
 */
export function addPathEntries(prepend: string[], added: string[]): string[] {
  let list = [...prepend];
  for (const folder of added) {
    list = list.filter((f) => f !== folder);
    list.push(folder);
  }
  return list;
}

/** PATH for a step: prepended folders (last added first) in front of the base PATH. */
export function composePath(prepend: string[], basePath: string): string {
  const front = [...prepend].reverse();
  return basePath === '' ? front.join(':') : [...front, basePath].join(':');
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
