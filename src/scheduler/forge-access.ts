/**
 * What the worker needs from a forge, behind one interface: workflow files at a commit,
 * changed files, a token for git, write-permission checks and the reporter. GitHub goes through
 * the App's installation clients; Forgejo/Gitea through its API v1 with a token.
 */
import type { Forge } from '../forge/event-types.ts';
import type { ForgejoClient } from '../forge/forgejo-client.ts';
import type { GithubClients } from '../forge/github-client.ts';
import { CheckRunReporter } from '../report/check-run-reporter.ts';
import { CommitStatusReporter } from '../report/commit-status-reporter.ts';
import type { ForgeReporter } from '../report/reporter.ts';
import { isWorkflowPath, repositoryPath, workflowSource, type WorkflowSource } from '../workflow/load.ts';

export interface ForgeAccess {
  forge: Forge;
  reporter: ForgeReporter;
  /** Web UI root, for `github.server_url`. */
  serverUrl: string;
  apiUrl: string;
  /** Workflow files in `folders` at `sha`, and single files (called workflows), read through the API (no clone needed). */
  workflowSource(repo: string, sha: string, installationId?: number): WorkflowSource;
  /** Files a PR changes (for `paths:` filters); undefined when unknown. */
  pullRequestFiles(repo: string, number: number, installationId?: number): Promise<string[] | undefined>;
  /** Files changed between two commits; undefined when unknown. */
  compareFiles(repo: string, base: string, head: string, installationId?: number): Promise<string[] | undefined>;
  /** A token for `git fetch`, valid for a while yet. */
  gitToken(installationId?: number): Promise<string>;
  /** Basic-auth username paired with the token. */
  gitUsername: string;
  /** True when `user` may approve runs (write access or more). */
  canWrite(repo: string, user: string, installationId?: number): Promise<boolean>;
}

function split(repo: string): { owner: string; repo: string } {
  const [owner, name] = repo.split('/') as [string, string];
  return { owner, repo: name };
}

function requireInstallation(id: number | undefined, repo: string): number {
  if (id === undefined) throw new Error(`no GitHub App installation id for ${repo}: the event carried none; reinstall the app on the repository`);
  return id;
}

/** `https://api.github.com` → `https://github.com`; GHE `https://h/api/v3` → `https://h`. */
export function githubServerUrl(apiUrl: string): string {
  if (/^https:\/\/api\.github\.com\/?$/.test(apiUrl)) return 'https://github.com';
  return apiUrl.replace(/\/api\/v3\/?$/, '');
}

export function githubAccess(clients: GithubClients): ForgeAccess {
  return {
    forge: 'github',
    reporter: new CheckRunReporter(clients),
    serverUrl: githubServerUrl(clients.apiUrl),
    apiUrl: clients.apiUrl,
    gitUsername: 'x-access-token',
    workflowSource(repo, sha, installationId) {
      const octokit = clients.forInstallation(requireInstallation(installationId, repo));
      const readFile = async (filePath: string): Promise<string | undefined> => {
        const rel = repositoryPath(filePath);
        if (rel === undefined) return undefined;
        try {
          const { data } = await octokit.rest.repos.getContent({ ...split(repo), path: rel, ref: sha });
          const file = data as { type?: string; content?: string };
          return !Array.isArray(data) && file.type === 'file' && typeof file.content === 'string' ? Buffer.from(file.content, 'base64').toString('utf8') : undefined;
        } catch (error) {
          if ((error as { status?: number }).status === 404) return undefined;
          throw error;
        }
      };
      return workflowSource(async (folders) => {
        const files = [];
        for (const folder of folders) {
          let listing: unknown;
          try {
            listing = (await octokit.rest.repos.getContent({ ...split(repo), path: folder.replace(/^\.\/|\/+$/g, ''), ref: sha })).data;
          } catch (error) {
            if ((error as { status?: number }).status === 404) continue;
            throw error;
          }
          if (!Array.isArray(listing)) continue;
          for (const entry of listing as { type: string; path: string }[]) {
            if (entry.type !== 'file' || !isWorkflowPath(entry.path, [folder])) continue;
            const { data } = await octokit.rest.repos.getContent({ ...split(repo), path: entry.path, ref: sha });
            const file = data as { content?: string; encoding?: string };
            if (typeof file.content !== 'string') continue;
            files.push({ path: entry.path, text: Buffer.from(file.content, 'base64').toString('utf8') });
          }
        }
        return files.sort((a, b) => a.path.localeCompare(b.path));
      }, readFile);
    },
    async pullRequestFiles(repo, number, installationId) {
      const octokit = clients.forInstallation(requireInstallation(installationId, repo));
      const files = await octokit.paginate(octokit.rest.pulls.listFiles, { ...split(repo), pull_number: number, per_page: 100 });
      return files.map((f) => f.filename);
    },
    async compareFiles(repo, base, head, installationId) {
      const octokit = clients.forInstallation(requireInstallation(installationId, repo));
      const { data } = await octokit.rest.repos.compareCommitsWithBasehead({ ...split(repo), basehead: `${base}...${head}` });
      return data.files?.map((f) => f.filename);
    },
    gitToken: (installationId) => clients.installationToken(requireInstallation(installationId, 'this repository')),
    async canWrite(repo, user, installationId) {
      const octokit = clients.forInstallation(requireInstallation(installationId, repo));
      const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ ...split(repo), username: user });
      return data.permission === 'admin' || data.permission === 'write' || data.permission === 'maintain';
    },
  };
}

export function forgejoAccess(client: ForgejoClient, serverUrl: string): ForgeAccess {
  return {
    forge: 'forgejo',
    reporter: new CommitStatusReporter(client),
    serverUrl: serverUrl.replace(/\/+$/, ''),
    apiUrl: client.apiUrl,
    gitUsername: 'forgevm',
    workflowSource(repo, sha) {
      const readFile = async (filePath: string): Promise<string | undefined> => {
        const rel = repositoryPath(filePath);
        const file = rel === undefined ? undefined : await client.contents(repo, rel, sha);
        return file && !Array.isArray(file) && file.type === 'file' && typeof file.content === 'string' ? Buffer.from(file.content, 'base64').toString('utf8') : undefined;
      };
      return workflowSource(async (folders) => {
        const files = [];
        for (const folder of folders) {
          const listing = await client.contents(repo, folder.replace(/^\.\/|\/+$/g, ''), sha);
          if (!Array.isArray(listing)) continue;
          for (const entry of listing) {
            if (entry.type !== 'file' || !isWorkflowPath(entry.path, [folder])) continue;
            const file = await client.contents(repo, entry.path, sha);
            if (!file || Array.isArray(file) || typeof file.content !== 'string') continue;
            files.push({ path: entry.path, text: Buffer.from(file.content, 'base64').toString('utf8') });
          }
        }
        return files.sort((a, b) => a.path.localeCompare(b.path));
      }, readFile);
    },
    pullRequestFiles: (repo, number) => client.pullFiles(repo, number),
    // Forgejo push payloads list the changed files; compare is not needed there.
    compareFiles: async () => undefined,
    gitToken: async () => client.token,
    // Fork PRs on Forgejo are never run (no approval button there), so nobody approves.
    canWrite: async () => false,
  };
}
