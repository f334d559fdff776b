// The merchant API for payments: create (idempotent), read, cancel.
import { Router, type Response } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import { MAX_AMOUNT_FEN, MIN_AMOUNT_FEN, parseYuan, YUAN_RANGE_PATTERN } from '../lib/payments/money.js';
import {
  cancelPaymentUpdate,
  createPaymentUpdate,
  PAYMENT_WORKFLOW_TYPE,
  paymentWorkflowId,
  searchAttributes,
  type CreatePaymentRequest,
  type LatePaymentPolicy,
  type PaymentTimings,
  type PaymentView,
  type PaymentWorkflowInput,
} from '../lib/payments/payment.js';
import {
  fitsAlipay,
  fittingOrderNumberPattern,
  MAX_ALIPAY_OUT_TRADE_NO,
  MAX_ORDER_NUMBER_WEIGHT,
  toAlipayOutTradeNo,
} from '../lib/alipay/order-numbers.js';
import { AUTH_CODE_PATTERN, AUTH_CODE_RULE, type PaymentCodeSealer } from '../lib/alipay/payment-code.js';
import type { AlipayAppDirectory } from '../lib/alipay/apps.js';
import type { BarcodeSettings } from '../lib/platform/config.js';
import { isPrivateAddress, literalAddress, PRIVATE_TARGET_RULE, type WebhookPrivateTargets } from '../lib/merchants/webhook-targets.js';
import { answerWithin, failureType } from './answer-time.js';
import { newCashierToken } from './cashier.js';
import { requestMemo } from './request-ids.js';
import { HttpError, invalidField, invalidRequest } from './errors.js';
import { findPayment, paymentResource, type PaymentRow } from './read-model.js';
import { noteOrder, noteOrderParam, type Merchant } from './merchant.js';

/** The workflow's signature, without importing workflow code into the API. */
type PaymentWorkflow = (input: PaymentWorkflowInput) => Promise<PaymentView>;

export interface PaymentsDeps {
  client: Client;
  pool: pg.Pool;
  taskQueue: string;
  timings: PaymentTimings;
  /** How long a create or cancel waits for the workflow's answer before a 503. */
  answerTimeoutMs: number;
  /** Each app's notify URL and seller id (lib/alipay/apps.ts). */
  apps: Pick<AlipayAppDirectory, 'settings'>;
  latePaymentPolicy: LatePaymentPolicy;
  barcode: BarcodeSettings;
  /** Seals barcode payment codes for the worker (DURAPAY_API_KEYS, which the API cannot start without). */
  paymentCodes: PaymentCodeSealer;
  /** Where buyers reach this API: the base of cashierUrl. */
  publicBaseUrl: string;
  /** WEBHOOK_PRIVATE_TARGETS: under deny, a notifyUrl at a private address is refused here. */
  webhookPrivateTargets: WebhookPrivateTargets;
}

/** Alipay's rule for out_trade_no, and for out_request_no too. */
export const orderNumber = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z, a-z, 0-9, _ and -');

// A rule checked in a refinement is said to the OpenAPI document by the `pattern` beside it; a test
// checks each such pattern against the refinement (test/openapi-contract.test.ts).

export const yuanAmount = z
  .string({ error: 'must be a string of yuan with two decimals, e.g. "12.50"' })
  .refine((text) => {
    const fen = parseYuan(text);
    return fen !== undefined && fen >= MIN_AMOUNT_FEN && fen <= MAX_AMOUNT_FEN;
  }, 'must be yuan with two decimals from "0.01" to "100000000.00", e.g. "12.50"')
  .meta({
    description: 'Yuan with exactly two decimals, from "0.01" to "100000000.00".',
    pattern: YUAN_RANGE_PATTERN.source,
    examples: ['12.50'],
  });

/**
 * Text that survives UTF-8 unchanged. A lone surrogate (valid in JSON as a \uD800 escape) becomes
 * U+FFFD on the way to Temporal and PostgreSQL, so the record would no longer match the request.
 */
export function isWellFormedText(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}
export const WELL_FORMED_RULE = 'must be well-formed Unicode (no unpaired surrogates)';

/** No control characters, as a JSON Schema pattern. */
export const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]*$';
/** No control characters, and something other than white space. */
export const NOT_BLANK_NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$';

/** Text a person wrote (a subject, a reason): no control characters, and well-formed Unicode. */
export function plainText(schema: z.ZodString) {
  return schema.refine((text) => !/[\u0000-\u001f\u007f]/.test(text), 'must not contain control characters').refine(isWellFormedText, WELL_FORMED_RULE);
}

/** A strict body names the fields it does not know. */
export const unknownFields = {
  error: (issue: { code?: string; keys?: string[] }) => (issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys!.join(', ')}` : undefined),
};

/** The order named in the path, or a 404 (a 400 for a malformed number). */
export async function requireOrder(pool: pg.Pool, merchant: Merchant, id: string): Promise<PaymentRow> {
  const parsed = orderNumber.safeParse(id);
  if (!parsed.success) throw invalidRequest(parsed.error);
  const row = await findPayment(pool, merchant.id, parsed.data);
  if (!row) throw new HttpError('NOT_FOUND', `no payment ${parsed.data}`);
  return row;
}

/** Where durapay posts webhooks: an order's notifyUrl, a webhook endpoint's url. */
export function webhookUrl(what: string) {
  return (
    z
      .url({ protocol: /^https?$/, error: 'must be an http or https URL of at most 512 characters' })
      .max(512, 'must be an http or https URL of at most 512 characters')
      // URL parsing forgives these, but the text is stored as given: PostgreSQL refuses NUL, and a
      // lone surrogate would be stored as U+FFFD, another text than the merchant sent.
      .refine((text) => !/[\u0000-\u0020\u007f]/.test(text), 'must not contain spaces or control characters')
      .refine(isWellFormedText, WELL_FORMED_RULE)
      .meta({
        description: `${what}: an http or https URL, no spaces or control characters, well-formed Unicode. Under WEBHOOK_PRIVATE_TARGETS=deny an address in a private, loopback or link-local range is refused.`,
        pattern: '^[Hh][Tt][Tt][Pp][Ss]?:[^\\u0000-\\u0020\\u007f]*$',
        examples: ['https://shop.example.com/durapay/webhooks'],
      })
  );
}

/** The 400 a webhook URL at a private address gets under WEBHOOK_PRIVATE_TARGETS=deny; a name is
 *  checked by the worker at each delivery, against what it resolves to then. */
export function refusePrivateTarget(field: string, url: string | undefined, targets: WebhookPrivateTargets): void {
  const address = url === undefined ? undefined : literalAddress(new URL(url));
  if (targets === 'deny' && address !== undefined && isPrivateAddress(address)) throw invalidField(field, PRIVATE_TARGET_RULE);
}

export const createPaymentBody = z.strictObject(
  {
    outTradeNo: orderNumber.meta({
      description: `The merchant's own order number, unique per merchant: A-Z, a-z, 0-9, _ and -. With the merchant id in front it must fit Alipay's 64-character out_trade_no: at most ${MAX_ORDER_NUMBER_WEIGHT} characters, each _ or - counting as two (the pattern says exactly that).`,
      pattern: fittingOrderNumberPattern(),
      examples: ['order-1001'],
    }),
    amount: yuanAmount,
    subject: plainText(
      z
        .string({ error: 'must be a string of 1-256 characters' })
        .min(1, 'must be 1-256 characters')
        .max(256, 'must be 1-256 characters')
        .refine((text) => text.trim().length > 0, 'must not be blank'),
    ).meta({
      description: 'What the buyer sees in Alipay: not blank, no control characters, well-formed Unicode (no unpaired surrogates).',
      pattern: NOT_BLANK_NO_CONTROL_CHARACTERS,
      examples: ['A cup of tea'],
    }),
    // A precreated QR code lives at most 2 hours at Alipay, so no order waits longer.
    timeoutMinutes: z
      .number({ error: 'must be a whole number of minutes from 1 to 120' })
      .int('must be a whole number of minutes from 1 to 120')
      .min(1, 'must be a whole number of minutes from 1 to 120')
      .max(120, 'must be a whole number of minutes from 1 to 120')
      .meta({ description: 'How long the order waits for payment; default PAYMENT_TIMEOUT.' })
      .optional(),
    // Where durapay posts this order's webhooks.
    notifyUrl: webhookUrl("Where durapay posts this order's webhooks").optional(),
    method: z
      .enum(['qr', 'barcode'], { error: 'must be qr or barcode' })
      .meta({ description: "qr (default): a QR code the buyer scans. barcode: the cashier scanned the buyer's payment code, given as authCode." })
      .optional(),
    authCode: z
      .string({ error: AUTH_CODE_RULE })
      .regex(AUTH_CODE_PATTERN, AUTH_CODE_RULE)
      .meta({
        description: "Barcode only: the buyer's payment code (付款码), 16-24 digits starting with 25-30. Never stored or logged in full.",
        examples: ['286288211188855245'],
      })
      .optional(),
  },
  unknownFields,
).superRefine((body, ctx) => {
  if (body.method === 'barcode') {
    if (body.authCode === undefined) ctx.addIssue({ code: 'custom', path: ['authCode'], message: `required with method barcode; ${AUTH_CODE_RULE}` });
    // The buyer confirms within BARCODE_CONFIRM_WINDOW; there is no QR code to expire.
    if (body.timeoutMinutes !== undefined) ctx.addIssue({ code: 'custom', path: ['timeoutMinutes'], message: 'applies to qr orders only; a barcode order waits BARCODE_CONFIRM_WINDOW' });
  } else if (body.authCode !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['authCode'], message: 'only with method barcode' });
  }
}).meta({
  id: 'CreatePaymentRequest',
  description: 'A QR order (the default), or a barcode order with the payment code the cashier scanned.',
  // The refinement above, as JSON Schema says it.
  if: { required: ['method'], properties: { method: { const: 'barcode' } } },
  then: { required: ['authCode'], properties: { authCode: true, timeoutMinutes: false } },
  else: { properties: { authCode: false } },
  examples: [
    { outTradeNo: 'order-1001', amount: '12.50', subject: 'A cup of tea' },
    { outTradeNo: 'order-1002', amount: '36.00', subject: 'Lunch set', timeoutMinutes: 15, notifyUrl: 'https://shop.example.com/durapay/webhooks' },
    { outTradeNo: 'order-1003', amount: '8.80', subject: 'Coffee', method: 'barcode', authCode: '286288211188855245' },
  ],
});

function orderConflict(outTradeNo: string): HttpError {
  return new HttpError('ORDER_CONFLICT', `order ${outTradeNo} exists with a different amount, subject, method or payment code`);
}

export function paymentsRouter(deps: PaymentsDeps): Router {
  const router = Router();
  router.param('outTradeNo', noteOrderParam);
  const { client, pool } = deps;

  const withinAnswerTime = <T>(what: string, call: () => Promise<T>) => answerWithin(client, deps.answerTimeoutMs, what, call);
  const requirePayment = (merchant: Merchant, id: string) => requireOrder(pool, merchant, id);
  const resource = (row: PaymentRow) => paymentResource(row, deps.publicBaseUrl);

  /** An order number already in the record answers from it: a finished order is never reopened. */
  function answerFromRecord(res: Response, row: PaymentRow, request: CreatePaymentRequest): void {
    const sameOrder =
      row.amount_fen === request.amountFen &&
      row.subject === request.subject &&
      row.method === (request.method ?? 'qr') &&
      (row.auth_code_fingerprint ?? undefined) === request.paymentCodeFingerprint;
    if (!sameOrder) throw orderConflict(row.out_trade_no);
    // A barcode create answers with its outcome, whatever it is: PAID, AWAITING_PAYMENT while the
    // buyer confirms, CLOSED (cancelled at Alipay) or FAILED (refused by Alipay).
    if (row.method === 'barcode') {
      res.status(201).json(resource(row));
      return;
    }
    switch (row.status) {
      case 'AWAITING_PAYMENT':
        res.status(201).json(resource(row));
        return;
      case 'CLOSED':
        throw new HttpError('ORDER_CLOSED', `order ${row.out_trade_no} is closed; use a new order number`, resource(row));
      case 'PRECREATE_FAILED':
        throw new HttpError('PRECREATE_FAILED', `Alipay did not issue a QR code: ${row.reason ?? 'unknown'}`, resource(row));
      default:
        res.status(200).json(resource(row));
    }
  }

  router.post('/payments', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    // One schema for every request (zod compiles each schema once); the merchant's own rule after it.
    const parsed = createPaymentBody.safeParse(req.body ?? {});
    if (!parsed.success) throw invalidRequest(parsed.error);
    const body = parsed.data;
    if (!fitsAlipay(merchant.id, body.outTradeNo)) {
      throw invalidField(
        'outTradeNo',
        `must fit Alipay's 64-character out_trade_no with the merchant prefix: at most ${MAX_ALIPAY_OUT_TRADE_NO - merchant.id.length - 1} characters, each _ or - counting as two`,
      );
    }
    refusePrivateTarget('notifyUrl', body.notifyUrl, deps.webhookPrivateTargets);
    noteOrder(res, body.outTradeNo);
    const alipayOutTradeNo = toAlipayOutTradeNo(merchant.id, body.outTradeNo);
    const amountFen = parseYuan(body.amount)!;
    // A finished order is answered from the record below: Temporal refuses to start its workflow
    // again, and once Temporal has forgotten it, the new run's claim finds the order number taken.
    const workflowId = paymentWorkflowId(merchant.appId, alipayOutTradeNo);
    // The code never travels or rests in clear: sealed for this order's worker.
    const barcode = body.method === 'barcode' ? deps.paymentCodes.seal(body.authCode!, workflowId) : undefined;
    const app = await deps.apps.settings(merchant.appId);
    if (!app) throw new Error(`merchant ${merchant.id}'s Alipay app ${merchant.appId} is not registered`);
    const request: CreatePaymentRequest = {
      amountFen,
      subject: body.subject,
      ...(barcode ? { method: 'barcode' as const, paymentCodeFingerprint: barcode.fingerprint } : {}),
    };
    const input: PaymentWorkflowInput = {
      order: {
        appId: merchant.appId,
        outTradeNo: body.outTradeNo,
        alipayOutTradeNo,
        notifyUrl: body.notifyUrl,
        amountFen,
        subject: body.subject,
        sellerId: app.sellerId,
        alipayNotifyUrl: app.notifyUrl,
        merchantId: merchant.id,
        ...(barcode ? { method: 'barcode' as const, paymentCode: barcode } : {}),
      },
      timings: barcode
        ? {
            // The buyer confirms on the phone: queried every few seconds, cancelled after the window.
            orderTimeoutMs: deps.barcode.confirmWindowMs,
            pollLadderMs: [deps.barcode.queryEveryMs],
            historyLimit: deps.timings.historyLimit,
            answerWithinMs: deps.barcode.answerWithinMs,
          }
        : {
            ...deps.timings,
            orderTimeoutMs: body.timeoutMinutes ? body.timeoutMinutes * 60_000 : deps.timings.orderTimeoutMs,
          },
      latePaymentPolicy: deps.latePaymentPolicy,
    };
    const startWorkflowOperation = new WithStartWorkflowOperation<PaymentWorkflow>(PAYMENT_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [input],
      // Same order again: join the running workflow and get its QR code back.
      workflowIdConflictPolicy: 'USE_EXISTING',
      // Its log lines carry the id of the request that started it (a repeat finds it started).
      ...requestMemo(),
      // A finished order is never started again (that would precreate a second time).
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [
        { key: searchAttributes.paymentStatus, value: 'AWAITING_PAYMENT' },
        { key: searchAttributes.outTradeNo, value: body.outTradeNo },
        { key: searchAttributes.amountFen, value: amountFen },
        { key: searchAttributes.merchantId, value: merchant.id },
      ],
    });
    // A barcode create may wait for the buyer's confirmation, up to BARCODE_ANSWER_TIMEOUT.
    const answerTimeoutMs = deps.answerTimeoutMs + (barcode ? deps.barcode.answerWithinMs : 0);
    let running = true;
    try {
      await answerWithin(client, answerTimeoutMs, 'create', () =>
        client.workflow.executeUpdateWithStart(createPaymentUpdate, { args: [request], startWorkflowOperation }),
      );
    } catch (err) {
      if (failureType(err) === 'OrderConflict') {
        throw orderConflict(body.outTradeNo);
      }
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // The order's workflow has finished: answer from the record, if it is the same order.
      running = false;
    }
    if (running && !barcode) await giveCashierPage(workflowId);
    const row = await findPayment(pool, merchant.id, body.outTradeNo);
    if (!row) throw new Error(`payment ${workflowId} has no record after create`);
    answerFromRecord(res, row, request);
  });

  /**
   * The buyer's page key, written here once the workflow has claimed the row, never handed to the
   * workflow: its history is readable by anyone with Temporal access. The first create to get here
   * writes it; a repeat, or a create after a crash between the claim and this write, keeps or fills
   * it. A barcode order has no page: the cashier has already scanned the buyer.
   */
  async function giveCashierPage(paymentId: string): Promise<void> {
    await pool.query('UPDATE payments SET cashier_token = $2 WHERE id = $1 AND cashier_token IS NULL', [paymentId, newCashierToken()]);
  }

  router.get('/payments/:outTradeNo', async (req, res) => {
    const row = await requirePayment(res.locals.merchant as Merchant, req.params.outTradeNo!);
    res.json(resource(row));
  });

  router.post('/payments/:outTradeNo/cancel', async (req, res) => {
    const merchant = res.locals.merchant as Merchant;
    const row = await requirePayment(merchant, req.params.outTradeNo!);
    if (row.status === 'AWAITING_PAYMENT') {
      try {
        await withinAnswerTime('cancel', () => client.workflow.getHandle(row.id).executeUpdate(cancelPaymentUpdate));
      } catch (err) {
        // Rejected because it is paid, or finished meanwhile: the record below tells which.
        if (failureType(err) !== 'NotCancellable' && !(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
    const settled = (await findPayment(pool, merchant.id, row.out_trade_no))!;
    if (settled.status !== 'CLOSED') {
      throw new HttpError('NOT_CANCELLABLE', `order ${row.out_trade_no} is ${settled.status}`, resource(settled));
    }
    res.json(resource(settled));
  });

  return router;
}
