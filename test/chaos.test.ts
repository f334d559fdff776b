// The chaos run, reduced (`npm run chaos` is the full one): a few dozen orders through two workers,
// two APIs, Temporal (the dev server on its own file, and a Temporal server on a PostgreSQL of its
// own) and a PostgreSQL of its own, with every fault class injected, and every money invariant
// checked against the simulator's ledger.
import { describe, expect, it } from 'vitest';
import { FAULT_CLASSES, formatReport, runChaos } from '../chaos/run.js';

describe.each(['dev', 'cluster'] as const)('the chaos run, reduced, on the Temporal %s server', (temporal) => {
  it('keeps every money invariant while workers, APIs, Temporal, PostgreSQL, the gateway and notifies fail', async () => {
    const report = await runChaos({
      orders: 36,
      concurrency: 12,
      orderTimeoutSeconds: 20,
      faultEveryMs: 3_000,
      seed: 20261124,
      temporal,
      say: () => {},
    });
    console.log(formatReport(report));
    expect(report.orders).toBe(36);
    for (const [invariant, found] of Object.entries(report.violations)) expect(found, invariant).toEqual([]);
    for (const kind of FAULT_CLASSES) expect(report.faults[kind], kind).toBeGreaterThan(0);
    expect(report.forged.sent).toBeGreaterThan(0);
    expect(report.forged.rejected).toBe(report.forged.sent);
    expect((report.finalStates.PAID ?? 0) + (report.finalStates.CLOSED ?? 0)).toBeGreaterThan(0);
    // Every late payment Alipay took was given back by the engine or decided by the operator.
    expect(report.latePayments.givenBack + report.latePayments.toReview).toBe(report.paymentsAfterClose.taken);
  }, 600_000);
});
