import { describe, expect, it } from 'vitest';
import { RunnerLimits } from '../src/scheduler/limits.ts';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('runner limits', () => {
  it('caps VMs globally and per runs-on label, first come first served', async () => {
    const limits = new RunnerLimits(3, { big: 1 });
    const order: string[] = [];
    const take = (label: string, name: string) => limits.acquire(label).then((release) => (order.push(name), release));
    const big1 = await take('big', 'big1');
    const small1 = await take('tiny', 'small1');
    const big2 = take('big', 'big2');
    const small2 = take('tiny', 'small2');
    await tick();
    // big2 waits for the label cap, small2 is not held up behind it.
    expect(order).toEqual(['big1', 'small1', 'small2']);
    expect(limits.running).toBe(3);
    const small3 = take('tiny', 'small3');
    await tick();
    expect(order).toHaveLength(3);
    (await small2)();
    await tick();
    // A global slot is free, but big is still capped at one: small3 goes.
    expect(order).toEqual(['big1', 'small1', 'small2', 'small3']);
    big1();
    await tick();
    expect(order.at(-1)).toBe('big2');
    expect(limits.runningFor('big')).toBe(1);
    small1();
    (await small3)();
    (await big2)();
    expect(limits.running).toBe(0);
  });

  it('lets a waiting job be cancelled', async () => {
    const limits = new RunnerLimits(1);
    const release = await limits.acquire('tiny');
    const controller = new AbortController();
    const waiting = limits.acquire('tiny', controller.signal);
    controller.abort();
    await expect(waiting).rejects.toThrow(/cancelled while waiting for a runner slot/);
    expect(limits.waiting).toBe(0);
    release();
    expect(limits.running).toBe(0);
  });
});
