/**
 * Behaviour every Store backend must have. Run by test/store-sqlite.test.ts; a PostgreSQL
 * backend calls describeStoreContract with its own factory.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewDelivery, Store } from '../../src/store/store.ts';
import type { PushEvent } from '../../src/forge/event-types.ts';

export interface StoreFactory {
  /** A fresh, empty store. */
  make(): Promise<Store>;
  /** The same store as a new process would open it after a crash (same data). Optional. */
  reopen?(store: Store): Promise<Store>;
}

const push = (sha: string, name = 'hello'): PushEvent => ({
  kind: 'push',
  forge: 'github',
  repo: { fullName: `octo/${name}`, owner: 'octo', name, cloneUrl: `https://github.com/octo/${name}.git` },
  ref: 'refs/heads/main',
  before: '0'.repeat(40),
  sha,
  created: false,
  forced: false,
  changedFiles: ['README.md'],
  actor: 'octo',
});

export function delivery(id: string, extra: Partial<NewDelivery> = {}): NewDelivery {
  return {
    id,
    forge: 'github',
    event: 'push',
    action: null,
    normalized: push('a'.repeat(40)),
    payload: JSON.stringify({ ref: 'refs/heads/main', id }),
    ...extra,
  };
}

const newRun = {
  deliveryId: null,
  forge: 'github' as const,
  repo: 'octo/hello',
  sha: 'b'.repeat(40),
  ref: 'refs/heads/main',
  event: 'push',
  workflowFile: '.forgevm/workflows/ci.yml',
  workflowName: 'CI',
};

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`${name} store`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await factory.make();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('deliveries', () => {
      it('stores a delivery once and reports duplicates by id', async () => {
        expect(await store.insertDelivery(delivery('d1'))).toEqual({ inserted: true });
        expect(await store.insertDelivery(delivery('d1', { payload: '{"other":true}' }))).toEqual({ inserted: false });
        const stored = await store.getDelivery('d1');
        expect(stored).toMatchObject({ id: 'd1', forge: 'github', event: 'push', status: 'pending', attempts: 0, error: null });
        expect(stored?.payload).toBe(JSON.stringify({ ref: 'refs/heads/main', id: 'd1' }));
        expect(stored?.normalized).toEqual(push('a'.repeat(40)));
        expect(await store.countDeliveries()).toBe(1);
      });

      it('keeps a payload given as the raw bytes, and reads it back as the same text', async () => {
        const text = JSON.stringify({ ref: 'refs/heads/main', message: 'fix: ünïcode ✓' });
        expect(await store.insertDelivery(delivery('bytes', { payload: Buffer.from(text, 'utf8') }))).toEqual({ inserted: true });
        expect((await store.getDelivery('bytes'))?.payload).toBe(text);
        // A Uint8Array that is a window into a larger buffer is stored as exactly that window.
        const padded = Buffer.from(`xx${text}yy`, 'utf8');
        await store.insertDelivery(delivery('window', { payload: padded.subarray(2, padded.length - 2) }));
        expect((await store.getDelivery('window'))?.payload).toBe(text);
      });

      it('dedupes a replay with a new id by its dedupe key', async () => {
        const key = 'forgejo:octo/hello:push:refs/heads/main:' + 'c'.repeat(40);
        expect(await store.insertDelivery(delivery('f1', { forge: 'forgejo', dedupeKey: key }))).toEqual({ inserted: true });
        expect(await store.insertDelivery(delivery('f2', { forge: 'forgejo', dedupeKey: key }))).toEqual({ inserted: false });
        expect(await store.insertDelivery(delivery('f3', { forge: 'forgejo', dedupeKey: key + 'x' }))).toEqual({ inserted: true });
        expect(await store.getDelivery('f2')).toBeNull();
        // Deliveries without a key never collide with each other.
        await store.insertDelivery(delivery('g1'));
        await store.insertDelivery(delivery('g2'));
        expect(await store.countDeliveries()).toBe(4);
      });

      it('inserts concurrent duplicates exactly once', async () => {
        const results = await Promise.all(Array.from({ length: 50 }, () => store.insertDelivery(delivery('same'))));
        expect(results.filter((r) => r.inserted)).toHaveLength(1);
        expect(await store.countDeliveries()).toBe(1);
      });

      it('claims pending deliveries oldest first, each once', async () => {
        for (const id of ['a', 'b', 'c']) await store.insertDelivery(delivery(id, { normalized: push('a'.repeat(40), `repo-${id}`) }));
        await store.insertDelivery(delivery('done-already', { status: 'done' }));
        const claimed = await Promise.all([store.claimNextDelivery(), store.claimNextDelivery(), store.claimNextDelivery(), store.claimNextDelivery()]);
        expect(claimed.map((d) => d?.id ?? null)).toEqual(['a', 'b', 'c', null]);
        expect(claimed[0]).toMatchObject({ status: 'processing', attempts: 1 });
        expect(await store.countDeliveries('processing')).toBe(3);
      });

      it('marks deliveries with a status and error', async () => {
        await store.insertDelivery(delivery('m1'));
        await store.markDelivery('m1', 'failed', 'workflow file does not parse');
        expect(await store.getDelivery('m1')).toMatchObject({ status: 'failed', error: 'workflow file does not parse' });
        await store.markDelivery('m1', 'done');
        expect(await store.getDelivery('m1')).toMatchObject({ status: 'done', error: null });
        await expect(store.markDelivery('nope', 'done')).rejects.toThrow(/no delivery nope/);
      });

      it('claims one delivery per repository at a time, in order', async () => {
        await store.insertDelivery(delivery('x1'));
        await store.insertDelivery(delivery('x2'));
        await store.insertDelivery(delivery('other', { normalized: push('a'.repeat(40), 'other') }));
        expect((await store.getDelivery('x1'))?.repo).toBe('octo/hello');
        expect((await store.claimNextDelivery())?.id).toBe('x1');
        // x2 waits for x1 (same repository); the other repository goes ahead.
        expect((await store.claimNextDelivery())?.id).toBe('other');
        expect(await store.claimNextDelivery()).toBeNull();
        await store.markDelivery('x1', 'done');
        expect((await store.claimNextDelivery())?.id).toBe('x2');
      });

      it('sets a transient failure aside until its retry is due, counting failures', async () => {
        await store.insertDelivery(delivery('t1'));
        await store.insertDelivery(delivery('t2', { normalized: push('a'.repeat(40), 'fresh') }));
        await store.claimNextDelivery();
        const later = new Date(Date.now() + 60_000).toISOString();
        const deferred = await store.deferDelivery('t1', { nextAttemptAt: later, error: 'network error reaching api.github.com: connect ECONNREFUSED' });
        expect(deferred).toMatchObject({ status: 'pending', failures: 1, nextAttemptAt: later, lastError: expect.stringMatching(/ECONNREFUSED/), error: null });
        expect(deferred.failingSince).not.toBeNull();
        // The fresh delivery is not held up by the one waiting for its retry.
        expect((await store.claimNextDelivery())?.id).toBe('t2');
        expect(await store.claimNextDelivery()).toBeNull();
        const retried = await store.claimNextDelivery(new Date(Date.now() + 61_000).toISOString());
        expect(retried).toMatchObject({ id: 't1', status: 'processing', failures: 1, attempts: 2 });
        const again = await store.deferDelivery('t1', { nextAttemptAt: later, error: '502 Bad Gateway' });
        expect(again).toMatchObject({ failures: 2, failingSince: deferred.failingSince, lastError: '502 Bad Gateway' });
        // Put back by a shutdown: pending, nothing counted.
        await store.markDelivery('t2', 'pending');
        expect(await store.getDelivery('t2')).toMatchObject({ status: 'pending', failures: 0 });
      });

      it('requeues a failed delivery on redelivery, by id or by dedupe key, and nothing else', async () => {
        await store.insertDelivery(delivery('f-1'));
        await store.insertDelivery(delivery('fj-1', { forge: 'forgejo', dedupeKey: 'forgejo:octo/x:push:main:abc', normalized: push('a'.repeat(40), 'x') }));
        await store.insertDelivery(delivery('ok-1', { normalized: push('a'.repeat(40), 'ok') }));
        for (let i = 0; i < 3; i++) await store.claimNextDelivery();
        await store.deferDelivery('f-1', { nextAttemptAt: new Date().toISOString(), error: 'timeout' });
        await store.markDelivery('f-1', 'failed', 'gave up');
        await store.markDelivery('fj-1', 'failed', 'gave up');
        await store.markDelivery('ok-1', 'done');
        expect(await store.requeueDelivery('f-1')).toBe('f-1');
        expect(await store.getDelivery('f-1')).toMatchObject({ status: 'pending', failures: 0, failingSince: null, nextAttemptAt: null });
        expect(await store.requeueDelivery('fj-2', 'forgejo:octo/x:push:main:abc')).toBe('fj-1');
        expect(await store.requeueDelivery('ok-1')).toBeNull();
        expect(await store.requeueDelivery('missing')).toBeNull();
        // A pending one waiting for its retry is made due now; one already due is left alone.
        expect(await store.requeueDelivery('f-1')).toBeNull();
        await store.claimNextDelivery();
        await store.deferDelivery('f-1', { nextAttemptAt: new Date(Date.now() + 3_600_000).toISOString(), error: 'timeout' });
        expect(await store.requeueDelivery('f-1')).toBe('f-1');
        expect(await store.getDelivery('f-1')).toMatchObject({ status: 'pending', nextAttemptAt: null, failures: 1 });
      });

      it('prunes finished deliveries: deletes those no run uses, strips the payload of the others', async () => {
        const old = '2026-01-01T00:00:00.000Z';
        await store.insertDelivery(delivery('old-ignored', { status: 'ignored', receivedAt: old }));
        await store.insertDelivery(delivery('old-run', { receivedAt: old }));
        await store.insertDelivery(delivery('old-busy', { receivedAt: old, normalized: push('a'.repeat(40), 'busy') }));
        await store.insertDelivery(delivery('old-pending', { receivedAt: old, normalized: push('a'.repeat(40), 'waiting') }));
        await store.insertDelivery(delivery('new-done', { status: 'done' }));
        await store.markDelivery('old-run', 'done');
        await store.markDelivery('old-busy', 'done');
        const run = await store.createRun({ ...newRun, deliveryId: 'old-run' });
        const [finished] = await store.createJobs(run.id, [{ instanceKey: 'a', displayName: 'a', label: 'x' }]);
        await store.updateJob(finished!.id, { status: 'completed', conclusion: 'success' });
        const busy = await store.createRun({ ...newRun, deliveryId: 'old-busy' });
        await store.createJobs(busy.id, [{ instanceKey: 'a', displayName: 'a', label: 'x' }]);

        expect(await store.pruneDeliveries('2026-06-01T00:00:00.000Z')).toEqual({ deleted: 1, stripped: 1 });
        expect(await store.getDelivery('old-ignored')).toBeNull();
        const stripped = await store.getDelivery('old-run');
        expect(stripped).toMatchObject({ status: 'done', payload: '', normalized: push('a'.repeat(40)) });
        expect(stripped?.payloadDeletedAt).not.toBeNull();
        // Unfinished jobs, a pending delivery and a recent one keep everything.
        expect((await store.getDelivery('old-busy'))?.payload).not.toBe('');
        expect((await store.getDelivery('old-pending'))?.payload).not.toBe('');
        expect((await store.getDelivery('new-done'))?.payload).not.toBe('');
        expect(await store.pruneDeliveries('2026-06-01T00:00:00.000Z')).toEqual({ deleted: 0, stripped: 0 });
      });

      it('requeues deliveries left processing', async () => {
        await store.insertDelivery(delivery('r1'));
        await store.insertDelivery(delivery('r2'));
        await store.claimNextDelivery();
        expect(await store.requeueStaleProcessing()).toBe(1);
        const again = await store.claimNextDelivery();
        expect(again).toMatchObject({ id: 'r1', attempts: 2 });
        expect((await store.listDeliveries({ status: 'pending' })).map((d) => d.id)).toEqual(['r2']);
      });
    });

    describe('installations', () => {
      it('tracks selected repositories and finds the installation of a repo', async () => {
        await store.upsertInstallation({ id: 7, account: 'octo', repos: ['octo/a', 'octo/b'] });
        expect(await store.getInstallation(7)).toMatchObject({ id: 7, account: 'octo', repos: ['octo/a', 'octo/b'], suspended: false });
        await store.updateInstallationRepos(7, 'octo', { added: ['octo/c'], removed: ['octo/a'] });
        expect((await store.getInstallation(7))?.repos).toEqual(['octo/b', 'octo/c']);
        expect((await store.findInstallationForRepo('octo/c'))?.id).toBe(7);
        expect(await store.findInstallationForRepo('octo/a')).toBeNull();
        expect(await store.findInstallationForRepo('other/c')).toBeNull();
      });

      it('covers all repositories of the account when repos is null', async () => {
        await store.upsertInstallation({ id: 8, account: 'Acme', repos: null });
        expect((await store.findInstallationForRepo('acme/anything'))?.id).toBe(8);
        expect((await store.getInstallation(8))?.repos).toBeNull();
        await store.setInstallationSuspended(8, true);
        expect((await store.getInstallation(8))?.suspended).toBe(true);
        await store.deleteInstallation(8);
        expect(await store.getInstallation(8)).toBeNull();
        expect(await store.findInstallationForRepo('acme/anything')).toBeNull();
      });

      it('creates an unknown installation from a repositories change', async () => {
        await store.updateInstallationRepos(9, 'octo', { added: ['octo/x'], removed: [], selection: 'selected' });
        expect(await store.getInstallation(9)).toMatchObject({ account: 'octo', repos: ['octo/x'] });
        await store.updateInstallationRepos(9, 'octo', { added: [], removed: [], selection: 'all' });
        expect((await store.getInstallation(9))?.repos).toBeNull();
      });
    });

    describe('runs and jobs', () => {
      it('numbers runs per repo and workflow, keeping the number on re-runs', async () => {
        await store.insertDelivery(delivery('run-d'));
        const r1 = await store.createRun({ ...newRun, deliveryId: 'run-d' });
        const r2 = await store.createRun({ ...newRun, sha: 'c'.repeat(40) });
        const other = await store.createRun({ ...newRun, workflowFile: '.forgevm/workflows/lint.yml' });
        const rerun = await store.createRun({ ...newRun, attempt: 2 });
        expect([r1.runNumber, r2.runNumber, other.runNumber, rerun.runNumber]).toEqual([1, 2, 1, 1]);
        expect(rerun.attempt).toBe(2);
        expect(r1).toMatchObject({ deliveryId: 'run-d', repo: 'octo/hello', installationId: null, attempt: 1 });
        expect(await store.getRun(r1.id)).toEqual(r1);
        expect((await store.listRunsByDelivery('run-d')).map((r) => r.id)).toEqual([r1.id]);
        expect((await store.listRunsBySha('octo/hello', 'b'.repeat(40))).map((r) => r.id)).toEqual([r1.id, other.id, rerun.id]);
      });

      it('creates jobs queued with unique external ids and finds them', async () => {
        const run = await store.createRun(newRun);
        const jobs = await store.createJobs(run.id, [
          { instanceKey: 'build', displayName: 'build', label: 'debian-12', spec: { needs: [] } },
          { instanceKey: 'test (20)', displayName: 'test (20)', label: 'debian-12', externalId: 'ext-1', approval: 'pending' },
        ]);
        expect(jobs).toHaveLength(2);
        expect(jobs[0]).toMatchObject({ runId: run.id, status: 'queued', conclusion: null, approval: 'not_required', spec: { needs: [] }, checkRunId: null });
        expect(jobs[0]!.externalId).toMatch(/\S{8,}/);
        expect(jobs[1]).toMatchObject({ externalId: 'ext-1', approval: 'pending', spec: null });
        expect((await store.findJobByExternalId('ext-1'))?.id).toBe(jobs[1]!.id);
        expect(await store.findJobByExternalId('missing')).toBeNull();
        expect((await store.listJobsByRun(run.id)).map((j) => j.instanceKey)).toEqual(['build', 'test (20)']);
      });

      it('rejects a duplicate external id and rolls back the whole batch', async () => {
        const run = await store.createRun(newRun);
        await store.createJobs(run.id, [{ instanceKey: 'a', displayName: 'a', label: 'x', externalId: 'dup' }]);
        const run2 = await store.createRun(newRun);
        await expect(
          store.createJobs(run2.id, [
            { instanceKey: 'b', displayName: 'b', label: 'x' },
            { instanceKey: 'c', displayName: 'c', label: 'x', externalId: 'dup' },
          ]),
        ).rejects.toThrow();
        expect(await store.listJobsByRun(run2.id)).toEqual([]);
      });

      it('updates jobs and moves them between statuses with compare-and-set', async () => {
        const run = await store.createRun(newRun);
        const [job] = await store.createJobs(run.id, [{ instanceKey: 'build', displayName: 'build', label: 'debian-12' }]);
        const started = await store.transitionJob(job!.id, 'queued', { status: 'in_progress', startedAt: '2026-01-01T00:00:00.000Z', checkRunId: 42 });
        expect(started).toMatchObject({ status: 'in_progress', checkRunId: 42, startedAt: '2026-01-01T00:00:00.000Z' });
        expect(await store.transitionJob(job!.id, 'queued', { status: 'in_progress' })).toBeNull();
        expect((await store.listJobsByStatus('in_progress')).map((j) => j.id)).toEqual([job!.id]);
        const result = {
          conclusion: 'success' as const,
          steps: [],
          outputs: { v: '1' },
          logPath: '/tmp/x.log',
          startedAt: '2026-01-01T00:00:00.000Z',
          durationMs: 5,
        };
        const done = await store.updateJob(job!.id, { status: 'completed', conclusion: 'success', result, completedAt: '2026-01-01T00:00:05.000Z' });
        expect(done).toMatchObject({ status: 'completed', conclusion: 'success', result, checkRunId: 42 });
        expect(await store.listJobsByStatus('in_progress')).toEqual([]);
        expect((await store.updateJob(job!.id, { result: null })).result).toBeNull();
        await expect(store.updateJob(99999, { status: 'completed' })).rejects.toThrow(/no job 99999/);
      });

      it('keeps a completed job\'s unconfirmed final report across a reopen, until it is cleared', async () => {
        const run = await store.createRun(newRun);
        const [sent, unsent, other] = await store.createJobs(run.id, [
          { instanceKey: 'sent', displayName: 'sent', label: 'x' },
          { instanceKey: 'unsent', displayName: 'unsent', label: 'x' },
          { instanceKey: 'other', displayName: 'other', label: 'x' },
        ]);
        expect(unsent!.pendingReport).toBeNull();
        const report = {
          conclusion: 'failure' as const,
          output: { title: 'Failed: make', summary: 'exit 2', text: 'make: *** [all] Error 2' },
          annotations: [{ path: '.forgevm/workflows/ci.yml', start_line: 1, end_line: 1, annotation_level: 'failure' as const, message: 'make failed' }],
          completedAt: '2026-01-01T00:00:05.000Z',
        };
        await store.updateJob(sent!.id, { status: 'completed', conclusion: 'failure', pendingReport: report });
        await store.updateJob(unsent!.id, { status: 'completed', conclusion: 'failure', pendingReport: report });
        await store.updateJob(other!.id, { status: 'completed', conclusion: 'success' });
        await store.updateJob(sent!.id, { pendingReport: null });
        let s = store;
        if (factory.reopen) s = store = await factory.reopen(store);
        const pending = await s.listJobsWithPendingReports();
        expect(pending.map((j) => [j.id, j.pendingReport])).toEqual([[unsent!.id, report]]);
        expect((await s.getJob(sent!.id))?.pendingReport).toBeNull();
      });

      it('returns in-progress jobs with their VMs after a restart, leaving queued ones', async () => {
        const run = await store.createRun(newRun);
        const [a, b, c] = await store.createJobs(run.id, [
          { instanceKey: 'a', displayName: 'a', label: 'x' },
          { instanceKey: 'b', displayName: 'b', label: 'x' },
          { instanceKey: 'c', displayName: 'c', label: 'x' },
        ]);
        await store.updateJob(a!.id, { status: 'in_progress' });
        await store.updateJob(b!.id, { status: 'in_progress' });
        await store.recordVm({ jobId: a!.id, pid: 4242, dir: '/state/vms/a' });
        let s = store;
        if (factory.reopen) s = store = await factory.reopen(store);
        const recovered = await s.recoverAfterRestart();
        expect(recovered.map((r) => [r.job.id, r.vm?.pid ?? null, r.vm?.dir ?? null])).toEqual([
          [a!.id, 4242, '/state/vms/a'],
          [b!.id, null, null],
        ]);
        expect((await s.listJobsByStatus('queued')).map((j) => j.id)).toEqual([c!.id]);
        await s.removeVm(a!.id);
        expect(await s.listVms()).toEqual([]);
      });
    });

    it('answers ping while open, and reports itself healthy after a real write', async () => {
      expect(await store.ping()).toBe(true);
      expect(await store.health()).toEqual({ ok: true });
    });
  });
}
