// The reference worker, in a process of its own: runs bench/reference-workflows.ts on the task
// queue bench-reference of the stack's Temporal server (same server, same namespace as durapay).
// IPC: 'ready' once polling, 'stop' to shut down. Run: node --import tsx bench/reference-worker.ts
// with TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE set.
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { REFERENCE_TASK_QUEUE } from './reference-workflows.js';

Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
const worker = await Worker.create({
  connection,
  namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
  taskQueue: REFERENCE_TASK_QUEUE,
  workflowsPath: fileURLToPath(new URL('./reference-workflows.ts', import.meta.url)),
});
const running = worker.run();

async function stop(): Promise<void> {
  if (worker.getState() === 'RUNNING') worker.shutdown();
  await running.catch(() => {});
  await connection.close();
  process.exit(0);
}
process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') void stop();
});
process.on('disconnect', () => void stop());
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
process.send?.({ type: 'ready', pid: process.pid });
await running;
