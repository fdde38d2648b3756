/**
 * Git for the fake forges: bare repositories on disk, commits made with plain git, and
 * smart HTTP served by `git http-backend` (CGI) behind a Hono route.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Fake Forge',
  GIT_AUTHOR_EMAIL: 'fake@forge.test',
  GIT_COMMITTER_NAME: 'Fake Forge',
  GIT_COMMITTER_EMAIL: 'fake@forge.test',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: tmpdir(),
};

export function git(args: string[], cwd?: string): string {
  return execFileSync('git', args, { cwd, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Bare repositories under `root/<owner>/<name>.git`. */
export class GitRepos {
  constructor(readonly root: string) {}

  bareDir(fullName: string): string {
    return join(this.root, `${fullName}.git`);
  }

  ensure(fullName: string): string {
    const dir = this.bareDir(fullName);
    mkdirSync(dirname(dir), { recursive: true });
    try {
      git(['rev-parse', '--git-dir'], dir);
    } catch {
      git(['init', '--quiet', '--bare', '--initial-branch=main', dir]);
    }
    return dir;
  }

  /**
   * Commits `files` (path → content, null deletes) on top of `branch` and returns the new SHA.
   * Uses a throwaway work tree so the bare repository is the only state.
   */
  commit(fullName: string, branch: string, files: Record<string, string | null>, message = 'change', from?: string): string {
    const bare = this.ensure(fullName);
    const work = mkdtempSync(join(tmpdir(), 'fake-forge-work-'));
    try {
      git(['init', '--quiet', `--initial-branch=${branch}`, work]);
      let hasParent = true;
      try {
        // A new branch starts from `from` (e.g. a PR branch off main); an existing one continues.
        const start = this.resolve(fullName, `refs/heads/${branch}`) ? branch : (from ?? branch);
        git(['fetch', '--quiet', bare, `refs/heads/${start}:refs/remotes/origin/${start}`], work);
        git(['checkout', '--quiet', '-B', branch, `origin/${start}`], work);
      } catch {
        hasParent = false;
      }
      for (const [path, content] of Object.entries(files)) {
        const full = join(work, path);
        if (content === null) {
          rmSync(full, { force: true });
        } else {
          mkdirSync(dirname(full), { recursive: true });
          writeFileSync(full, content);
        }
      }
      git(['add', '--all'], work);
      git(['commit', '--quiet', '--allow-empty', '-m', message], work);
      git(['push', '--quiet', bare, `HEAD:refs/heads/${branch}`, ...(hasParent ? [] : ['--force'])], work);
      return git(['rev-parse', 'HEAD'], work);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** Points a lightweight tag at a commit (moving it if it exists): how actions publish `@v1`. */
  tag(fullName: string, name: string, sha: string): void {
    git(['tag', '--force', name, sha], this.bareDir(fullName));
  }

  /** Content of a file at a commit, or undefined. */
  show(fullName: string, sha: string, path: string): Buffer | undefined {
    try {
      return execFileSync('git', ['cat-file', 'blob', `${sha}:${path}`], { cwd: this.bareDir(fullName), stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return undefined;
    }
  }

  /** Entries of a folder at a commit (`ls-tree`), or undefined when it is not a folder. */
  list(fullName: string, sha: string, path: string): { type: 'file' | 'dir'; name: string; path: string; sha: string }[] | undefined {
    try {
      const out = git(['ls-tree', `${sha}:${path}`], this.bareDir(fullName));
      return out
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [meta, name] = line.split('\t') as [string, string];
          const [, type, objectSha] = meta.split(' ') as [string, string, string];
          return { type: type === 'tree' ? 'dir' : 'file', name, path: path ? `${path}/${name}` : name, sha: objectSha };
        });
    } catch {
      return undefined;
    }
  }

  changedFiles(fullName: string, base: string, head: string): string[] {
    return git(['diff', '--name-only', `${base}...${head}`], this.bareDir(fullName)).split('\n').filter(Boolean);
  }

  resolve(fullName: string, ref: string): string | undefined {
    try {
      return git(['rev-parse', '--verify', `${ref}^{commit}`], this.bareDir(fullName));
    } catch {
      return undefined;
    }
  }
}

/**
 * Runs `git http-backend` for one request. `pathInfo` is `/<owner>/<name>.git/<service path>`.
 * The body is streamed in; the CGI response (headers, blank line, body) is parsed back.
 */
export async function gitHttpBackend(request: Request, projectRoot: string, pathInfo: string): Promise<Response> {
  const url = new URL(request.url);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GIT_PROJECT_ROOT: projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: pathInfo,
    REQUEST_METHOD: request.method,
    QUERY_STRING: url.search.replace(/^\?/, ''),
    CONTENT_TYPE: request.headers.get('content-type') ?? '',
    REMOTE_USER: 'fake',
    REMOTE_ADDR: '127.0.0.1',
    GIT_CONFIG_NOSYSTEM: '1',
    HOME: tmpdir(),
  };
  const encoding = request.headers.get('content-encoding');
  if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
  const protocol = request.headers.get('git-protocol');
  if (protocol) env.GIT_PROTOCOL = protocol;
  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  if (request.body) Readable.fromWeb(request.body as never).pipe(child.stdin);
  else child.stdin.end();
  child.stderr.resume();
  const chunks: Buffer[] = [];
  for await (const chunk of child.stdout) chunks.push(chunk as Buffer);
  const output = Buffer.concat(chunks);
  const split = output.indexOf('\r\n\r\n') >= 0 ? output.indexOf('\r\n\r\n') : output.indexOf('\n\n');
  const sepLength = output.indexOf('\r\n\r\n') >= 0 ? 4 : 2;
  const head = output.subarray(0, split).toString('latin1');
  const body = output.subarray(split + sepLength);
  const headers = new Headers();
  let status = 200;
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
    else headers.append(name, value);
  }
  return new Response(body, { status, headers });
}

/** Parses `Authorization: Basic base64(user:password)` and returns the password (the token). */
export function basicAuthPassword(header: string | undefined | null): string | undefined {
  const m = header?.match(/^Basic\s+(\S+)$/i);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}
