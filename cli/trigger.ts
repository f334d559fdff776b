// `pay` and `trigger`: make things happen on an engine that talks to the Alipay simulator, so a
// merchant's webhook receiver (or `listen`) sees real events without a buyer or a phone.
import { randomBytes, randomInt } from 'node:crypto';
import { CliError, EXIT } from './exit.js';
import { API_OPTIONS, call, jsonMode, orderPath, out, printResult, refusedBy, type Command, type Env, type Values } from './kit.js';
import { payQrCode, readOrder, simulatorQrCode, waitForOrder, waitForRefund } from './simulator.js';

/** How each event type is driven, in the order the steps run. */
const SCENARIOS = {
  'payment.paid': { pay: true },
  'payment.closed': { pay: false, cancel: true },
  'refund.succeeded': { pay: true, refund: 'partial' },
  'payment.partially_refunded': { pay: true, refund: 'partial' },
  'payment.refunded': { pay: true, refund: 'full' },
} as const satisfies Record<string, { pay: boolean; cancel?: boolean; refund?: 'partial' | 'full' }>;

export const TRIGGER_TYPES = Object.keys(SCENARIOS) as readonly string[];

const yuan = (fen: number) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;

/** One step for people; --json prints only the final document. */
function step(values: Values, text: string) {
  if (!jsonMode(values)) out(text);
}

/** Refuses an order that is not the simulator's to pay; the reason says why. */
async function requireSimulator(order: Record<string, unknown>): Promise<string> {
  const check = await simulatorQrCode(order.qrCode);
  if (!check.ok) {
    throw new CliError(`refused: only an engine that talks to the Alipay simulator can be paid from the CLI; ${check.reason}`, EXIT.refused);
  }
  return order.qrCode as string;
}

async function payAndWait(values: Values, env: Env, outTradeNo: string, qrCode: string, timeoutMs: number) {
  await payQrCode(qrCode);
  return waitForOrder(values, env, outTradeNo, 'PAID', { timeoutMs });
}

function timeoutMs(values: Values): number {
  const text = typeof values['timeout-seconds'] === 'string' ? values['timeout-seconds'] : undefined;
  if (text === undefined) return 30_000;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new CliError('--timeout-seconds: must be a whole number of seconds, at least 1');
  return Number(text) * 1000;
}

export const SIMULATOR_COMMANDS: Record<string, Command> = {
  pay: {
    synopsis: 'pay <no> [--timeout-seconds <n>]',
    summary: "pay an AWAITING_PAYMENT order as its buyer, through the Alipay simulator (never a real Alipay), and wait until it is PAID",
    positionals: ['no'],
    options: { ...API_OPTIONS, 'timeout-seconds': { type: 'string' } },
    async run(values, [no], env) {
      const wait = timeoutMs(values);
      const order = await readOrder(values, env, no!);
      if (order.status !== 'AWAITING_PAYMENT') {
        throw new CliError(`refused: order ${no} is ${String(order.status)}; only an AWAITING_PAYMENT order can be paid`, EXIT.refused);
      }
      const qrCode = await requireSimulator(order);
      const paid = await payAndWait(values, env, no!, qrCode, wait);
      printResult(values, paid);
      return EXIT.ok;
    },
  },

  trigger: {
    synopsis: `trigger <event-type> [--timeout-seconds <n>]`,
    summary: `make a test order fire an event through the simulator: ${TRIGGER_TYPES.join(', ')}`,
    positionals: ['event-type'],
    completes: TRIGGER_TYPES,
    options: { ...API_OPTIONS, 'timeout-seconds': { type: 'string' } },
    async run(values, [type], env) {
      if (!Object.hasOwn(SCENARIOS, type!)) {
        throw new CliError(`trigger: cannot make "${type}" happen; supported: ${TRIGGER_TYPES.join(', ')}`);
      }
      const scenario: { pay: boolean; cancel?: boolean; refund?: 'partial' | 'full' } = SCENARIOS[type as keyof typeof SCENARIOS];
      const wait = timeoutMs(values);
      const outTradeNo = `trigger-${type!.replace(/[._]/g, '-')}-${randomBytes(4).toString('hex')}`;
      // A partial refund needs at least 0.02 to leave something unrefunded.
      const amountFen = randomInt(scenario.refund === 'partial' ? 2 : 1, 101);
      const created = await call(values, env, 'POST', '/v1/payments', { outTradeNo, amount: yuan(amountFen), subject: `durapay trigger ${type}` });
      if (!created.ok) throw refusedBy(created, 'POST', `cannot create the test order ${outTradeNo}`);
      let order = created.json as Record<string, unknown>;
      step(values, `created ${outTradeNo} (${yuan(amountFen)} yuan): ${String(order.status)}`);
      const steps = ['created'];
      let refund: Record<string, unknown> | undefined;

      // Test orders only against the simulator, whatever the event: never at the real Alipay.
      let qrCode: string;
      try {
        qrCode = await requireSimulator(order);
      } catch (error) {
        // Nobody will pay it: close it rather than leave it open until its deadline.
        const cancelled = await call(values, env, 'POST', `${orderPath(outTradeNo)}/cancel`).catch(() => undefined);
        const what = cancelled?.ok ? `cancelled the test order ${outTradeNo}` : `could not cancel the test order ${outTradeNo}`;
        throw new CliError(`${(error as Error).message} (${what})`, EXIT.refused);
      }
      if (scenario.pay) {
        order = await payAndWait(values, env, outTradeNo, qrCode, wait);
        steps.push('paid');
        step(values, `paid ${outTradeNo} through the simulator: ${String(order.status)}`);
      }
      if (scenario.cancel) {
        const cancelled = await call(values, env, 'POST', `${orderPath(outTradeNo)}/cancel`);
        if (!cancelled.ok) throw refusedBy(cancelled, 'POST', `cannot cancel ${outTradeNo}`);
        order = await waitForOrder(values, env, outTradeNo, 'CLOSED', { timeoutMs: wait, givesUp: ['PAID', 'REVIEW'] });
        steps.push('cancelled');
        step(values, `cancelled ${outTradeNo}: ${String(order.status)}`);
      }
      if (scenario.refund) {
        const refundFen = scenario.refund === 'full' ? amountFen : Math.floor(amountFen / 2);
        const outRequestNo = `${outTradeNo}-r1`;
        const answer = await call(values, env, 'POST', `${orderPath(outTradeNo)}/refunds`, { outRequestNo, amount: yuan(refundFen), reason: 'durapay trigger' });
        if (!answer.ok) throw refusedBy(answer, 'POST', `cannot refund ${outTradeNo}`);
        refund = await waitForRefund(values, env, outTradeNo, outRequestNo, wait);
        const status = scenario.refund === 'full' ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
        order = await waitForOrder(values, env, outTradeNo, status, { timeoutMs: wait, givesUp: ['REVIEW'] });
        steps.push(`refunded ${yuan(refundFen)}`);
        step(values, `refunded ${yuan(refundFen)} of ${outTradeNo} (${outRequestNo}): ${String(order.status)}`);
      }

      if (jsonMode(values)) {
        printResult(values, { type, outTradeNo, steps, status: order.status, order, ...(refund && { refund }) });
      } else {
        out(`triggered ${type}: order ${outTradeNo} is ${String(order.status)}`);
      }
      return EXIT.ok;
    },
  },
};

