// The chaos run: orders through the real stack (chaos/stack.ts) while faults are injected on a
// schedule, buyers and merchants behaving at random; then the money invariants, checked against
// the simulator's ledger as the truth. Used by `npm run chaos` and, reduced, by test/chaos.test.ts.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { signRequest, verifyWebhookSignature } from '../lib/merchants/signing.js';
import { toAlipayOutTradeNo } from '../lib/alipay/order-numbers.js';
import { paymentStateQuery, reviewWorkflowId } from '../lib/payments/payment.js';
import type { CallRecord, NotifyRecord } from '../simulator/trades.js';
import { type ChaosMerchant, ChaosStack, type EnginePart, jsonRequest } from './stack.js';

export interface ChaosOptions {
  orders: number;
  /** Orders in flight at once. */
  concurrency: number;
  /** PAYMENT_TIMEOUT in seconds; the poll ladder is a fifth of it. */
  orderTimeoutSeconds: number;
  /** A fault every this many ms, classes in turn. */
  faultEveryMs: number;
  seed: number;
  /** Which Temporal: the dev server (default) or a Temporal server on PostgreSQL. */
  temporal?: 'dev' | 'cluster';
  say: (message: string) => void;
}

/** What a buyer does with the QR code; a merchant may also cancel, or repeat the create. */
const BEHAVIOURS = [
  'never_scans',
  'scans_only',
  'pays',
  'pays_notify_lost',
  'pays_notifies_duplicated',
  'pays_notifies_reordered',
  'pays_notify_after_deadline',
  'pays_at_deadline',
  'pays_during_close',
  'pays_after_close',
  'pays_after_void_refused',
  'pays_late_balance_short',
  'merchant_cancels',
  'pays_while_merchant_cancels',
  'barcode_instant',
  'barcode_confirms',
  'barcode_never_confirms',
] as const;
type Behaviour = (typeof BEHAVIOURS)[number];

export const FAULT_CLASSES = [
  'worker_killed',
  'api_killed',
  'temporal_restarted',
  'postgres_frozen',
  'postgres_stopped',
  'gateway_errors',
  'gateway_answers_lost',
  'gateway_slow',
  'notifies_lost',
  'notifies_duplicated',
  'notifies_reordered',
  'notifies_after_deadline',
  'forged_notifies',
  'payments_after_close',
  'voids_refused',
  'late_payments_taken',
  'refunds_refused_for_balance',
  'operator_resolutions',
  'merchant_moved_app',
  'repeated_requests',
  'concurrent_refunds',
  'webhook_receiver_down',
] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

/** What each fault's count counts: process faults each time, gateway faults each call they hit
 *  (from the gateway's record), notify faults each order they hit. */
const FAULT_UNITS: Record<FaultClass, string> = {
  worker_killed: 'times',
  api_killed: 'times',
  temporal_restarted: 'times',
  postgres_frozen: 'times',
  postgres_stopped: 'times',
  gateway_errors: 'calls',
  gateway_answers_lost: 'calls',
  gateway_slow: 'calls',
  notifies_lost: 'orders',
  notifies_duplicated: 'orders',
  notifies_reordered: 'orders',
  notifies_after_deadline: 'notifies',
  forged_notifies: 'notifies',
  payments_after_close: 'orders',
  voids_refused: 'calls',
  late_payments_taken: 'orders',
  refunds_refused_for_balance: 'calls',
  operator_resolutions: 'orders',
  merchant_moved_app: 'times',
  repeated_requests: 'requests',
  concurrent_refunds: 'orders',
  webhook_receiver_down: 'times',
};

export interface ChaosReport {
  orders: number;
  byBehaviour: Record<string, number>;
  finalStates: Record<string, number>;
  faults: Record<FaultClass, number>;
  /** Invariant → the orders (or notes) that break it; all empty on a passing run. */
  violations: Record<string, string[]>;
  forged: { sent: number; rejected: number };
  /** Orders that ended without a QR code, refused, or waiting for a person, each with its reason. */
  unusualEndings: string[];
  /** What the engine logged at warning and above, most frequent first: what on-call would see. */
  engineLog: { message: string; count: number }[];
  /** Buyers who paid once the order had closed: refused by Alipay, or taken (and so refunded). */
  paymentsAfterClose: { refused: number; taken: number };
  /** Late payments Alipay took: given back by the engine's own refund, or held in REVIEW for an operator. */
  latePayments: { givenBack: number; toReview: number };
  /** REVIEW orders an operator resolved through /ops, by outcome; resolutions as CLOSED refused
   *  first because the merchant's balance was short (then topped up and resolved again). */
  resolutions: { PAID: number; CLOSED: number; refusedWhileBalanceShort: number };
  /** Merchant refunds of orders paid under the app their merchant has since left. */
  refundsUnderEarlierApp: number;
  /** Each app's reconciliation of the run's day: its status and totals. */
  reconciled: string[];
  minutes: number;
}

interface Order {
  /** Its place in the run, plus the seed's offset: what it does and which faults it meets follow
   *  from it in fixed cycles, so that even a short run meets every behaviour and fault. */
  k: number;
  no: string;
  merchant: ChaosMerchant;
  behaviour: Behaviour;
  amount: string;
  createdAt: number;
  expiresAt?: number;
  /** The Alipay app the order was created under (its merchant may move to another one later). */
  appId: string;
  /** The merchant asked for refunds. */
  refunds?: boolean;
  /** Alipay took the buyer's money after the order had closed. */
  paidLate?: boolean;
  /** The order went to REVIEW and an operator resolved it. */
  resolved?: 'PAID' | 'CLOSED';
}

/** The merchant's refunds' numbers (Alipay's out_request_no), as the chaos run makes them. */
const MERCHANT_REFUNDS = ['r1', 'r2'];

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
    over_refunded: [],
    refunds_disagree: [],
    disagree_with_temporal: [],
    forged_changed_state: [],
    webhooks_missing_or_unordered: [],
    webhooks_bad_signature: [],
    reconciliation_mismatches: [],
    unexpected_answers: [],
    review_not_listed: [],
    review_not_resolved: [],
    fault_never_fired: [],
  };
  const forged = { sent: 0, rejected: 0 };
  const paymentsAfterClose = { refused: 0, taken: 0 };
  const resolutions = { PAID: 0, CLOSED: 0, refusedWhileBalanceShort: 0 };
  const unusualEndings: string[] = [];
  const reconciled: string[] = [];
  const stack = new ChaosStack({
    orderTimeout: `${options.orderTimeoutSeconds}s`,
    pollLadder: `${Math.max(1, Math.round(options.orderTimeoutSeconds / 5))}s`,
    temporal: options.temporal ?? 'dev',
    say: options.say,
  });
  const orders: Order[] = [];
  options.say(`seed ${options.seed} (CHAOS_SEED repeats this run's choices)`);
  try {
    await stack.start();
    const sim = stack.simulator.url;
    const simCall = (method: string, path: string, body?: unknown) => jsonRequest(`${sim}${path}`, method, body);

    /** A merchant's signed request through the balancer, retried as a careful client would
     *  (503 TRY_AGAIN, 502 from the balancer, a refused connection), with the same body. */
    const merchantCall = (merchant: ChaosMerchant, method: string, path: string, body?: unknown) =>
      retriedCall(method, path, body, (payload) => signRequest(merchant.id, merchant.secret, { method, pathWithQuery: path, body: payload }));
    /** An operator's request to /ops, retried the same way. */
    const opsCall = (method: string, path: string, body?: unknown) => retriedCall(method, path, body, () => ({ authorization: `Bearer ${stack.opsToken}` }));
    const retriedCall = async (method: string, path: string, body: unknown, authorize: (payload: string | undefined) => Record<string, string>) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      for (let attempt = 1; ; attempt++) {
        try {
          const headers = {
            ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
            ...authorize(payload),
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
    /** The merchant's read of its order. */
    const readOrder = (order: Order) => merchantCall(order.merchant, 'GET', `/v1/payments/${order.no}`);

    // ---- faults on a schedule, each counted only once it happened
    let faulting = true;
    const processFaults: FaultClass[] = ['worker_killed', 'api_killed', 'temporal_restarted', 'postgres_frozen', 'postgres_stopped', 'webhook_receiver_down'];
    /** SIGKILL, counted once done, and the same process started again after downMs. */
    const killAndRestart = async (part: EnginePart, kind: FaultClass, downMs: number) => {
      await part.kill();
      faults[kind]++;
      await sleep(downMs);
      await part.start();
    };
    const faultLoop = (async () => {
      for (let i = 0; faulting; i++) {
        await sleep(options.faultEveryMs);
        if (!faulting) break;
        const kind = processFaults[i % processFaults.length]!;
        try {
          switch (kind) {
            case 'worker_killed':
              await killAndRestart(stack.workers[i % 2]!, kind, 1_000);
              break;
            case 'api_killed':
              await killAndRestart(stack.apis[i % 2]!, kind, 1_500);
              break;
            case 'temporal_restarted':
              await stack.restartTemporal(1_000);
              faults.temporal_restarted++;
              break;
            case 'postgres_frozen':
              await stack.freezePostgres();
              faults.postgres_frozen++;
              await sleep(3_000);
              stack.thawPostgres();
              break;
            case 'postgres_stopped':
              await stack.restartPostgres(2_000);
              faults.postgres_stopped++;
              break;
            case 'webhook_receiver_down':
              stack.webhookReceiverUp = false;
              faults.webhook_receiver_down++;
              await sleep(4_000);
              stack.webhookReceiverUp = true;
              break;
          }
        } catch (err) {
          options.say(`fault ${kind} failed: ${(err as Error).message}`);
          stack.thawPostgres();
        }
      }
    })();

    // ---- an operator working the REVIEW list through /ops, during the run and once it has settled
    const inHand = new Set<string>();
    /** Every REVIEW order listed now that the operator is not already resolving, resolved one by one. */
    const resolveListedReviews = async (): Promise<{ paymentId: string; outTradeNo: string; merchantId: string }[]> => {
      const listed = await opsCall('GET', '/ops/payments?status=REVIEW&limit=1000');
      if (listed.status !== 200) throw new Error(`GET /ops/payments?status=REVIEW: HTTP ${listed.status} ${JSON.stringify(listed.body)}`);
      const entries = listed.body.orders as { paymentId: string; outTradeNo: string; merchantId: string }[];
      for (const entry of entries) {
        const order = orders.find((o) => o.merchant.id === entry.merchantId && o.no === entry.outTradeNo);
        if (!order || inHand.has(entry.paymentId)) continue;
        inHand.add(entry.paymentId);
        try {
          await resolveReview(order, entry.paymentId);
        } finally {
          inHand.delete(entry.paymentId);
        }
      }
      return entries;
    };
    /** As a careful operator does: money Alipay holds is kept (every other such order) or given
     *  back; an order Alipay holds nothing for is closed. A refund refused for the merchant's
     *  balance is tried again once the merchant has topped it up. */
    const resolveReview = async (order: Order, paymentId: string): Promise<void> => {
      const trade = (await simCall('GET', `/sim/trades/${alipayNo(order)}`)).body;
      const held = trade && ['TRADE_SUCCESS', 'TRADE_FINISHED'].includes(trade.status) && trade.refundedAmount !== trade.totalAmount;
      const outcome = held && order.k % 2 === 0 ? 'PAID' : 'CLOSED';
      const resolve = () => opsCall('POST', `/ops/payments/${paymentId}/resolve-review`, { outcome, note: `chaos: Alipay holds ${held ? trade.totalAmount : 'nothing'}`, operator: 'chaos operator' });
      let answer = await resolve();
      if (answer.status === 409 && answer.body?.error?.code === 'RESOLUTION_REFUSED') {
        resolutions.refusedWhileBalanceShort++;
        await simCall('POST', `/sim/trades/${alipayNo(order)}/faults`, { sellerBalanceNotEnough: false });
        answer = await resolve();
      }
      // A resolution whose answer was lost (a killed API) and sent again finds the order decided.
      const decided = answer.status === 200 || (answer.status === 409 && answer.body?.error?.code === 'NOT_IN_REVIEW' && answer.body.error.details?.status !== 'REVIEW');
      if (!decided) {
        violations.review_not_resolved!.push(`${order.no} (${order.behaviour}): resolving as ${outcome} answered HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        return;
      }
      order.resolved = outcome;
      resolutions[outcome]++;
      faults.operator_resolutions++;
    };
    let operating = true;
    const operatorLoop = (async () => {
      while (operating) {
        await sleep(options.faultEveryMs);
        await resolveListedReviews().catch((err: Error) => options.say(`the operator's round failed: ${err.message}`));
      }
    })();

    // ---- orders
    const byBehaviour: Record<string, number> = {};
    let next = 0;
    const lane = async () => {
      for (let i = next++; i < options.orders; i = next++) {
        if (i === Math.floor(options.orders / 2)) {
          // Halfway, the key-mode merchant moves to the certificate-mode app: its new orders go
          // there, and its earlier ones are refunded, queried and voided under the app they were
          // paid under.
          await stack.moveMerchant(stack.merchants[0]!, stack.apps[1]!);
          faults.merchant_moved_app++;
        }
        const k = i + (options.seed % 1000);
        const merchant = stack.merchants[i % 2]!;
        const order: Order = {
          k,
          no: `chaos-${i}-${randomBytes(3).toString('hex')}`,
          merchant,
          appId: merchant.appId,
          behaviour: BEHAVIOURS[k % BEHAVIOURS.length]!,
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
      // Gateway and notify faults are armed before the order exists, and counted at the end from
      // the gateway's record where they took effect (countGatewayFaultsThatFired and
      // countNotifyFaultsThatFired).
      const gateway = (order.k * 7) % 10;
      if (gateway < 2) {
        await simCall('POST', `/sim/trades/${trade}/faults`, { systemErrors: { count: 2, kind: pick(['ACQ.SYSTEM_ERROR', '20000', 'http500'] as const) } });
      } else if (gateway === 2) {
        // The call takes effect at Alipay and its answer never comes (a timeout after applying).
        await simCall('POST', `/sim/trades/${trade}/faults`, { loseAnswers: { count: 1, methods: [pick(['alipay.trade.query', 'alipay.trade.close', 'alipay.trade.cancel', 'alipay.trade.refund'])] } });
      } else if (gateway === 3) {
        await simCall('POST', `/sim/trades/${trade}/faults`, { delayMs: 500 + Math.floor(rnd() * 2_000) });
      }
      if (order.behaviour === 'pays_notify_lost' || order.behaviour === 'pays_notify_after_deadline') {
        await simCall('POST', `/sim/trades/${trade}/faults`, { dropNotifies: true });
      }
      if (order.behaviour === 'pays_notifies_duplicated') await simCall('POST', `/sim/trades/${trade}/faults`, { duplicateNotifies: 3 });
      // The payment's notify held back until the refund's has been sent.
      if (order.behaviour === 'pays_notifies_reordered') await simCall('POST', `/sim/trades/${trade}/faults`, { reorderNotifies: { maxHoldMs: 60_000 } });
      if (order.behaviour === 'pays_during_close') await simCall('POST', `/sim/trades/${trade}/faults`, { payOnClose: true });
      // Alipay refuses to void the order number, so the QR code stays payable after our close
      // (Alipay's clock runs a day behind): a late payment Alipay takes. The merchant's balance may
      // be short, so Alipay refuses to give it back: for a few seconds, or until an operator steps in.
      const balanceShort =
        order.behaviour === 'pays_late_balance_short' ? 'kept' : order.behaviour === 'pays_after_void_refused' && Math.floor(order.k / BEHAVIOURS.length) % 2 === 1 ? 'brief' : undefined;
      if (order.behaviour === 'pays_after_void_refused' || order.behaviour === 'pays_late_balance_short') {
        await simCall('POST', `/sim/trades/${trade}/faults`, {
          refusals: { count: 3, methods: ['alipay.trade.cancel'], subCode: 'ACQ.CANCEL_NOT_ALLOWED' },
          ...(balanceShort ? { sellerBalanceNotEnough: true } : {}),
        });
      }
      const barcode = order.behaviour.startsWith('barcode_');
      const authCode = `28${Array.from(randomBytes(16), (b) => b % 10).join('')}`;
      if (barcode) {
        const behaviour =
          order.behaviour === 'barcode_instant'
            ? { kind: 'pays' }
            : order.behaviour === 'barcode_confirms'
              ? { kind: 'confirms', afterMs: Math.floor(rnd() * 6_000) }
              : { kind: 'never_confirms' };
        await simCall('PUT', `/sim/payment-codes/${authCode}`, behaviour);
      }
      const body = {
        outTradeNo: order.no,
        amount: order.amount,
        subject: `chaos ${order.behaviour}`,
        notifyUrl: `${stack.webhookUrl}/${order.merchant.id}`,
        ...(barcode ? { method: 'barcode', authCode } : {}),
      };
      const created = await merchantCall(order.merchant, 'POST', '/v1/payments', body);
      if (![200, 201, 502].includes(created.status)) {
        throw new Error(`create ${order.no}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
      }
      order.expiresAt = Date.parse(created.body?.expiresAt ?? created.body?.error?.details?.expiresAt ?? '') || undefined;
      if (created.status === 502) return; // precreate failed for good: nothing for a buyer to pay
      order.appId = (await simCall('GET', `/sim/trades/${trade}`)).body?.appId ?? order.appId;
      if (order.k % 3 === 1) {
        // The merchant's client sends the same create again, as after a lost answer.
        const again = await merchantCall(order.merchant, 'POST', '/v1/payments', body);
        if (![200, 201, 409].includes(again.status)) throw new Error(`repeated create ${order.no}: HTTP ${again.status}`);
        faults.repeated_requests++;
      }
      const untilDeadline = (order.expiresAt ?? Date.now()) - Date.now();
      switch (order.behaviour) {
        case 'never_scans':
          await forgeNotify(order);
          break;
        case 'scans_only':
          await simCall('POST', `/sim/trades/${trade}/scan`);
          await forgeNotify(order);
          break;
        case 'pays':
        case 'pays_notify_lost':
        case 'pays_notifies_duplicated':
        case 'pays_notifies_reordered':
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
        case 'pays_after_close':
        case 'pays_after_void_refused':
        case 'pays_late_balance_short': {
          // The buyer scans the QR code once the order has closed, while Alipay's own clock (a day
          // behind) still holds the trade open: the engine must have voided it, or give the
          // money back, or hold it in REVIEW for an operator (paid_left_closed).
          if ((await settledStatus(order, untilDeadline + 30_000)) !== 'CLOSED') break;
          const late = await simCall('POST', `/sim/trades/${trade}/pay`);
          if (late.status !== 200 && late.status !== 409) throw new Error(`paying ${order.no} after its close: simulator HTTP ${late.status}`);
          faults.payments_after_close++;
          paymentsAfterClose[late.status === 200 ? 'taken' : 'refused']++;
          order.paidLate = late.status === 200;
          if (balanceShort === 'brief') {
            // The merchant tops its balance up within the retry window: the next try gives it back.
            await sleep(3_000);
            await simCall('POST', `/sim/trades/${trade}/faults`, { sellerBalanceNotEnough: false });
          }
          break;
        }
        case 'merchant_cancels':
          await sleep(rnd() * untilDeadline * 0.5);
          await merchantCall(order.merchant, 'POST', `/v1/payments/${order.no}/cancel`);
          break;
        case 'pays_while_merchant_cancels':
          await sleep(rnd() * untilDeadline * 0.5);
          await Promise.all([simCall('POST', `/sim/trades/${trade}/pay`), merchantCall(order.merchant, 'POST', `/v1/payments/${order.no}/cancel`)]);
          break;
        case 'pays_notify_after_deadline':
          // Its notifies lost until the order has settled, then one arrives, as Alipay's retries do.
          await sleep(rnd() * untilDeadline * 0.5);
          await simCall('POST', `/sim/trades/${trade}/pay`);
          await sleep(Math.max(0, (order.expiresAt ?? Date.now()) - Date.now()) + 2_000);
          if ((await simCall('POST', `/sim/trades/${trade}/notify`, {})).status === 200) faults.notifies_after_deadline++;
          break;
      }
      // Half the paid orders are refunded: in full, in part, or twice at once, a kind per cycle;
      // those whose notifies are reordered always are.
      if (order.behaviour === 'pays_notifies_reordered' || (order.k + Math.floor(order.k / BEHAVIOURS.length)) % 2 === 0) await refundIfPaid(order);
    }

    /** The order's status once it is no longer awaiting payment, or as it is after withinMs. */
    async function settledStatus(order: Order, withinMs: number): Promise<string | undefined> {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const status: string | undefined = (await readOrder(order)).body?.status;
        if (status !== 'AWAITING_PAYMENT' || Date.now() > deadline) return status;
        await sleep(500);
      }
    }

    /** A merchant refunds a paid order, in part or in full; sometimes two refunds at once. */
    async function refundIfPaid(order: Order): Promise<void> {
      if ((await settledStatus(order, 20_000)) !== 'PAID') return;
      order.refunds = true;
      const fen = Math.round(Number(order.amount) * 100);
      const yuan = (f: number) => (f / 100).toFixed(2);
      const refund = (n: number, amountFen: number) =>
        merchantCall(order.merchant, 'POST', `/v1/payments/${order.no}/refunds`, { outRequestNo: MERCHANT_REFUNDS[n - 1], amount: yuan(amountFen), reason: 'chaos' });
      const kind = Math.floor(order.k / BEHAVIOURS.length) % 3;
      const firstFen = kind === 0 ? fen : kind === 1 ? Math.max(1, Math.floor(fen / 3)) : Math.ceil(fen * 0.6);
      const answers =
        kind === 2
          ? await Promise.all([refund(1, firstFen), refund(2, firstFen)]) // two at once, together more than paid
          : [await refund(1, firstFen)]; // in full, or in part
      if (answers.length === 2) faults.concurrent_refunds++;
      if (order.k % 3 === 2) {
        // The merchant's client sends the same refund again, as after a lost answer: no second refund.
        answers.push(await refund(1, firstFen));
        faults.repeated_requests++;
      }
      for (const answer of answers) {
        // Accepted, or refused for a stated reason (more than is left): never a server error.
        if (answer.status >= 500 || answer.status === 401) throw new Error(`refund of ${order.no}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
      }
    }

    /** Gateway faults that took effect, by call, from the gateway's record of calls: an armed
     *  fault the order never met (a lost cancel answer on an order nobody cancelled) does not
     *  count. A precreate that failed is in it too, though its trade never came to be. */
    async function countGatewayFaultsThatFired(): Promise<void> {
      const ours = new Set(orders.map(alipayNo));
      const calls = (await simCall('GET', '/sim/calls')).body as CallRecord[];
      for (const call of calls) {
        if (call.outTradeNo === null || !ours.has(call.outTradeNo)) continue;
        if (call.httpStatus === 500 || call.code === '20000' || call.subCode === 'ACQ.SYSTEM_ERROR') faults.gateway_errors++;
        if (call.answerLost) faults.gateway_answers_lost++;
        if (call.delayedMs) faults.gateway_slow++;
        if (call.method === 'alipay.trade.cancel' && call.subCode === 'ACQ.CANCEL_NOT_ALLOWED') faults.voids_refused++;
        if (call.method === 'alipay.trade.refund' && call.subCode === 'ACQ.SELLER_BALANCE_NOT_ENOUGH') faults.refunds_refused_for_balance++;
      }
      faults.late_payments_taken = paymentsAfterClose.taken;
    }

    /** What on-call would look at for a run that did not end as its order: the state it holds, what
     *  it waits on, the last events of its history, and the order's ledger. */
    async function explainRun(handle: WorkflowHandle, paymentId: string): Promise<string> {
      const facts: string[] = [];
      const state = await handle.query(paymentStateQuery).catch((err: Error) => ({ status: `unknown (${err.message.slice(0, 80)})` }));
      facts.push(`its state says ${state.status}`);
      const described = await handle.describe().catch(() => undefined);
      const raw = described?.raw;
      if (raw?.pendingActivities?.length) facts.push(`pending activities: ${raw.pendingActivities.map((a) => `${a.activityType?.name} attempt ${a.attempt} ${a.lastFailure?.message ?? ''}`).join(', ')}`);
      if (raw?.pendingChildren?.length) facts.push(`pending children: ${raw.pendingChildren.map((c) => c.workflowId).join(', ')}`);
      if (raw?.pendingWorkflowTask) facts.push(`a workflow task pending, attempt ${raw.pendingWorkflowTask.attempt}`);
      const history = await handle.fetchHistory().catch(() => undefined);
      const events = history?.events ?? [];
      const names = events.slice(-8).map((e) => {
        const kind = Object.keys(e).find((key) => key.endsWith('EventAttributes') && (e as Record<string, unknown>)[key]);
        const failure = e.workflowTaskFailedEventAttributes?.failure?.message;
        return `${kind?.replace('EventAttributes', '') ?? 'event'}${failure ? ` (${failure.slice(0, 160)})` : ''}`;
      });
      facts.push(`${events.length} history events, the last: ${names.join(' > ')}`);
      const { rows } = await stack.pool
        .query<{ type: string; reason: string | null }>("SELECT type, data->>'reason' AS reason FROM payment_events WHERE payment_id = $1 ORDER BY id", [paymentId])
        .catch(() => ({ rows: [] as { type: string; reason: string | null }[] }));
      facts.push(`ledger: ${rows.map((r) => `${r.type}${r.reason ? ` (${r.reason.slice(0, 120)})` : ''}`).join(', ')}`);
      return facts.join('; ');
    }

    /** Notify faults that took effect, by order, from the gateway's record of its notifies. */
    function countNotifyFaultsThatFired(notifies: NotifyRecord[]): void {
      if (notifies.some((n) => n.dropped)) faults.notifies_lost++;
      const sent = notifies.filter((n) => !n.dropped && !n.manual).map((n) => `${n.notifyId}/${n.attempt}`);
      if (new Set(sent).size < sent.length) faults.notifies_duplicated++;
      // Reordered: the payment's notify went out only after a refund's.
      const first = (kind: string) => notifies.find((n) => n.kind === kind && !n.dropped)?.at;
      const [payment, refund] = [first('payment'), first('refund')];
      if (payment !== undefined && refund !== undefined && refund < payment) faults.notifies_reordered++;
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
      // Sent again, as Alipay resends, until an API answers it: a connection cut by a killed API
      // (the balancer's 502) is no answer from the engine.
      let answer = 'no answer';
      for (let attempt = 1; attempt <= 20; attempt++) {
        const res = await fetch(`${stack.balancerUrl}/alipay/notify`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: params.toString(),
        }).catch(() => undefined);
        const text = res ? (await res.text().catch(() => '')).trim() : '';
        answer = res ? `HTTP ${res.status} ${text.slice(0, 80)}` : 'no connection';
        if (res && res.status !== 502) break;
        await sleep(500);
      }
      if (answer === 'HTTP 200 failure') forged.rejected++;
      else violations.forged_changed_state!.push(`${order.no}: a forged notify was answered ${answer}`);
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
        const answer = await readOrder(order);
        reads.set(order.no, answer.status === 200 ? answer.body : undefined);
        if (!finalStatuses.has(answer.body?.status)) open++;
      }
      if (open === 0 || Date.now() > lastDeadline + graceMs) break;
      await sleep(1_000);
    }
    // Refunds settle on their own workflows: wait until none is pending.
    for (const order of orders.filter((o) => o.refunds)) {
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        const listed = await merchantCall(order.merchant, 'GET', `/v1/payments/${order.no}/refunds`);
        if (!(listed.body?.refunds ?? []).some((r: { status: string }) => r.status === 'PENDING')) break;
        await sleep(500);
      }
    }
    // Late payments: each given back by its refund (sent again while Alipay refuses it, for
    // LATE_REFUND_RETRY_WINDOW), or in REVIEW for an operator. Wait until each is one or the other.
    const holdsNoMoneyUnseen = async (order: Order) => {
      const answer = await readOrder(order);
      if (answer.status !== 200) return false;
      reads.set(order.no, answer.body);
      if (answer.body.status !== 'CLOSED') return true;
      const trade = (await simCall('GET', `/sim/trades/${alipayNo(order)}`)).body;
      return !['TRADE_SUCCESS', 'TRADE_FINISHED'].includes(trade?.status) || trade.refundedAmount === trade.totalAmount;
    };
    for (const until = Date.now() + 120_000; Date.now() < until; await sleep(1_000)) {
      let waiting = 0;
      for (const order of orders.filter((o) => o.paidLate)) if (!(await holdsNoMoneyUnseen(order))) waiting++;
      if (waiting === 0) break;
    }
    operating = false;
    await operatorLoop;
    // Every order in REVIEW is on the operator's list, and the operator resolves each of them.
    for (const order of orders) {
      const answer = await readOrder(order);
      reads.set(order.no, answer.status === 200 ? answer.body : undefined);
    }
    const listedAtEnd = await resolveListedReviews();
    for (const order of orders.filter((o) => reads.get(o.no)?.status === 'REVIEW')) {
      if (!listedAtEnd.some((e) => e.merchantId === order.merchant.id && e.outTradeNo === order.no)) {
        violations.review_not_listed!.push(`${order.no} (${order.behaviour}): REVIEW, ${reads.get(order.no).reason}, not on GET /ops/payments?status=REVIEW`);
      }
    }
    for (const order of orders) {
      const answer = await readOrder(order);
      reads.set(order.no, answer.status === 200 ? answer.body : undefined);
    }
    // Webhooks: until each order's last delivery shows its final state (the receiver may have
    // been down a while), or a minute has passed.
    const lastWebhook = () => {
      const last = new Map<string, { status: string }>();
      for (const hook of stack.webhooks) {
        const event = JSON.parse(hook.body) as { data: { outTradeNo: string; status: string } };
        last.set(`${hook.merchantId}/${event.data.outTradeNo}`, event.data);
      }
      return last;
    };
    const webhooksUntil = Date.now() + 60_000;
    while (Date.now() < webhooksUntil) {
      const last = lastWebhook();
      const behind = orders.filter((o) => {
        const status = reads.get(o.no)?.status;
        return status && status !== 'PRECREATE_FAILED' && last.get(`${o.merchant.id}/${o.no}`)?.status !== status;
      });
      if (behind.length === 0) break;
      await sleep(1_000);
      for (const order of behind) {
        const answer = await readOrder(order);
        if (answer.status === 200) reads.set(order.no, answer.body);
      }
    }
    // Once more, now that nothing moves (a late payment may follow a close).
    await sleep(3_000);
    for (const order of orders) {
      const answer = await readOrder(order);
      reads.set(order.no, answer.status === 200 ? answer.body : undefined);
    }

    // ---- invariants, against the simulator's ledger
    await countGatewayFaultsThatFired();
    const connection = await Connection.connect({ address: stack.temporalAddress });
    const client = new Client({ connection, namespace: stack.temporalNamespace });
    const finalStates: Record<string, number> = {};
    const latePayments = { givenBack: 0, toReview: 0 };
    let refundsUnderEarlierApp = 0;
    try {
      const { rows: paidCounts } = await stack.pool.query<{ payment_id: string; n: number }>(
        "SELECT payment_id, count(*)::int AS n FROM payment_events WHERE type = 'paid' GROUP BY payment_id",
      );
      const paidEvents = new Map(paidCounts.map((r) => [r.payment_id, r.n]));
      // Each order's payment workflow id, as the record keeps it (its app may not be its merchant's now).
      const { rows: recorded } = await stack.pool.query<{ id: string; merchant_id: string; out_trade_no: string; app_id: string }>(
        'SELECT id, merchant_id, out_trade_no, app_id FROM payments',
      );
      const paymentIds = new Map(recorded.map((r) => [`${r.merchant_id}/${r.out_trade_no}`, r.id]));
      for (const order of orders) {
        const read = reads.get(order.no);
        const status: string = read?.status ?? 'missing';
        finalStates[status] = (finalStates[status] ?? 0) + 1;
        const label = `${order.no} (${order.behaviour})`;
        if (['PRECREATE_FAILED', 'FAILED', 'REVIEW'].includes(status) || order.resolved) unusualEndings.push(`${label}: ${status}, ${read?.reason ?? 'no reason given'}`);
        if (!read) {
          violations.lost!.push(`${label}: no record`);
          continue;
        }
        if (!finalStatuses.has(status)) {
          violations.stuck!.push(`${label}: ${status} past its deadline and ${graceMs / 1000} s`);
          continue;
        }
        if (status === 'REVIEW') violations.review_not_resolved!.push(`${label}: still REVIEW after the operator's round: ${read.reason}`);
        const workflowId = paymentIds.get(`${order.merchant.id}/${order.no}`) ?? 'unrecorded';
        if ((paidEvents.get(workflowId) ?? 0) > 1) violations.confirmed_twice!.push(`${label}: ${paidEvents.get(workflowId)} paid events`);
        const trade = (await simCall('GET', `/sim/trades/${alipayNo(order)}`)).body;
        if (trade?.notifies) countNotifyFaultsThatFired(trade.notifies);
        const gatewayPaid = trade && ['TRADE_SUCCESS', 'TRADE_FINISHED'].includes(trade.status);
        const refundedAll = trade && trade.refundedAmount === trade.totalAmount;
        // Money Alipay holds for the order: it is PAID, or given back, or in REVIEW for a person.
        if (gatewayPaid && !refundedAll && status === 'CLOSED') {
          violations.paid_left_closed!.push(`${label}: Alipay holds ${trade.totalAmount}, the order is CLOSED (late payment: ${JSON.stringify(read.latePayment)})`);
        }
        if (order.paidLate) {
          if (order.resolved) latePayments.toReview++;
          else if (read.latePayment?.refundStatus === 'SUCCEEDED') latePayments.givenBack++;
        }
        const paidStates = ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED'];
        if (paidStates.includes(status) && !gatewayPaid && !(status === 'REFUNDED' && trade?.status === 'TRADE_CLOSED')) {
          violations.disagree_with_gateway!.push(`${label}: ${status}, the gateway says ${trade?.status ?? 'no trade'}`);
        }
        if (paidStates.includes(status) && read.amount !== trade?.totalAmount) {
          violations.disagree_with_gateway!.push(`${label}: ${status} ${read.amount}, the gateway took ${trade?.totalAmount}`);
        }
        if (!paidStates.includes(status) && status !== 'REVIEW' && gatewayPaid && !refundedAll) {
          violations.disagree_with_gateway!.push(`${label}: ${status}, and Alipay holds ${trade.totalAmount}`);
        }
        // Refunds: never more than was paid, and durapay's total is Alipay's.
        if (trade && Number(trade.refundedAmount) > Number(trade.totalAmount)) violations.over_refunded!.push(`${label}: ${trade.refundedAmount} refunded of ${trade.totalAmount}`);
        const merchantRefunds = (trade?.refunds ?? []).filter((r: { outRequestNo: string }) => MERCHANT_REFUNDS.includes(r.outRequestNo));
        const gatewayMerchantRefunded = merchantRefunds.reduce((sum: number, r: { amount: string }) => sum + Math.round(Number(r.amount) * 100), 0);
        if (order.appId !== order.merchant.appId && merchantRefunds.length > 0) refundsUnderEarlierApp++;
        if (paidStates.includes(status) && Math.round(Number(read.refundedAmount) * 100) !== gatewayMerchantRefunded) {
          violations.refunds_disagree!.push(`${label}: durapay says ${read.refundedAmount} refunded, Alipay ${(gatewayMerchantRefunded / 100).toFixed(2)}`);
        }
        // Temporal's view: the workflow is done with the same status (a REVIEW order waits for a person).
        const handle = client.workflow.getHandle(workflowId);
        const description = await handle.describe().catch(() => undefined);
        if (!description) {
          if (status !== 'PRECREATE_FAILED') violations.disagree_with_temporal!.push(`${label}: no workflow`);
        } else if (status === 'REVIEW') {
          if (description.status.name !== 'RUNNING') violations.disagree_with_temporal!.push(`${label}: REVIEW, the workflow is ${description.status.name}`);
        } else if (description.status.name !== 'COMPLETED') {
          violations.disagree_with_temporal!.push(`${label}: ${status}, the workflow is ${description.status.name}; ${await explainRun(handle, workflowId)}`);
        } else {
          // A REVIEW written after the payment workflow ended was decided in a review workflow of
          // its own: the order it left, and its PaymentStatus, are Temporal's word.
          const review = client.workflow.getHandle(reviewWorkflowId(workflowId));
          const reviewed = await review.describe().catch(() => undefined);
          const [decider, result] = reviewed
            ? ['the review workflow', ((await review.result()) as { status: string } | undefined)?.status ?? 'nothing']
            : ['the workflow', ((await handle.result()) as { status: string }).status];
          if (result !== status && !(status.endsWith('REFUNDED') && ['PAID', 'PARTIALLY_REFUNDED'].includes(result))) {
            violations.disagree_with_temporal!.push(`${label}: ${status}, ${decider} ended ${result}`);
          }
          if (reviewed && reviewed.searchAttributes.PaymentStatus?.[0] !== result) {
            violations.disagree_with_temporal!.push(`${label}: the review workflow ended ${result}, its PaymentStatus says ${String(reviewed.searchAttributes.PaymentStatus)}`);
          }
        }
        // A forged notify changes nothing: an order nobody paid is never PAID.
        if ((order.behaviour === 'never_scans' || order.behaviour === 'scans_only') && paidStates.includes(status)) {
          violations.forged_changed_state!.push(`${label}: PAID without a payment`);
        }
      }
    } finally {
      await connection.close();
    }
    // Every delivery signed with its merchant's webhook secret; per order, in the order things happened.
    const secrets = new Map(stack.merchants.map((m) => [m.id, m.webhookSecret]));
    const seen = new Map<string, { updatedAt: string; ids: Set<string> }>();
    for (const hook of stack.webhooks) {
      // Checked as a receiver would, on arrival: within 300 s of its clock then.
      if (!verifyWebhookSignature(secrets.get(hook.merchantId) ?? '', hook.signature, hook.body, { now: hook.receivedAt })) {
        violations.webhooks_bad_signature!.push(`${hook.merchantId}: ${hook.body.slice(0, 120)}`);
      }
      const event = JSON.parse(hook.body) as { id: string; data: { outTradeNo: string; updatedAt: string } };
      const key = `${hook.merchantId}/${event.data.outTradeNo}`;
      const before = seen.get(key) ?? { updatedAt: '', ids: new Set<string>() };
      if (!before.ids.has(event.id) && event.data.updatedAt < before.updatedAt) {
        violations.webhooks_missing_or_unordered!.push(`${key}: ${event.id} (${event.data.updatedAt}) after one of ${before.updatedAt}`);
      }
      before.ids.add(event.id);
      if (event.data.updatedAt > before.updatedAt) before.updatedAt = event.data.updatedAt;
      seen.set(key, before);
    }
    const last = lastWebhook();
    for (const order of orders) {
      const status = reads.get(order.no)?.status;
      if (!status || status === 'PRECREATE_FAILED') continue;
      const delivered = last.get(`${order.merchant.id}/${order.no}`)?.status;
      if (delivered !== status) violations.webhooks_missing_or_unordered!.push(`${order.no} (${order.behaviour}): ${status}, the last webhook said ${delivered ?? 'nothing'}`);
    }
    // Alipay's bill of the run's day, for each app, against what durapay recorded.
    const day = stack.billDay;
    const ops = (method: string, path: string, body?: unknown) =>
      jsonRequest(`${stack.balancerUrl}${path}`, method, body, { authorization: `Bearer ${stack.opsToken}` });
    for (const { appId, alipayMode } of stack.apps) {
      const started = await ops('POST', '/ops/reconciliations', { date: day, appId });
      if (started.status !== 202) {
        violations.reconciliation_mismatches!.push(`${appId}: the reconciliation of ${day} did not start (HTTP ${started.status})`);
        continue;
      }
      let result: any;
      for (const until = Date.now() + 120_000; Date.now() < until; await sleep(1_000)) {
        result = (await ops('GET', `/ops/reconciliations/${day}?appId=${appId}`)).body;
        if (result && result.status !== 'RUNNING') break;
      }
      if (result?.status !== 'DONE') violations.reconciliation_mismatches!.push(`${appId}: ${day} ended ${result?.status ?? 'unknown'} ${result?.reason ?? ''}`);
      for (const m of result?.mismatches ?? []) {
        violations.reconciliation_mismatches!.push(`${appId}: ${m.type} ${m.outTradeNo} local ${m.localAmount} gateway ${m.gatewayAmount} ${m.detail ?? ''}`);
      }
      reconciled.push(`${appId} (${alipayMode === 'cert' ? 'certificate' : 'key'} mode): ${result?.status} ${JSON.stringify(result?.totals ?? {})}`);
    }
    for (const kind of FAULT_CLASSES) if (faults[kind] === 0) violations.fault_never_fired!.push(kind);
    const engineLog = [...stack.engineWarnings].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count);
    return {
      orders: orders.length,
      byBehaviour,
      finalStates,
      faults,
      violations,
      forged,
      paymentsAfterClose,
      latePayments,
      resolutions,
      refundsUnderEarlierApp,
      reconciled,
      unusualEndings,
      engineLog,
      minutes: (Date.now() - started) / 60_000,
    };
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
  lines.push('', '| fault | fired | counted in |', '| --- | --- | --- |');
  for (const kind of FAULT_CLASSES) lines.push(`| ${kind.replaceAll('_', ' ')} | ${report.faults[kind]} | ${FAULT_UNITS[kind]} |`);
  lines.push('', `orders: ${report.orders}; final states: ${JSON.stringify(report.finalStates)}`);
  lines.push(`behaviours: ${JSON.stringify(report.byBehaviour)}`);
  lines.push(`forged notifies: ${report.forged.rejected} of ${report.forged.sent} rejected`);
  const late = report.paymentsAfterClose;
  lines.push(`payments after the close: ${late.refused} refused by Alipay (the order number voided), ${late.taken} taken`);
  lines.push(`late payments taken: ${report.latePayments.givenBack} given back by the engine's refund, ${report.latePayments.toReview} held in REVIEW and resolved by the operator`);
  const r = report.resolutions;
  lines.push(`operator resolutions: ${r.PAID} as PAID, ${r.CLOSED} as CLOSED; ${r.refusedWhileBalanceShort} refused first (balance short), resolved once topped up`);
  lines.push(`merchant refunds of orders paid under the app their merchant left: ${report.refundsUnderEarlierApp}`);
  for (const line of report.reconciled) lines.push(`reconciliation ${line}`);
  if (report.unusualEndings.length > 0) lines.push('', 'orders that ended without a payment or a close, or that an operator resolved:', ...report.unusualEndings.slice(0, 20).map((e) => `  ${e}`));
  lines.push('', `the engine's log, warnings and above (${report.engineLog.reduce((sum, e) => sum + e.count, 0)} lines):`);
  for (const { message, count } of report.engineLog.slice(0, 15)) lines.push(`  ${String(count).padStart(5)}  ${message}`);
  lines.push('', `took ${report.minutes.toFixed(1)} min`);
  return lines.join('\n');
}

export function passed(report: ChaosReport): boolean {
  return Object.values(report.violations).every((found) => found.length === 0);
}
