/**
 * A step's `uses:` value, parsed into what it names, with GitHub's forms:
 *
 * - `./path/to/dir`: a local action in the workspace;
 * - `owner/repo@ref` and `owner/repo/sub/path@ref`: an action in a repository on the actions host;
 * - `https://host/owner/repo[/path]@ref`: the same on a named host (Forgejo Actions allows this);
 * - `docker://image`: a container image, recognised so the caller can refuse it by name.
 *
 * Every part comes from a stranger's workflow file and later becomes a URL and a folder name in
 * the action cache, so each is checked against a strict character set here, once: nothing that
 * passes can start like an option, climb out of a folder with `..`, or carry credentials.
 */
import { posix } from 'node:path';

/** `uses: ./dir`: a folder in the workspace, relative, normalised, '' for the workspace root. */
export interface LocalActionRef {
  kind: 'local';
  /** The `uses:` text as written. */
  uses: string;
  /** '/'-separated, no `.`/`..` segments, no leading or trailing slash. */
  path: string;
}

/** `uses: owner/repo[/path]@ref`, or the full-URL form that names its host. */
export interface RemoteActionRef {
  kind: 'remote';
  uses: string;
  /**
   * Web root named by a full-URL reference (`https://code.forgejo.org`), without a trailing
   * slash. Absent for `owner/repo@ref`, which goes to the configured actions host.
   */
  server?: string;
  owner: string;
  repo: string;
  /** Folder of the action inside the repository: '' for the root, else '/'-separated. */
  path: string;
  /** Tag, branch, or full or short commit SHA, as written. */
  ref: string;
  /** `actions/checkout` (no sub-path, any host): forgevm checks out natively instead. */
  isCheckout: boolean;
}

/** `uses: docker://image`: not run by forgevm; kept apart so the caller names it in its error. */
export interface DockerActionRef {
  kind: 'docker';
  uses: string;
  image: string;
}

export type ActionRef = LocalActionRef | RemoteActionRef | DockerActionRef;

export type ActionRefResult = { ok: true; ref: ActionRef } | { ok: false; error: string };

const MAX_USES_LENGTH = 512;
/** GitHub: letters, digits and hyphens; Forgejo/Gitea and enterprise-managed users add `_` and `.`. */
const OWNER = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9_])?$/;
const REPO = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,99}$/;
const PATH_SEGMENT = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,254}$/;
/** A subset of git's ref names (git-check-ref-format), without characters no action uses. */
const REF = /^[A-Za-z0-9_][A-Za-z0-9._\/+-]{0,254}$/;
export const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

const FORMS = 'expected ./path, owner/repo@ref, owner/repo/path@ref, https://host/owner/repo@ref or docker://image';

export function parseActionRef(uses: string): ActionRefResult {
  const quoted = JSON.stringify(uses.length > 80 ? `${uses.slice(0, 80)}…` : uses);
  const fail = (why: string): ActionRefResult => ({ ok: false, error: `uses: ${quoted}: ${why}` });
  if (uses.length > MAX_USES_LENGTH) return fail(`too long (${uses.length} characters, at most ${MAX_USES_LENGTH})`);
  // Control characters and non-ASCII never belong in an action reference; they only hide things.
  if (uses.trim() === '') return fail(`is empty; ${FORMS}`);
  if (/[^\x21-\x7e]/.test(uses)) return fail('contains spaces, control or non-ASCII characters; an action reference is plain ASCII');
  if (uses.startsWith('./')) return parseLocal(uses, fail);
  if (uses === '.' || uses.startsWith('../') || uses.startsWith('/')) return fail('a local action must start with "./" and stay inside the workspace');
  if (/^docker:\/\//i.test(uses)) {
    const image = uses.slice('docker://'.length);
    if (image === '' || image.startsWith('-')) return fail('names no image after docker://');
    return { ok: true, ref: { kind: 'docker', uses, image } };
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(uses)) return parseUrl(uses, fail);
  return parseRepository(uses, undefined, uses, fail);
}

function parseLocal(uses: string, fail: (why: string) => ActionRefResult): ActionRefResult {
  const normal = posix.normalize(uses);
  if (normal === '..' || normal.startsWith('../')) return fail('a local action must stay inside the workspace (the path climbs out with "..")');
  const path = normal === '.' || normal === './' ? '' : normal.replace(/^\.\//, '').replace(/\/+$/, '');
  if (path.split('/').some((segment) => segment === '.git')) return fail('a local action cannot live inside .git');
  return { ok: true, ref: { kind: 'local', uses, path } };
}

function parseUrl(uses: string, fail: (why: string) => ActionRefResult): ActionRefResult {
  const at = uses.lastIndexOf('@');
  const slash = uses.indexOf('/', uses.indexOf('://') + 3);
  if (at < 0 || at < slash) return fail('a full-URL action needs a version: https://host/owner/repo@<tag, branch or SHA>');
  let url: URL;
  try {
    url = new URL(uses.slice(0, at));
  } catch {
    return fail(`not a valid URL; ${FORMS}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return fail(`only https:// (or http://) action URLs are fetched, not ${url.protocol}//`);
  if (url.username || url.password) return fail('the URL carries credentials; remove them (forgevm never sends a token to a host named in a workflow)');
  if (url.search || url.hash) return fail('the URL has a query or fragment; use https://host/owner/repo[/path]@ref');
  const rest = url.pathname.replace(/^\/+/, '');
  return parseRepository(`${rest}${uses.slice(at)}`, url.origin, uses, fail);
}

/** `owner/repo[/path]@ref`, shared by the plain and the full-URL forms. */
function parseRepository(text: string, server: string | undefined, uses: string, fail: (why: string) => ActionRefResult): ActionRefResult {
  const parts = text.split('@');
  if (parts.length === 1) {
    return fail(
      text.includes('/') ? `a remote action needs a version: ${text}@<tag, branch or SHA> (local actions start with "./")` : FORMS,
    );
  }
  if (parts.length > 2) return fail('has more than one "@"; use owner/repo[/path]@ref');
  const [location, ref] = parts as [string, string];
  const segments = location.split('/');
  if (segments.length < 2 || segments[1] === '') return fail(`names no repository; ${FORMS}`);
  const [owner, repo, ...path] = segments as [string, string, ...string[]];
  if (!OWNER.test(owner) || owner.includes('..')) {
    return fail(`owner "${owner}" is not a valid name (letters, digits, "-", "_" and "."; not starting or ending with "-" or ".")`);
  }
  if (!REPO.test(repo) || repo.includes('..') || repo === '.') return fail(`repository "${repo}" is not a valid name (letters, digits, "-", "_" and "."; at most 100)`);
  if (/\.git$/i.test(repo)) return fail(`repository "${repo}": leave out the ".git"`);
  for (const segment of path) {
    if (segment === '' || segment === '.' || segment === '..' || !PATH_SEGMENT.test(segment) || segment.includes('..')) {
      return fail(`path "${path.join('/')}" inside the repository is not valid (folder names of letters, digits, "-", "_" and ".", no "..")`);
    }
  }
  if (ref === '') return fail('has an empty version after "@"');
  if (!REF.test(ref) || /\.\.|\/\/|\/\.|@\{|\.lock(?:\/|$)|[./]$/.test(ref)) {
    return fail(`version "${ref}" is not a valid tag, branch or commit SHA`);
  }
  const isCheckout = owner.toLowerCase() === 'actions' && repo.toLowerCase() === 'checkout' && path.length === 0;
  return {
    ok: true,
    ref: { kind: 'remote', uses, ...(server ? { server } : {}), owner, repo, path: path.join('/'), ref, isCheckout },
  };
}

