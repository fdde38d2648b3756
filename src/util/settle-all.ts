/**
 * Await every promise, then throw the first failure. Unlike Promise.all, nothing is still
 * running when the caller starts cleaning up after a failure (a folder being removed while a
 * sibling still writes into it, a VM that booted while its sibling failed).
 */
export async function settleAll<T extends readonly unknown[]>(
  promises: { [K in keyof T]: Promise<T[K]> },
): Promise<{ values: { [K in keyof T]: T[K] | undefined }; error?: unknown }> {
  const settled = await Promise.allSettled(promises);
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  const values = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) as { [K in keyof T]: T[K] | undefined };
  return failure ? { values, error: failure.reason } : { values };
}
