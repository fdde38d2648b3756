/**
 * A signal that aborts when either of two does, with the first one's reason. Unlike
 * `AbortSignal.any`, it lets go of its sources on `dispose()`: combined once per run with the
 * worker's process-long stop signal, `AbortSignal.any` kept every run's signal alive (nodejs/node
 * #55351, fixed only in later Node releases).
 */
export function eitherSignal(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const fromA = () => controller.abort(a.reason);
  const fromB = () => controller.abort(b.reason);
  const dispose = () => {
    a.removeEventListener('abort', fromA);
    b.removeEventListener('abort', fromB);
  };
  if (a.aborted) fromA();
  else if (b.aborted) fromB();
  else {
    a.addEventListener('abort', fromA, { once: true });
    b.addEventListener('abort', fromB, { once: true });
  }
  return { signal: controller.signal, dispose };
}
