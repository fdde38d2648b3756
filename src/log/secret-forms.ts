/**
 * The forms a secret takes in a job's output, so that the masker can hide each of them.
 *
 * Modelled on GitHub's runner (actions/runner: the job's secret values are trimmed and added,
 * each line of a multi-line value is added too, and every added value is also masked in a set
 * of encodings). forgevm registers:
 *
 * - the value as given, and trimmed (`echo "$S"` prints it without the newline it was stored with);
 * - each line of a multi-line value, trimmed: programs print line by line (a PEM key in an error);
 * - base64, standard and URL-safe alphabets, at each of the three byte alignments a value can have
 *   inside a longer encoded string (`base64("user:" + token)` for HTTP basic auth). Unlike the
 *   runner, a trailing digit that also carries bits of the *next* byte is left out, so the
 *   secret is found whatever follows it;
 * - JSON string escaping (as JSON.stringify writes it, and ASCII-only as Python's json.dumps);
 * - URI component escaping (encodeURIComponent, and RFC 3986's stricter form);
 * - XML/HTML escaping.
 *
 * Encodings are computed for the whole value only, not for each line: a 100-line key would
 * otherwise add ~1000 forms, and its lines appear as they are inside the value's JSON or XML.
 * Not covered (as on GitHub): other encodings (hex, base32, gzip…), a secret split by a
 * program's line wrapping, and the one or two bytes at the start of a shifted base64 form.
 * Masking keeps accidents out of logs; a step that wants to print its secrets can.
 */

/**
 * Forms other than the value itself shorter than this are not registered: one- to three-character
 * lines (`{`, `}`) or base64 fragments of a tiny value would mask unrelated text all over the log.
 * The value itself is always masked, whatever its length, as GitHub does.
 */
export const MIN_DERIVED_LENGTH = 4;

/** The distinct strings to mask for one secret value; empty for an empty or blank value. */
export function secretForms(value: string): string[] {
  const trimmed = value.trim();
  if (trimmed === '') return [];
  const forms = new Set<string>([trimmed]);
  const derived = (form: string) => {
    if (form.length >= MIN_DERIVED_LENGTH) forms.add(form);
  };
  if (/[\r\n]/.test(trimmed)) {
    for (const line of trimmed.split(/[\r\n]+/)) derived(line.trim());
  }
  for (const whole of new Set([value, trimmed])) {
    for (const encoded of encodedForms(whole)) derived(encoded);
  }
  return [...forms];
}

function encodedForms(text: string): string[] {
  return [...base64Forms(text), ...jsonForms(text), ...uriForms(text), xmlEscape(text)];
}

/**
 * Base64 of the value at each alignment. Skipping 0, 1 or 2 leading bytes leaves the rest
 * starting on a 3-byte group, which is how it is encoded when it sits at offset 3k, 3k+2 or
 * 3k+1 of the encoded data. Only digits made of the value's own bits are kept: ⌊8n/6⌋ of them.
 */
export function base64Forms(text: string): string[] {
  const bytes = Buffer.from(text, 'utf8');
  const forms: string[] = [];
  for (let skip = 0; skip < 3 && skip < bytes.length; skip++) {
    const rest = bytes.subarray(skip);
    const standard = rest.toString('base64').slice(0, Math.floor((rest.length * 8) / 6));
    forms.push(standard, standard.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return forms;
}

function jsonForms(text: string): string[] {
  const json = JSON.stringify(text).slice(1, -1);
  const asciiOnly = json.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return [json, asciiOnly];
}

function uriForms(text: string): string[] {
  let component: string;
  try {
    component = encodeURIComponent(text);
  } catch {
    return []; // a lone surrogate cannot be URI-encoded, nor printed so by any encoder
  }
  const strict = component.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [component, strict];
}

function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
