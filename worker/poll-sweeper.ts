// The poll ladder of waiting QR orders, run from the read model. The notify is the primary path
// and polls are the fallback; most waiting orders are QR codes nobody scans, so a poll with
// nothing new must cost Temporal nothing. The sweeper claims the orders whose next step is due,
// asks Alipay (alipay.trade.query, its answer's signature verified as for every call), moves each
// order to its next step, and signals the order's workflow only when Alipay's answer is news: a
// trade status or trade number the order has not recorded, or an answer that cannot be placed (a
// bad signature, an unknown certificate), which the order's ledger must show. The workflow then asks
// Alipay itself, inside its own task, and believes only that answer. Alipay being unavailable is no
// news: it wakes no workflow, and the next step asks again.
//
// Several workers sweep side by side: each claims due orders with FOR UPDATE SKIP LOCKED, and a
// step is moved as it is claimed, so two workers never poll the same order at the same step. A
// worker that dies after a claim loses that one poll; the next step, and the deadline's own query,
// still come.
import type pg from 'pg';
import type { Logger } from 'pino';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { countSweptPoll } from '../activities/metrics.js';
import { FAILURE, type AlipayActivities } from '../lib/payments/activity-contracts.js';
import { alipayTradeChangedSignal, type TradeChange } from '../lib/payments/payment.js';

export interface PollSweeperOptions {
  pool: pg.Pool;
  client: Client;
  queryTrade: AlipayActivities['queryTrade'];
  logger: Logger;
  /** The pause between looks for due orders when none was due. */
  idleMs?: number;
  /** Orders claimed per round; a full round is followed by the next at once. */
  batch?: number;
  /** Alipay queries in flight at once. */
  concurrency?: number;
}

interface DuePoll {
  id: string;
  app_id: string;
  alipay_out_trade_no: string;
  alipay_status: string | null;
  alipay_trade_no: string | null;
}

/** The due orders, each moved to its next ladder step (none past its deadline: the workflow's
 *  own query at the deadline is the last look). */
const CLAIM_DUE_POLLS = `
  WITH due AS (
    SELECT id FROM payments
    WHERE next_poll_at <= now() AND status = 'AWAITING_PAYMENT' AND next_poll_at < expires_at
    ORDER BY next_poll_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
  ), stepped AS (
    SELECT p.id, now() + p.poll_ladder_ms[least(p.poll_step + 2, cardinality(p.poll_ladder_ms))] * interval '1 millisecond' AS next_at
    FROM payments p JOIN due ON due.id = p.id
  )
  UPDATE payments p
  SET poll_step = p.poll_step + 1,
      next_poll_at = CASE WHEN stepped.next_at < p.expires_at THEN stepped.next_at END
  FROM stepped
  WHERE p.id = stepped.id
  RETURNING p.id, p.app_id, p.alipay_out_trade_no, p.alipay_status, p.alipay_trade_no`;

export class PollSweeper {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly idleMs: number;
  private readonly batch: number;
  private readonly concurrency: number;

  constructor(private readonly options: PollSweeperOptions) {
    this.idleMs = options.idleMs ?? 250;
    this.batch = options.batch ?? 100;
    this.concurrency = options.concurrency ?? 8;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Lets the polls in flight finish; claims nothing more. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      let claimed = 0;
      try {
        claimed = await this.sweepOnce();
        failures = 0;
      } catch (err) {
        // PostgreSQL unavailable: polls wait, as every other writer does; the deadline still comes.
        failures++;
        if (failures === 1 || failures % 20 === 0) this.options.logger.warn({ err, failures }, 'poll sweeper could not read due polls; retrying');
      }
      if (claimed < this.batch) await this.pause(failures > 0 ? Math.min(10_000, this.idleMs * 2 ** Math.min(failures, 6)) : this.idleMs);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** One round: claims the due polls and makes them; how many it claimed. */
  async sweepOnce(): Promise<number> {
    const { rows } = await this.options.pool.query<DuePoll>(CLAIM_DUE_POLLS, [this.batch]);
    let next = 0;
    const lane = async () => {
      for (let row = rows[next++]; row; row = rows[next++]) countSweptPoll(await this.poll(row));
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, rows.length) }, lane));
    return rows.length;
  }

  private async poll(row: DuePoll): Promise<'news' | 'no_news' | 'failed'> {
    let change: TradeChange;
    try {
      const report = await this.options.queryTrade({ appId: row.app_id, outTradeNo: row.alipay_out_trade_no });
      // Not scanned yet, or what the order has already recorded.
      if (report.tradeStatus === 'NOT_EXIST') return 'no_news';
      if (report.tradeStatus === (row.alipay_status ?? undefined) && report.tradeNo === (row.alipay_trade_no ?? undefined)) return 'no_news';
      change = { tradeStatus: report.tradeStatus, ...(report.tradeNo ? { tradeNo: report.tradeNo } : {}) };
    } catch (err) {
      const unexpected = err instanceof ApplicationFailure && (err.type === FAILURE.alipayUnexpected || err.type === FAILURE.alipayUnplaceable);
      if (!unexpected) {
        this.options.logger.debug({ err, paymentId: row.id }, 'swept poll: Alipay unavailable');
        return 'failed';
      }
      change = { unplaceable: err.message };
    }
    try {
      await this.options.client.workflow.getHandle(row.id).signal(alipayTradeChangedSignal, change);
      return 'news';
    } catch (err) {
      // Settled meanwhile (its workflow is done), or Temporal unavailable: the next step asks again.
      if (!(err instanceof WorkflowNotFoundError)) this.options.logger.warn({ err, paymentId: row.id }, 'poll sweeper could not signal an order; the next step retries');
      return 'failed';
    }
  }
}
