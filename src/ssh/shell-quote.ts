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

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A file that `.` (source) exports the given variables from. */
export function envFile(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => {
      if (!ENV_NAME.test(name)) throw new Error(`invalid environment variable name "${name}": use letters, digits and _`);
      return `export ${name}=${shellQuote(value)}\n`;
    })
    .join('');
}
