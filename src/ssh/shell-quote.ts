/**
 * Quote one argument for a POSIX shell. Inside single quotes nothing is special except the
 * quote itself, which is closed, escaped and reopened. Used only to pass argv through SSH's
 * single command string; scripts travel as files and data as environment.
 */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('an argument cannot contain a NUL byte');
  if (/^[A-Za-z0-9_@%+:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function shellJoin(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}

const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names a shell cannot export but `env` can pass: GitHub's INPUT_NODE-VERSION and the like. */
const ENV_ONLY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * A file that `.` (source) or `eval` turns into the given environment, and that defines
 * `forgevm_exec`, which the wrapper execs the command with. Shell-valid names are exported;
 * names with `-` or `.` (action inputs such as INPUT_NODE-VERSION) cannot be, so forgevm_exec
 * passes them through `env NAME=value` instead. Values are single-quoted data either way.
 */
export function envFile(env: Record<string, string>): string {
  const exported: string[] = [];
  const passed: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (SHELL_NAME.test(name)) exported.push(`export ${name}=${shellQuote(value)}\n`);
    else if (ENV_ONLY_NAME.test(name)) passed.push(shellQuote(`${name}=${value}`));
    else throw new Error(`invalid environment variable name "${name}": use letters, digits, _ (and - or . after the first character)`);
  }
  const exec = passed.length === 0 ? 'forgevm_exec() { exec "$@"; }\n' : `forgevm_exec() { exec env ${passed.join(' ')} "$@"; }\n`;
  return exported.join('') + exec;
}
