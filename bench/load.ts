// How load is offered: a constant-concurrency pool (closed loop), an open-loop schedule (a start
// every 1/rate seconds whatever the completions), and waits on conditions with deadlines.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PoolRun<T> {
  results: T[];
  /** Wall time from the first start to the last completion. */
  elapsedMs: number;
}

/** Runs task(0..count-1) with exactly `concurrency` in flight until all are done. A failure stops
 *  new starts and is thrown once the ones in flight have settled. */
export async function runPool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<PoolRun<T>> {
  const results: T[] = new Array(count);
  let next = 0;
  let failure: unknown;
  const started = performance.now();
  async function lane() {
    while (failure === undefined && next < count) {
      const i = next++;
      try {
        results[i] = await task(i);
      } catch (err) {
        failure ??= err;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  if (failure !== undefined) throw failure;
  return { results, elapsedMs: performance.now() - started };
}

/** Times one call in ms. */
export async function timed(call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await call();
  return performance.now() - started;
}

export interface PacedRun<T> extends PoolRun<T> {
  /** How late the starts were against their schedule: the client's own lag. */
  maxStartLagMs: number;
}

/** Open loop: task i starts at start + i/rate seconds, whether or not earlier ones finished,
 *  with at most maxInFlight running (beyond that a start waits, and the lag shows it). */
export async function runPaced<T>(
  count: number,
  ratePerSecond: number,
  task: (i: number) => Promise<T>,
  maxInFlight = Number.POSITIVE_INFINITY,
): Promise<PacedRun<T>> {
  const interval = 1000 / ratePerSecond;
  const started = performance.now();
  const running = new Set<Promise<void>>();
  const results: T[] = new Array(count);
  let failure: unknown;
  let maxStartLagMs = 0;
  for (let i = 0; i < count && failure === undefined; i++) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait); // pacing
    while (running.size >= maxInFlight) await Promise.race(running);
    maxStartLagMs = Math.max(maxStartLagMs, performance.now() - due);
    const run: Promise<void> = task(i).then(
      (result) => {
        results[i] = result;
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    const tracked = run.finally(() => running.delete(tracked));
    running.add(tracked);
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure;
  return { results, elapsedMs: performance.now() - started, maxStartLagMs };
}

/** Checks `condition` every intervalMs until it gives a value other than undefined, or throws
 *  after deadlineMs saying what it waited for. */
export async function waitFor<T>(
  what: string,
  condition: () => Promise<T | undefined> | T | undefined,
  { deadlineMs, intervalMs = 100 }: { deadlineMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${(deadlineMs / 1000).toFixed(0)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}
