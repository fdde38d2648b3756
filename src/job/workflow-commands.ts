/**
 * Workflow commands: the `::name key=value,key=value::data` lines that actions (through
 * @actions/core) and scripts print to talk to the runner. Parsed by the rules of GitHub's runner
 * so that output written for GitHub means the same here:
 *
 * - leading white space is ignored; the line must then start with `::`, and a second `::` ends
 *   the command part (a line without it is plain output);
 * - only known command names count (an unknown `::foo::` line is plain output);
 * - properties are `key=value` pairs split at commas, keys case-insensitive;
 * - data and property values are %-escaped: `%25` `%0D` `%0A` (and `%3A` `%2C` in properties).
 */

export const COMMAND_NAMES = [
  'add-mask',
  'add-matcher',
  'remove-matcher',
  'debug',
  'notice',
  'warning',
  'error',
  'group',
  'endgroup',
  'set-output',
  'save-state',
  'set-env',
  'add-path',
  'echo',
  'stop-commands',
] as const;

export type CommandName = (typeof COMMAND_NAMES)[number];

export interface WorkflowCommand {
  name: CommandName;
  /** Lower-cased keys. */
  properties: Record<string, string>;
  data: string;
}

const KNOWN = new Set<string>(COMMAND_NAMES);

function unescapeData(text: string): string {
  return text.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');
}

function unescapeProperty(text: string): string {
  return text
    .replace(/%0D/gi, '\r')
    .replace(/%0A/gi, '\n')
    .replace(/%3A/gi, ':')
    .replace(/%2C/gi, ',')
    .replace(/%25/g, '%');
}

/** The command on a line (its line break already removed), or undefined for plain output. */
export function parseWorkflowCommand(line: string): WorkflowCommand | undefined {
  const text = line.trimStart();
  if (!text.startsWith('::')) return undefined;
  const end = text.indexOf('::', 2);
  if (end < 0) return undefined;
  const info = text.slice(2, end);
  const space = info.indexOf(' ');
  const name = (space < 0 ? info : info.slice(0, space)).toLowerCase();
  if (!KNOWN.has(name)) return undefined;
  const properties: Record<string, string> = {};
  if (space >= 0) {
    for (const pair of info.slice(space + 1).trim().split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      properties[pair.slice(0, eq).trim().toLowerCase()] = unescapeProperty(pair.slice(eq + 1));
    }
  }
  return { name: name as CommandName, properties, data: unescapeData(text.slice(end + 2)) };
}

/**
 * The `::stop-commands::TOKEN` pause: until a line that is exactly `::TOKEN::`, command lines
 * are plain output (so a script can print untrusted text that looks like commands).
 */
export function resumeToken(line: string, token: string): boolean {
  return line.trim() === `::${token}::`;
}
