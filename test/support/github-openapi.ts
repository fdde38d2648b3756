/**
 * Validates request bodies against GitHub's official REST OpenAPI description
 * (@octokit/openapi's generated/api.github.com.json). The 13 MB file is read with fs (never
 * `require`d) once per test process; each operation's schema is compiled on first use.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';

// ajv-formats is CommonJS: under Node ESM the plugin function sits on `default`.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ?? addFormatsModule) as FormatsPlugin;

const SPEC_PATH = join(dirname(fileURLToPath(import.meta.url)), '../../node_modules/@octokit/openapi/generated/api.github.com.json');

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  literalSegments: number;
  bodySchema?: unknown;
  bodyRequired: boolean;
}

export interface ValidationOutcome {
  /** The OpenAPI path template matched, or undefined when the route is not in the description. */
  operation?: string;
  errors: string[];
}

/** Rewrites `#/components/...` refs to point into the separately registered components document. */
function rebase(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebase);
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `github-components${v}` : rebase(v);
    return out;
  }
  return node;
}

export class GithubOpenApi {
  #operations: Operation[] = [];
  #compiled = new Map<string, ValidateFunction>();
  #ajv: Ajv;

  constructor(spec: { paths: Record<string, Record<string, any>>; components: unknown }) {
    // OpenAPI 3.0 schemas carry `nullable`, `example`, `x-github`…: not strict JSON Schema.
    this.#ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, validateFormats: true });
    addFormats(this.#ajv);
    this.#ajv.addSchema({ $id: 'github-components', components: spec.components } as object, undefined, undefined, false);
    for (const [template, item] of Object.entries(spec.paths)) {
      const segments = template.split('/').filter(Boolean);
      const pattern = new RegExp(
        `^/${segments.map((s) => (/^\{[^}]+\}$/.test(s) ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`,
      );
      const literalSegments = segments.filter((s) => !s.startsWith('{')).length;
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        const bodySchema = op?.requestBody?.content?.['application/json']?.schema;
        this.#operations.push({ method: method.toUpperCase(), template, pattern, literalSegments, bodySchema, bodyRequired: op?.requestBody?.required === true });
      }
    }
    // More literal segments first: `/repos/{o}/{r}/check-runs/{id}` must not lose to a wider template.
    this.#operations.sort((a, b) => b.literalSegments - a.literalSegments);
  }

  find(method: string, path: string): Operation | undefined {
    const m = method.toUpperCase();
    return this.#operations.find((op) => op.method === m && op.pattern.test(path));
  }

  /** Validates a JSON request body for METHOD path (path without query string, without any base prefix). */
  validate(method: string, path: string, body: unknown): ValidationOutcome {
    const op = this.find(method, path);
    if (!op) return { errors: [`${method} ${path} is not an operation in GitHub's OpenAPI description`] };
    if (!op.bodySchema) return { operation: op.template, errors: [] };
    if (body === undefined) return { operation: op.template, errors: op.bodyRequired ? [`${method} ${op.template}: a JSON body is required`] : [] };
    const key = `${op.method} ${op.template}`;
    let validate = this.#compiled.get(key);
    if (!validate) {
      validate = this.#ajv.compile(rebase(op.bodySchema) as object);
      this.#compiled.set(key, validate);
    }
    if (validate(body)) return { operation: op.template, errors: [] };
    const errors = (validate.errors ?? []).map((e) => `${key}: body${e.instancePath} ${e.message ?? 'is invalid'}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
    return { operation: op.template, errors };
  }

  /** Validates a value (a fake's response) against `components.schemas[name]`. */
  validateSchema(name: string, value: unknown): string[] {
    const key = `schema ${name}`;
    let validate = this.#compiled.get(key);
    if (!validate) {
      validate = this.#ajv.compile({ $ref: `github-components#/components/schemas/${name}` });
      this.#compiled.set(key, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${name}${e.instancePath} ${e.message ?? 'is invalid'}`);
  }
}

let shared: GithubOpenApi | undefined;

/** Loaded once per test process. */
export function githubOpenApi(): GithubOpenApi {
  if (!shared) {
    // Resolve through Node in case the package is hoisted differently; read the file, never require it.
    let path = SPEC_PATH;
    try {
      path = join(dirname(createRequire(import.meta.url).resolve('@octokit/openapi/package.json')), 'generated/api.github.com.json');
    } catch {
      // The package's exports may hide package.json; the relative path above is the fallback.
    }
    shared = new GithubOpenApi(JSON.parse(readFileSync(path, 'utf8')));
  }
  return shared;
}
