import { describe, expect, it } from 'vitest';
import { statusContext, statusDescription, statusState } from '../src/report/commit-status-reporter.ts';

describe('Forgejo commit statuses', () => {
  it('names the context after the workflow and job', () => {
    expect(statusContext({ workflowName: 'CI', jobName: 'test (20, debian)' })).toBe('forgevm / CI / test (20, debian)');
  });

  it('maps every conclusion onto the states Forgejo knows', () => {
    expect(statusState('success')).toBe('success');
    expect(statusState('skipped')).toBe('success');
    expect(statusState('failure')).toBe('failure');
    expect(statusState('timed_out')).toBe('failure');
    expect(statusState('cancelled')).toBe('error');
    expect(statusState('action_required')).toBe('error');
  });

  it('keeps the description to one line of at most 140 characters', () => {
    const d = statusDescription(`Failed at step "${'x'.repeat(200)}" (exit 1)\nsecond line`);
    expect(d.length).toBe(140);
    expect(d.endsWith('…')).toBe(true);
    expect(d).not.toContain('\n');
  });
});
