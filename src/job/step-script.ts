/**
 * How a `run:` step becomes a command: GitHub's shell templates, the script file's extension and
 * the small wrappers some shells need. The script always travels as a file and the command is an
 * argv; nothing here builds a shell command string.
 */

export interface ShellCommand {
  /** argv with `{0}` where the script path goes. */
  template: string[];
  /** Script file extension, with the dot (or ''). */
  extension: string;
  /** Wraps the user's script text (pwsh needs error handling added, as GitHub does). */
  wrap(script: string): string;
}

export class ShellError extends Error {}

const identity = (script: string): string => script;

const PWSH_PREFIX = "$ErrorActionPreference = 'stop'\n";
const PWSH_SUFFIX = '\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }\n';
const wrapPwsh = (script: string): string => PWSH_PREFIX + script + PWSH_SUFFIX;

/** GitHub's templates for the shell keywords it knows on Linux. */
const KEYWORDS: Record<string, ShellCommand> = {
  bash: { template: ['bash', '--noprofile', '--norc', '-eo', 'pipefail', '{0}'], extension: '.sh', wrap: identity },
  sh: { template: ['sh', '-e', '{0}'], extension: '.sh', wrap: identity },
  python: { template: ['python', '{0}'], extension: '.py', wrap: identity },
  pwsh: { template: ['pwsh', '-command', ". '{0}'"], extension: '.ps1', wrap: wrapPwsh },
};

/**
 * Resolves the `shell:` value (step, then job defaults, then workflow defaults; undefined when
 * none is set). Unspecified means `bash -e {0}` when bash exists in the guest, else `sh -e {0}`,
 * exactly as GitHub's runner does on Linux (note: no pipefail and no --noprofile then).
 */
export function resolveShell(shell: string | undefined, bashAvailable: boolean): ShellCommand {
  const spec = shell?.trim() ?? '';
  if (spec === '') {
    return bashAvailable
      ? { template: ['bash', '-e', '{0}'], extension: '.sh', wrap: identity }
      : { template: ['sh', '-e', '{0}'], extension: '.sh', wrap: identity };
  }
  if (!spec.includes('{0}')) {
    const known = KEYWORDS[spec];
    if (known) return known;
    throw new ShellError(
      `shell "${spec}" is not supported: use bash, sh, python, pwsh, or a custom command with {0} where the script path goes (e.g. "bash -x {0}")`,
    );
  }
  const template = splitCommandLine(spec);
  const program = template[0] ?? '';
  if (program.includes('{0}')) throw new ShellError(`shell "${spec}": the command must come before {0}`);
  const name = program.split('/').pop() ?? program;
  const extension = name === 'bash' || name === 'sh' ? '.sh' : name.startsWith('python') ? '.py' : name === 'pwsh' ? '.ps1' : '';
  return { template, extension, wrap: name === 'pwsh' ? wrapPwsh : identity };
}

/**
 * Splits a custom shell line into argv: whitespace separates arguments, double quotes group,
 * and \" is a literal quote anywhere. Single quotes are kept literally, as GitHub's process
 * invoker does, so `pwsh -command ". '{0}'"` keeps its inner quotes.
 */
export function splitCommandLine(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === '\\' && line[i + 1] === '"') {
      current += '"';
      inArg = true;
      i++;
    } else if (quoted) {
      if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') {
      quoted = true;
      inArg = true;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (quoted) throw new ShellError(`shell "${line}": unmatched double quote`);
  if (inArg) args.push(current);
  return args;
}

/** The argv to run: `{0}` replaced by the script path in every argument. */
export function commandFor(shell: ShellCommand, scriptPath: string): string[] {
  return shell.template.map((arg) => arg.split('{0}').join(scriptPath));
}
