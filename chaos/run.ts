// The chaos run: orders through the real stack (chaos/stack.ts) while faults are injected on a
// schedule, buyers and merchants behaving at random; then the money invariants, checked against
// the simulator's ledger as the truth. Used by `npm run chaos` and, reduced, by test/chaos.test.ts.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { signRequest } from '../lib/merchant-signing.js';
import { toAlipayOutTradeNo } from '../lib/order-numbers.js';
import { paymentWorkflowId } from '../lib/payment.js';
import { type ChaosMerchant, ChaosStack, sleep } from './stack.js';

export interface ChaosOptions {
  orders: number;
  /** Orders in flight at once. */
  concurrency: number;
  /** PAYMENT_TIMEOUT in seconds; the poll ladder is a fifth of it. */
  orderTimeoutSeconds: number;
  /** A fault every this many ms, classes in turn. */
  faultEveryMs: number;
  seed: number;
  say: (message: string) => void;
}

/** What a buyer does with the QR code; a merchant may also cancel, or repeat the create. */
const BEHAVIOURS = ['never_scans', 'scans_only', 'pays', 'pays_notify_lost', 'pays_notifies_duplicated', 'pays_at_deadline', 'pays_during_close', 'merchant_cancels', 'pays_while_merchant_cancels'] as const;
type Behaviour = (typeof BEHAVIOURS)[number];

export const FAULT_CLASSES = ['worker_killed', 'api_killed', 'temporal_restarted', 'postgres_frozen', 'gateway_errors', 'notifies_lost', 'notifies_duplicated', 'forged_notifies', 'repeated_requests'] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

export interface ChaosReport {
  orders: number;
  byBehaviour: Record<string, number>;
  finalStates: Record<string, number>;
  faults: Record<FaultClass, number>;
  /** Invariant → the orders (or notes) that break it; all empty on a passing run. */
  violations: Record<string, string[]>;
  forged: { sent: number; rejected: number };
  minutes: number;
}

interface Order {
  no: string;
  merchant: ChaosMerchant;
  behaviour: Behaviour;
  amount: string;
  createdAt: number;
  expiresAt?: number;
}

/** A small seeded generator (mulberry32), so a failing run can be repeated with CHAOS_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const rnd = random(options.seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(rnd() * items.length)]!;
  const faults = Object.fromEntries(FAULT_CLASSES.map((c) => [c, 0])) as Record<FaultClass, number>;
  const violations: Record<string, string[]> = {
    lost: [],
    stuck: [],
    confirmed_twice: [],
    paid_left_closed: [],
    disagree_with_gateway: [],
    disagree_with_temporal: [],
    forged_changed_state: [],
    unexpected_answers: [],
    fault_never_fired: [],
  };
  const forged = { sent: 0, rejected: 0 };
  const stack = new ChaosStack({
    orderTimeout: `${options.orderTimeoutSeconds}s`,
    pollLadder: `${Math.max(1, Math.round(options.orderTimeoutSeconds / 5))}s`,
    say: options.say,
  });
  const orders: Order[] = [];
  options.say(`seed ${options.seed} (CHAOS_SEED repeats this run's choices)`);
  try {
    await stack.start();
    const sim = stack.simulator.url;
    const simCall = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${sim}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
    };

    /** A merchant's signed request through the balancer, retried as a careful client would
     *  (503 TRY_AGAIN, 502 from the balancer, a refused connection), with the same body. */
    const merchantCall = async (merchant: ChaosMerchant, method: string, path: string, body?: unknown) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      for (let attempt = 1; ; attempt++) {
        try {
          const headers = {
            ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
            ...signRequest(merchant.id, merchant.secret, { method, pathWithQuery: path, body: payload }),
          };
          const res = await fetch(`${stack.balancerUrl}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(30_000) });
          const text = await res.text();
          if ((res.status === 503 || res.status === 502 || res.status === 500) && attempt < 40) {
            await sleep(250 * Math.min(attempt, 8));
            continue;
          }
          return { status: res.status, body: text ? JSON.parse(text) : undefined };
        } catch (err) {
          if (attempt >= 40) throw err;
          await sleep(250 * Math.min(attempt, 8));
        }
      }
    };
    const alipayNo = (order: Order) => toAlipayOutTradeNo(order.merchant.id, order.no);

    // ---- faults on a schedule, each counted only once it happened
    let faulting = true;
    const processFaults: FaultClass[] = ['worker_killed', 'api_killed', 'temporal_restarted', 'postgres_frozen'];
    const faultLoop = (async () => {
      for (let i = 0; faulting; i++) {
        await sleep(options.faultEveryMs);
        if (!faulting) break;
        const kind = processFaults[i % processFaults.length]!;
        try {
          switch (kind) {
            case 'worker_killed': {
              const worker = stack.workers[i % 2]!;
              await worker.kill();
              faults.worker_killed++;
              await sleep(1_000);
              await worker.start();
              break;
            }
            case 'api_killed': {
              const api = stack.apis[i % 2]!;
              await api.kill();
              faults.api_killed++;
              await sleep(1_500);
              await api.start();
              break;
            }
            case 'temporal_restarted':
              await stack.restartTemporal(1_000);
              faults.temporal_restarted++;
              break;
            case 'postgres_frozen':
              stack.freezePostgres();
              faults.postgres_frozen++;
              await sleep(3_000);
              stack.thawPostgres();
              break;
          }
        } catch (err) {
          options.say(`fault ${kind} failed: ${(err as Error).message}`);
          stack.thawPostgres();
        }
      }
    })();

    // ---- orders
    const byBehaviour: Record<string, number> = {};
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < options.orders; i = next++) {
        const order: Order = {
          no: `chaos-${i}-${randomBytes(3).toString('hex')}`,
          merchant: stack.merchants[i % 2]!,
          behaviour: pick(BEHAVIOURS),
          amount: `${1 + Math.floor(rnd() * 50)}.${String(Math.floor(rnd() * 100)).padStart(2, '0')}`,
          createdAt: Date.now(),
        };
        orders.push(order);
        byBehaviour[order.behaviour] = (byBehaviour[order.behaviour] ?? 0) + 1;
        await playOrder(order).catch((err: Error) => violations.unexpected_answers!.push(`${order.no} (${order.behaviour}): ${err.message.slice(0, 300)}`));
      }
    };

    async function playOrder(order: Order): Promise<void> {
      const trade = alipayNo(order);
      // Gateway faults before the order exists: its precreate, queries and closes meet them.
      if (rnd() < 0.2) {
        await simCall('POST', `/sim/trades/${trade}/faults`, { systemErrors: { count: 2, kind: pick(['ACQ.SYSTEM_ERROR', '20000', 'http500'] as const) } });
        faults.gateway_errors++;
      }
      if (order.behaviour === 'pays_notify_lost') {
        await simCall('POST', `/sim/trades/${trade}/faults`, { dropNotifies: true });
        faults.notifies_lost++;
      }
      if (order.behaviour === 'pays_notifies_duplicated') {
        await simCall('POST', `/sim/trades/${trade}/faults`, { duplicateNotifies: 3 });
        faults.notifies_duplicated++;
      }
      if (order.behaviour === 'pays_during_close') await simCall('POST', `/sim/trades/${trade}/faults`, { payOnClose: true });
      const body = { outTradeNo: order.no, amount: order.amount, subject: `chaos ${order.behaviour}` };
      const created = await merchantCall(order.merchant, 'POST', '/v1/payments', body);
      if (created.status !== 201 && created.status !== 200 && created.status !== 502) {
        throw new Error(`create ${order.no}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
      }
      order.expiresAt = Date.parse(created.body?.expiresAt ?? created.body?.error?.details?.expiresAt ?? '') || undefined;
      if (created.status === 502) return; // precreate failed for good: nothing for a buyer to pay
      if (rnd() < 0.3) {
        // The merchant's client sends the same create again, as after a lost answer.
        const again = await merchantCall(order.merchant, 'POST', '/v1/payments', body);
        if (![200, 201, 409].includes(again.status)) throw new Error(`repeated create ${order.no}: HTTP ${again.status}`);
        faults.repeated_requests++;
      }
      const untilDeadline = (order.expiresAt ?? Date.now()) - Date.now();
      switch (order.behaviour) {
        case 'never_scans':
          if (rnd() < 0.5) await forgeNotify(order);
          break;
        case 'scans_only':
          await simCall('POST', `/sim/trades/${trade}/scan`);
          if (rnd() < 0.5) await forgeNotify(order);
          break;
        case 'pays':
        case 'pays_notify_lost':
        case 'pays_notifies_duplicated':
          await sleep(rnd() * untilDeadline * 0.5);
          await simCall('POST', `/sim/trades/${trade}/pay`);
          break;
        case 'pays_at_deadline':
          await sleep(Math.max(0, untilDeadline - 300 + rnd() * 600));
          await simCall('POST', `/sim/trades/${trade}/pay`);
          break;
        case 'pays_during_close':
          await simCall('POST', `/sim/trades/${trade}/scan`);
          break;
        case 'merchant_cancels':
          await sleep(rnd() * untilDeadline * 0.5);
          await merchantCall(order.merchant, 'POST', `/v1/payments/${order.no}/cancel`);
          break;
        case 'pays_while_merchant_cancels':
          await sleep(rnd() * untilDeadline * 0.5);
          await Promise.all([simCall('POST', `/sim/trades/${trade}/pay`), merchantCall(order.merchant, 'POST', `/v1/payments/${order.no}/cancel`)]);
          break;
      }
    }

    /** A notify that says TRADE_SUCCESS for an order nobody paid, signed with a key Alipay does not have. */
    async function forgeNotify(order: Order): Promise<void> {
      const params = new URLSearchParams({
        notify_id: randomBytes(16).toString('hex'),
        notify_type: 'trade_status_sync',
        app_id: order.merchant.appId,
        out_trade_no: alipayNo(order),
        trade_no: `2026${randomBytes(8).toString('hex')}`,
        trade_status: 'TRADE_SUCCESS',
        total_amount: order.amount,
        sign_type: 'RSA2',
        sign: randomBytes(256).toString('base64'),
      });
      forged.sent++;
      faults.forged_notifies++;
      const res = await fetch(`${stack.balancerUrl}/alipay/notify`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: params.toString(),
      }).catch(() => undefined);
      if (res && (await res.text()).trim() === 'failure') forged.rejected++;
    }

    options.say(`driving ${options.orders} orders, ${options.concurrency} at a time, a fault every ${options.faultEveryMs / 1000} s`);
    await Promise.all(Array.from({ length: options.concurrency }, lane));
    // A short run still meets every process fault once before the faults stop.
    while (processFaults.some((kind) => faults[kind] === 0)) await sleep(500);
    faulting = false;
    await faultLoop;
    stack.thawPostgres();

    // ---- settle: every order final, or its deadline plus a grace period passed
    const graceMs = 90_000;
    const lastDeadline = Math.max(...orders.map((o) => o.expiresAt ?? o.createdAt));
    options.say(`waiting for every order to settle (the last deadline is in ${Math.max(0, Math.round((lastDeadline - Date.now()) / 1000))} s)`);
    const finalStatuses = new Set(['PAID', 'CLOSED', 'REVIEW', 'PRECREATE_FAILED', 'FAILED', 'REFUNDED', 'PARTIALLY_REFUNDED']);
    const reads = new Map<string, any>();
    for (;;) {
      let open = 0;
      for (const order of orders) {
        if (finalStatuses.has(reads.get(order.no)?.status)) continue;
        const answer = await merchantCall(order.merchant, 'GET', `/v1/payments/${order.no}`);
        reads.set(order.no, answer.status === 200 ? answer.body : undefined);
        if (!finalStatuses.has(answer.body?.status)) open++;
      }
      if (open === 0 || Date.now() > lastDeadline + graceMs) break;
      await sleep(1_000);
    }
    // Once more, now that nothing moves (a late payment may follow a close).
    await sleep(3_000);
    for (const order of orders) {
      const answer = await merchantCall(order.merchant, 'GET', `/v1/payments/${order.no}`);
      reads.set(order.no, answer.status === 200 ? answer.body : undefined);
    }

    // ---- invariants, against the simulator's ledger
    const connection = await Connection.connect({ address: stack.temporalAddress });
    const client = new Client({ connection });
    const finalStates: Record<string, number> = {};
    try {
      const { rows: paidCounts } = await stack.pool.query<{ payment_id: string; n: number }>(
        "SELECT payment_id, count(*)::int AS n FROM payment_events WHERE type = 'paid' GROUP BY payment_id",
      );
      const paidEvents = new Map(paidCounts.map((r) => [r.payment_id, r.n]));
      for (const order of orders) {
        const read = reads.get(order.no);
        const status: string = read?.status ?? 'missing';
        finalStates[status] = (finalStates[status] ?? 0) + 1;
        const label = `${order.no} (${order.behaviour})`;
        if (!read) {
          violations.lost!.push(`${label}: no record`);
          continue;
        }
        if (!finalStatuses.has(status)) {
          violations.stuck!.push(`${label}: ${status} past its deadline and ${graceMs / 1000} s`);
          continue;
        }
        const workflowId = paymentWorkflowId(order.merchant.appId, alipayNo(order));
        if ((paidEvents.get(workflowId) ?? 0) > 1) violations.confirmed_twice!.push(`${label}: ${paidEvents.get(workflowId)} paid events`);
        const trade = (await simCall('GET', `/sim/trades/${alipayNo(order)}`)).body;
        const gatewayPaid = trade && ['TRADE_SUCCESS', 'TRADE_FINISHED'].includes(trade.status);
        const refundedAll = trade && trade.refundedAmount === trade.totalAmount;
        // Money Alipay holds for the order: it is PAID, or given back, or in REVIEW for a person.
        if (gatewayPaid && !refundedAll && status === 'CLOSED') {
          const lateRefund = read.latePayment && ['SUCCEEDED', 'PENDING'].includes(read.latePayment.refundStatus);
          if (!lateRefund) violations.paid_left_closed!.push(`${label}: Alipay holds ${trade.totalAmount}, the order is CLOSED`);
        }
        if (status === 'PAID' && !gatewayPaid) violations.disagree_with_gateway!.push(`${label}: PAID, the gateway says ${trade?.status ?? 'no trade'}`);
        if (status === 'PAID' && read.amount !== trade?.totalAmount) {
          violations.disagree_with_gateway!.push(`${label}: PAID ${read.amount}, the gateway took ${trade?.totalAmount}`);
        }
        // Temporal's view: the workflow is done with the same status (a REVIEW order waits for a person).
        const handle = client.workflow.getHandle(workflowId);
        const description = await handle.describe().catch(() => undefined);
        if (!description) {
          if (status !== 'PRECREATE_FAILED') violations.disagree_with_temporal!.push(`${label}: no workflow`);
        } else if (status === 'REVIEW') {
          if (description.status.name !== 'RUNNING') violations.disagree_with_temporal!.push(`${label}: REVIEW, the workflow is ${description.status.name}`);
        } else if (description.status.name !== 'COMPLETED') {
          violations.disagree_with_temporal!.push(`${label}: ${status}, the workflow is ${description.status.name}`);
        } else {
          const result = (await handle.result()) as { status: string };
          if (result.status !== status && !(status.endsWith('REFUNDED') && result.status === 'PAID')) {
            violations.disagree_with_temporal!.push(`${label}: ${status}, the workflow ended ${result.status}`);
          }
        }
        // A forged notify changes nothing: an order nobody paid is never PAID.
        if ((order.behaviour === 'never_scans' || order.behaviour === 'scans_only') && status === 'PAID') {
          violations.forged_changed_state!.push(`${label}: PAID without a payment`);
        }
      }
    } finally {
      await connection.close();
    }
    if (forged.rejected !== forged.sent) violations.forged_changed_state!.push(`${forged.sent - forged.rejected} of ${forged.sent} forged notifies not answered failure`);
    for (const kind of FAULT_CLASSES) if (faults[kind] === 0) violations.fault_never_fired!.push(kind);
    return { orders: orders.length, byBehaviour, finalStates, faults, violations, forged, minutes: (Date.now() - started) / 60_000 };
  } finally {
    await stack.stop();
  }
}

/** The report as the table `npm run chaos` prints. */
export function formatReport(report: ChaosReport): string {
  const lines = ['| invariant | violations | pass |', '| --- | --- | --- |'];
  for (const [name, found] of Object.entries(report.violations)) {
    lines.push(`| ${name.replaceAll('_', ' ')} | ${found.length}${found.length ? `: ${found.slice(0, 3).join('; ')}` : ''} | ${found.length === 0 ? 'PASS' : 'FAIL'} |`);
  }
  lines.push('', '| fault | injected |', '| --- | --- |');
  for (const [name, count] of Object.entries(report.faults)) lines.push(`| ${name.replaceAll('_', ' ')} | ${count} |`);
  lines.push('', `orders: ${report.orders}; final states: ${JSON.stringify(report.finalStates)}`);
  lines.push(`behaviours: ${JSON.stringify(report.byBehaviour)}`);
  lines.push(`forged notifies: ${report.forged.rejected} of ${report.forged.sent} rejected`);
  lines.push(`took ${report.minutes.toFixed(1)} min`);
  return lines.join('\n');
}

export function passed(report: ChaosReport): boolean {
  return Object.values(report.violations).every((found) => found.length === 0);
}
