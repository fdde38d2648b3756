/**
 * The `# expect-log-…:` and `# expect-summary-has:` headers of the fixtures in workflows/actions
 * (see its README): what a job's log must show, must not show, and in which order. They say what
 * a job's own shell tests cannot see: masking, and which pre/post stages ran and when.
 *
 *     # expect-log-has: <job key>: <text>, <text>, …
 *     # expect-log-lacks: <job key>: <text>, …
 *     # expect-log-order: <job key>: <first>, <second>, …     (each after the one before)
 *     # expect-summary-has: <job key>: <text>, …              (the job's GITHUB_STEP_SUMMARY)
 *
 * Any of them may appear on several lines. Texts never contain ", ".
 */

export type LogCheckKind = 'has' | 'lacks' | 'order';

export interface LogCheck {
  job: string;
  kind: LogCheckKind;
  texts: string[];
}

function checksOf<K extends string>(text: string, header: string, kind: K): Array<{ job: string; kind: K; texts: string[] }> {
  const checks: Array<{ job: string; kind: K; texts: string[] }> = [];
  for (const match of text.matchAll(new RegExp(`^# ${header}: (.+?): (.+)$`, 'gm'))) {
    checks.push({ job: match[1]!.trim(), kind, texts: match[2]!.split(', ').map((t) => t.trim()) });
  }
  return checks;
}

export function logChecksOf(text: string): LogCheck[] {
  return [...checksOf(text, 'expect-log-has', 'has'), ...checksOf(text, 'expect-log-lacks', 'lacks'), ...checksOf(text, 'expect-log-order', 'order')];
}

/** `# expect-summary-has:` lines: job key → texts its step summaries must contain. */
export function summaryChecksOf(text: string): Array<{ job: string; texts: string[] }> {
  return checksOf(text, 'expect-summary-has', 'has').map(({ job, texts }) => ({ job, texts }));
}

/** One line per check that does not hold; empty when all hold. */
export function logProblems(checks: LogCheck[], logs: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  for (const { job, kind, texts } of checks) {
    const log = logs[job];
    if (log === undefined) {
      problems.push(`${job}: no log (the job did not run?)`);
      continue;
    }
    if (kind === 'has') {
      for (const t of texts) if (!log.includes(t)) problems.push(`${job}: log lacks "${t}"`);
    } else if (kind === 'lacks') {
      for (const t of texts) if (log.includes(t)) problems.push(`${job}: log shows "${t}"`);
    } else {
      let from = 0;
      for (const t of texts) {
        const at = log.indexOf(t, from);
        if (at === -1) {
          problems.push(`${job}: "${t}" is not in the log after "${texts[texts.indexOf(t) - 1] ?? '(start)'}" (expected order: ${texts.join(' → ')})`);
          break;
        }
        from = at + t.length;
      }
    }
  }
  return problems;
}
