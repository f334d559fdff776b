// The reference the engine is compared with: a workflow that does nothing. Its update answers at
// once (a no-op update-with-start has the call shape of durapay's create), then it waits for the
// signal `done` (a bare signal to a waiting workflow, the shape of durapay's notify).
import { condition, defineSignal, defineUpdate, setHandler } from '@temporalio/workflow';

/** Its own task queue on the stack's server, beside durapay's. */
export const REFERENCE_TASK_QUEUE = 'bench-reference';

export const readyUpdate = defineUpdate<string>('ready');
export const doneSignal = defineSignal('done');

/** Waits at most this long for `done`: longer than any bench run. */
const WAIT_MS = 6 * 3_600_000;

export async function noopWorkflow(): Promise<void> {
  let done = false;
  setHandler(readyUpdate, () => 'ready');
  setHandler(doneSignal, () => {
    done = true;
  });
  await condition(() => done, WAIT_MS);
}
