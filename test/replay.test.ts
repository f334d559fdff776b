// Every workflow run is pinned to the build that started it (Worker Versioning), so a build only
// ever replays its own runs. The histories committed here are runs of the current build: a change
// to the workflows that cannot replay them fails this test. Such a change ships as a new worker
// version (a new TEMPORAL_WORKER_BUILD_ID, made current by a rollout) while this one drains, and
// its histories are recorded again: RECORD_HISTORIES=1 npx vitest run test/replay.test.ts
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { refundWorkflowId } from '../lib/payments/refund.js';
import { temporalConnectionOptions } from '../lib/platform/temporal-connection.js';
import { bundleChangedWorkflows } from './support/changed-workflows.js';
import { buyerCode } from './support/payment-codes.js';
import { startStack, type Stack } from './support/stack.js';

const HISTORIES = new URL('./fixtures/histories/', import.meta.url);
const RECORD = process.env.RECORD_HISTORIES === '1';
const RECORD_HINT = 'record them again with RECORD_HISTORIES=1 npx vitest run test/replay.test.ts';

let stack: Stack;
let client: Client;
let workflowBundle: { code: string };
beforeAll(async () => {
  stack = await startStack({ orderTimeout: '4s', pollLadder: '1s' });
  client = new Client({ connection: await Connection.connect(temporalConnectionOptions(stack.config.temporal)) });
  workflowBundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
});
afterAll(async () => {
  await client?.connection.close();
  await stack?.stop();
});


/** Each story ends with the ids of the workflows it ran, all finished. */
const STORIES: Record<string, () => Promise<string[]>> = {
  'qr-paid-by-notify': async () => {
    const outTradeNo = stack.newOrderNo('replay-paid');
    expect((await stack.createPayment({ outTradeNo, amount: '66.60', subject: 'replay' })).status).toBe(201);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    return [stack.workflowId(outTradeNo)];
  },
  'qr-closed-at-deadline': async () => {
    const outTradeNo = stack.newOrderNo('replay-deadline');
    expect((await stack.createPayment({ outTradeNo, amount: '3.00', subject: 'replay' })).status).toBe(201);
    await stack.waitForStatus(outTradeNo, 'CLOSED', 20_000);
    return [stack.workflowId(outTradeNo)];
  },
  'qr-cancelled-by-merchant': async () => {
    const outTradeNo = stack.newOrderNo('replay-cancel');
    expect((await stack.createPayment({ outTradeNo, amount: '4.00', subject: 'replay' })).status).toBe(201);
    expect((await stack.cancelPayment(outTradeNo)).status).toBe(200);
    await stack.waitForStatus(outTradeNo, 'CLOSED');
    return [stack.workflowId(outTradeNo)];
  },
  'barcode-paid-at-once': async () => {
    const outTradeNo = stack.newOrderNo('replay-barcode');
    const created = await stack.createPayment({ outTradeNo, amount: '36.80', subject: 'replay', method: 'barcode', authCode: await buyerCode(stack, { kind: 'pays' }) });
    expect(created.status).toBe(201);
    await stack.waitForStatus(outTradeNo, 'PAID');
    return [stack.workflowId(outTradeNo)];
  },
  'barcode-confirmed-later': async () => {
    const outTradeNo = stack.newOrderNo('replay-confirm');
    const authCode = await buyerCode(stack, { kind: 'confirms', afterMs: 1_500 });
    expect((await stack.createPayment({ outTradeNo, amount: '12.00', subject: 'replay', method: 'barcode', authCode })).status).toBe(201);
    await stack.waitForStatus(outTradeNo, 'PAID', 20_000);
    return [stack.workflowId(outTradeNo)];
  },
  'refund-in-part': async () => {
    const outTradeNo = stack.newOrderNo('replay-refund');
    expect((await stack.createPayment({ outTradeNo, amount: '10.00', subject: 'replay' })).status).toBe(201);
    await stack.simCall('POST', `/sim/trades/${outTradeNo}/pay`);
    await stack.waitForStatus(outTradeNo, 'PAID');
    expect((await stack.refund(outTradeNo, { outRequestNo: 'replay-refund-1', amount: '2.00' })).status).toBeLessThan(300);
    await stack.waitForRefund(outTradeNo, 'replay-refund-1', 'SUCCEEDED');
    return [stack.workflowId(outTradeNo), refundWorkflowId(stack.appId, stack.alipayNo(outTradeNo), 'replay-refund-1')];
  },
};

function historyFile(story: string, index: number): URL {
  return new URL(`${story}${index === 0 ? '' : `-${index}`}.history.json`, HISTORIES);
}

describe('the current build replays its own runs', () => {
  it.each(Object.keys(STORIES))('%s: a run made now, and the committed one', async (story) => {
    const workflowIds = await STORIES[story]!();
    for (const [index, workflowId] of workflowIds.entries()) {
      const handle = client.workflow.getHandle(workflowId);
      await handle.result();
      const history = await handle.fetchHistory();
      await Worker.runReplayHistory({ workflowBundle }, history, workflowId);
      const file = historyFile(story, index);
      if (RECORD) {
        mkdirSync(HISTORIES, { recursive: true });
        writeFileSync(file, historyToJSON(history));
      }
      expect(existsSync(file), `no committed history ${file.pathname}: ${RECORD_HINT}`).toBe(true);
      try {
        await Worker.runReplayHistory({ workflowBundle }, JSON.parse(readFileSync(file, 'utf8')), `committed-${story}-${index}`);
      } catch (err) {
        throw new Error(
          `the committed run ${story} no longer replays (${(err as Error).message}). The workflows changed in a way this build's runs cannot replay: ` +
            `deploy the change as a new worker version (a new TEMPORAL_WORKER_BUILD_ID) and let this one drain, then ${RECORD_HINT}`,
        );
      }
    }
  });

  it('the check can fail: a changed workflow does not replay the committed runs', async () => {
    const changed = await bundleChangedWorkflows();
    const history = JSON.parse(readFileSync(historyFile('qr-paid-by-notify', 0), 'utf8'));
    await expect(Worker.runReplayHistory({ workflowBundle: changed }, history, 'committed-qr-paid-by-notify')).rejects.toBeInstanceOf(DeterminismViolationError);
  });
});
