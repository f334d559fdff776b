// Watches payments until GET /v1/payments/:no says PAID, with a fixed budget of reads: one GET
// starts every 5 ms in all (200/s, what one payment polled every 5 ms costs), round robin over the
// payments still waiting, at most one GET in flight per payment. With n payments waiting each is
// read about every 5n ms. Polling each payment every 5 ms instead would make the bench's own reads
// the load: at 10 payments/s on a slow engine, thousands of GET/s, and every payment slower still.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DurapayApi } from './clients.js';

export const GET_EVERY_MS = 5;

interface Watched {
  orderNo: string;
  started: number;
  deadline: number;
  reading: boolean;
  resolve: (ms: number) => void;
  reject: (err: unknown) => void;
}

export class PaidWatcher {
  private readonly watched: Watched[] = [];
  private cursor = 0;
  private looping = false;
  /** Reads made, and the sum over reads of the payments waiting then (for the mean spacing). */
  reads = 0;
  private waitingSum = 0;

  constructor(
    private readonly api: DurapayApi,
    private readonly deadlineMs: number,
  ) {}

  /** Resolves with the ms from `started` to the GET that said PAID; NaN past the deadline. */
  watch(orderNo: string, started: number): Promise<number> {
    const promise = new Promise<number>((resolve, reject) => {
      this.watched.push({ orderNo, started, deadline: started + this.deadlineMs, reading: false, resolve, reject });
    });
    if (!this.looping) void this.loop();
    return promise;
  }

  /** How often, on average, one waiting payment was read. */
  meanSpacingMs(): number {
    return this.reads === 0 ? Number.NaN : (this.waitingSum / this.reads) * GET_EVERY_MS;
  }

  private async loop(): Promise<void> {
    this.looping = true;
    let next = performance.now();
    while (this.watched.length > 0) {
      const entry = this.watched[this.cursor++ % this.watched.length]!;
      if (!entry.reading) void this.read(entry);
      next += GET_EVERY_MS;
      const wait = next - performance.now();
      if (wait > 1) await sleep(wait); // pacing
      else next = performance.now(); // behind: no burst to catch up
    }
    this.looping = false;
  }

  private remove(entry: Watched): void {
    this.watched.splice(this.watched.indexOf(entry), 1);
  }

  private async read(entry: Watched): Promise<void> {
    entry.reading = true;
    this.reads++;
    this.waitingSum += this.watched.length;
    try {
      const { status } = await this.api.get(entry.orderNo);
      const now = performance.now();
      if (status === 'PAID') {
        this.remove(entry);
        entry.resolve(now - entry.started);
      } else if (status !== 'AWAITING_PAYMENT') {
        this.remove(entry);
        entry.reject(new Error(`${entry.orderNo} became ${status} after its payment`));
      } else if (now > entry.deadline) {
        this.remove(entry);
        entry.resolve(Number.NaN);
      }
    } catch (err) {
      this.remove(entry);
      entry.reject(err);
    } finally {
      entry.reading = false;
    }
  }
}
