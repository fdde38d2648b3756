/**
 * The `# expect…:` headers of the fixtures in workflows/semantics (see its README), shared by the
 * host run (LocalGuest) and the VM run (`forgevm run`).
 */

export interface Expectations {
  /** Instance key (`job` or `job (a, b)`) → conclusion. */
  jobs: Record<string, string>;
  /** Job id → number of matrix instances. */
  instances: Record<string, number>;
  /** Conclusion of the whole run. */
  run: string;
}

/**
 * Reads the header; `job[a, b]` names the matrix instance `job (a, b)`, and `call[x] / job` a
 * job of a called workflow (`call (x) / job`).
 */
export function expectationsOf(text: string): Expectations {
  const line = (name: string) => new RegExp(`^# ${name}: (.*)$`, 'm').exec(text)?.[1] ?? '';
  const pairs = (s: string) =>
    s
      .split(/,\s*(?![^[]*\])/)
      .filter(Boolean)
      .map((p) => p.split('=').map((x) => x.trim()) as [string, string]);
  const jobs = Object.fromEntries(pairs(line('expect')).map(([k, v]) => [k.replace(/\[([^\]]*)\]/g, ' ($1)'), v]));
  const instances = Object.fromEntries(pairs(line('expect-instances')).map(([k, v]) => [k, Number(v)]));
  return { jobs, instances, run: line('expect-run') };
}

/** Instance keys of one job: `job` itself or `job (…)`. */
export function instancesOf(keys: Iterable<string>, job: string): string[] {
  return [...keys].filter((k) => k === job || k.startsWith(`${job} (`));
}
