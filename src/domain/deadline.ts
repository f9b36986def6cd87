// Waiting with a bound, for work whose end does not matter past a point (a lease that lapses by
// itself, a database that stopped answering at shutdown).

/** Waits for `work` (fulfilled or not) at most `ms`; what is left of it goes on unwaited. */
export function atMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    (timer as { unref?(): void }).unref?.();
  });
  return Promise.race([work.then(() => undefined, () => undefined), bound]).finally(() => clearTimeout(timer));
}

/** Whether `work` fulfilled within `ms` (false when it rejected or is still running then). */
export async function doneWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  await atMost(work.then(() => (done = true)), ms);
  return done;
}
