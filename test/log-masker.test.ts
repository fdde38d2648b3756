/** Secrets never show in logs: every occurrence, each line of a multi-line one, and their usual encodings become `***`. */
import { describe, expect, it } from 'vitest';
import { Masker } from '../src/log/masker.ts';
import { MaskingStream } from '../src/log/masking-stream.ts';
import { BytePatterns, MANY_PATTERNS, occurrences } from '../src/log/pattern-search.ts';

const masker = (...values: string[]) => {
  const m = new Masker();
  for (const v of values) m.add(v);
  return m;
};

/** A small deterministic generator, so failures reproduce. */
function random(seed: number) {
  let s = seed >>> 0;
  return (below: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % below;
  };
}

describe('Masker', () => {
  it('with nothing registered returns its input untouched', () => {
    const m = new Masker();
    m.add('');
    m.add('  \n\t ');
    expect(m.isEmpty).toBe(true);
    const line = 'nothing to hide here';
    expect(m.mask(line)).toBe(line);
    const bytes = Buffer.from(line);
    expect(m.maskBuffer(bytes)).toBe(bytes);
  });

  it('replaces every occurrence, and a value stored with a trailing newline as printed without it', () => {
    const m = masker('hunter2-token-9f8e\n');
    expect(m.mask('login hunter2-token-9f8e then hunter2-token-9f8e again')).toBe('login *** then *** again');
    expect(m.mask('no secret here')).toBe('no secret here');
    expect(m.maskBuffer(Buffer.from('x=hunter2-token-9f8e;')).toString()).toBe('x=***;');
  });

  it('masks values of any length as given, as GitHub does', () => {
    expect(masker('ab').mask('cab abc')).toBe('c*** ***c');
  });

  it('masks each line of a multi-line secret on its own, and the whole value as one', () => {
    const key = '-----BEGIN KEY-----\nMIIEowIBAAKCAQEA7bq9\nZ3VhcmRlZCBzZWNyZXQ=\n-----END KEY-----\n';
    const m = masker(key);
    expect(m.mask('error near MIIEowIBAAKCAQEA7bq9 in file')).toBe('error near *** in file');
    expect(m.mask('Z3VhcmRlZCBzZWNyZXQ=')).toBe('***');
    expect(m.mask(key)).toBe('***');
  });

  it('does not register one- to three-character lines (a JSON secret would hide every brace)', () => {
    const m = masker('{\n  "user": "deploy-bot",\n  "password": "p4ss-w0rd-x"\n}');
    expect(m.mask('function main() {')).toBe('function main() {');
    expect(m.mask('  "password": "p4ss-w0rd-x"')).toBe('  ***');
  });

  it('hides overlapping and touching secrets as one ***, so the longest stretch is hidden whole', () => {
    const m = masker('secret', 'secret-longer', 'abcdef', 'defghi', 'XYZ1', '2XYZ');
    expect(m.mask('a secret-longer b')).toBe('a *** b');
    expect(m.mask('xx abcdefghi yy')).toBe('xx *** yy');
    expect(m.mask('XYZ12XYZ')).toBe('***');
    expect(m.mask('secretsecret')).toBe('***');
  });

  it('masks the base64 forms at every alignment inside longer encoded data, both alphabets', () => {
    const secret = 'gh5_Tok3n/with+chars?';
    const m = masker(secret);
    for (let prefix = 0; prefix < 6; prefix++) {
      for (const alphabet of ['base64', 'base64url'] as const) {
        const encoded = Buffer.from(`${'u'.repeat(prefix)}${secret}:tail`).toString(alphabet);
        // The digits made only of the secret's bits, from the first whole 3-byte group it starts.
        const first = (Math.ceil(prefix / 3) * 3 * 4) / 3;
        const last = Math.floor(((prefix + secret.length) * 8) / 6);
        expect(m.mask(`Authorization: Basic ${encoded}`), `${alphabet}, ${prefix} bytes before`).toBe(
          `Authorization: Basic ${encoded.slice(0, first)}***${encoded.slice(last)}`,
        );
      }
    }
  });

  it('masks JSON-, URI- and XML-escaped forms', () => {
    const m = masker('p@ss "w/rd" & <ü>');
    expect(m.mask(JSON.stringify({ password: 'p@ss "w/rd" & <ü>' }))).toBe('{"password":"***"}');
    expect(m.mask('{"password": "p@ss \\"w/rd\\" & <\\u00fc>"}')).toBe('{"password": "***"}'); // Python's json.dumps
    expect(m.mask(`https://example.com/login?pw=${encodeURIComponent('p@ss "w/rd" & <ü>')}&x=1`)).toBe('https://example.com/login?pw=***&x=1');
    expect(m.mask('<password>p@ss &quot;w/rd&quot; &amp; &lt;ü&gt;</password>')).toBe('<password>***</password>');
    expect(masker("it's(me)").mask("q=it%27s%28me%29")).toBe('q=***');
  });

  it('masks UTF-8 bytes the same as text', () => {
    const m = masker('pässwörd-ü');
    expect(m.maskBuffer(Buffer.from('pw: pässwörd-ü.')).toString()).toBe('pw: ***.');
    expect(m.mask('pw: pässwörd-ü.')).toBe('pw: ***.');
  });

  it('gives the same answer with many patterns (the filtered search) as with one indexOf each', () => {
    const lines = Array.from({ length: 150 }, (_, i) => `k${i}-${'ZmFrZQ'.repeat(1 + (i % 5))}`);
    const m = masker(lines.join('\n'));
    expect(m.patterns.length).toBeGreaterThan(MANY_PATTERNS);
    expect(m.mask(`a ${lines[7]} b ${lines[149]}`)).toBe('a *** b ***');
    const next = random(7);
    for (let round = 0; round < 200; round++) {
      const patterns = new BytePatterns();
      const list: Buffer[] = [];
      for (let i = 0; i < MANY_PATTERNS + 1 + next(20); i++) {
        const p = Buffer.from(Array.from({ length: 1 + next(7) }, () => 'abc'.charCodeAt(next(3))));
        patterns.add(p);
        list.push(p);
      }
      const data = Buffer.from(Array.from({ length: next(300) }, () => 'abcd'.charCodeAt(next(4))));
      expect(patterns.find(data)).toEqual(occurrences(data, list));
    }
  });
});

describe('MaskingStream', () => {
  it('passes chunks through as they are when there are no secrets', () => {
    const stream = new MaskingStream(new Masker());
    const chunk = Buffer.from('partial line without newline');
    expect(stream.write(chunk)).toBe(chunk);
    expect(stream.end().length).toBe(0);
  });

  it('shows a partial line at once, holding back only a tail that could start a secret', () => {
    const stream = new MaskingStream(masker('hunter22'));
    expect(stream.write(Buffer.from('progress 45%')).toString()).toBe('progress 45%');
    expect(stream.write(Buffer.from(' waiting for hun')).toString()).toBe(' waiting for ');
    expect(stream.heldBytes).toBe(3);
    expect(stream.write(Buffer.from('ter22 done\nhu')).toString()).toBe('*** done\n');
    expect(stream.end().toString()).toBe('hu');
  });

  it('gives the same output as masking the whole stream at once, however it is cut', () => {
    const next = random(42);
    for (let round = 0; round < 300; round++) {
      const values = Array.from({ length: 1 + next(4) }, () => Array.from({ length: 2 + next(6) }, () => 'xyz'[next(3)]).join(''));
      const m = masker(...values);
      const whole = Buffer.from(Array.from({ length: next(400) }, () => 'xyz\n'[next(4)]).join(''));
      const stream = new MaskingStream(m);
      const out: Buffer[] = [];
      for (let at = 0; at < whole.length; ) {
        const size = 1 + next(40);
        out.push(stream.write(whole.subarray(at, at + size)));
        at += size;
      }
      out.push(stream.end());
      expect(Buffer.concat(out).toString(), `values ${JSON.stringify(values)}`).toBe(m.maskBuffer(whole).toString());
    }
  });

  it('releases a long run of back-to-back matches instead of holding it forever', () => {
    const stream = new MaskingStream(masker('a'));
    let shown = 0;
    for (let i = 0; i < 40; i++) shown += stream.write(Buffer.alloc(4096, "a")).length;
    expect(shown).toBeGreaterThan(0);
    expect(stream.heldBytes).toBeLessThanOrEqual(64 * 1024 + 4096);
    expect(stream.end().toString()).toMatch(/^(\*\*\*)?$/);
  });

  it('streams 100 MiB of step output quickly (throughput printed, not asserted)', () => {
    const line = Buffer.from('npm http fetch GET 200 https://registry.npmjs.org/some-package/-/some-package-1.2.3.tgz 123ms (cache miss)\n');
    const chunk = Buffer.alloc(32 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = line[i % line.length]!;
    const mib = 100;
    const cases: Array<[string, Masker]> = [
      ['no secrets', new Masker()],
      ['3 secrets', masker('ghp_0123456789abcdefABCDEF0123456789abcd', 'hunter2-password', 'AKIAIOSFODNN7EXAMPLE')],
      ['a 100-line key', masker(Array.from({ length: 100 }, (_, i) => `${i}`.padStart(4, '0') + 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7'.slice(0, 60)).join('\n'))],
    ];
    for (const [name, m] of cases) {
      const stream = new MaskingStream(m);
      const started = performance.now();
      let bytes = 0;
      for (let i = 0; i < (mib * 1024 * 1024) / chunk.length; i++) bytes += stream.write(chunk).length;
      bytes += stream.end().length;
      const seconds = (performance.now() - started) / 1000;
      expect(bytes).toBe(mib * 1024 * 1024);
      console.log(`masking ${mib} MiB, ${name} (${m.patterns.length} patterns): ${(mib / seconds).toFixed(0)} MiB/s`);
    }
  });
});
