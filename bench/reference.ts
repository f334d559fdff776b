// The side-by-side references, called from the bench process: a no-op update-with-start and a
// bare signal on the stack's Temporal server (bench/reference-workflows.ts, run by
// bench/reference-worker.ts), and a bare alipay-sdk precreate against the stack's simulator.
import { Client, Connection, WithStartWorkflowOperation } from '@temporalio/client';
import type { AlipaySdk } from 'alipay-sdk';
import { createAlipayClient } from '../lib/alipay/client.js';
import { formatBeijingTime } from '../lib/alipay/time.js';
import { doneSignal, type noopWorkflow, readyUpdate, REFERENCE_TASK_QUEUE } from './reference-workflows.js';
import type { StackInfo } from './stack-process.js';

export class Reference {
  private constructor(
    private readonly connection: Connection,
    private readonly client: Client,
    private readonly alipay: AlipaySdk,
    private readonly notifyUrl: string,
  ) {}

  static async connect(stack: StackInfo): Promise<Reference> {
    const connection = await Connection.connect({ address: stack.temporalAddress });
    const client = new Client({ connection, namespace: stack.namespace });
    const alipay = createAlipayClient({
      appId: stack.appId,
      privateKey: stack.appPrivateKey,
      credentials: { mode: 'key', alipayPublicKey: stack.alipayPublicKey },
      gatewayUrl: `${stack.simulatorUrl}/gateway.do`,
    });
    return new Reference(connection, client, alipay, `${stack.apiUrl}/alipay/notify`);
  }

  /** The call shape of durapay's create: executeUpdateWithStart, conflict policy USE_EXISTING. */
  async updateWithStart(workflowId: string): Promise<void> {
    const startWorkflowOperation = new WithStartWorkflowOperation<typeof noopWorkflow>('noopWorkflow', {
      workflowId,
      taskQueue: REFERENCE_TASK_QUEUE,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    await this.client.workflow.executeUpdateWithStart(readyUpdate, { startWorkflowOperation });
  }

  /** A bare signal to a waiting reference workflow. */
  async signal(workflowId: string): Promise<void> {
    await this.client.workflow.getHandle(workflowId).signal(doneSignal);
  }

  /** alipay.trade.precreate with the parameters durapay's activity sends, signature verified. */
  async precreate(outTradeNo: string): Promise<void> {
    const answer = (await this.alipay.exec(
      'alipay.trade.precreate',
      {
        notifyUrl: this.notifyUrl,
        bizContent: {
          outTradeNo,
          totalAmount: '1.00',
          subject: 'bench',
          timeExpire: formatBeijingTime(Date.now() + 15 * 60_000),
          productCode: 'FACE_TO_FACE_PAYMENT',
        },
      },
      { validateSign: true },
    )) as { code?: string; qrCode?: string };
    if (answer.code !== '10000' || typeof answer.qrCode !== 'string') throw new Error(`bare precreate ${outTradeNo}: ${JSON.stringify(answer)}`);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
