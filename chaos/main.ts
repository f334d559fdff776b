// `npm run chaos`: CHAOS_ORDERS orders (default 1 000) through two workers, two APIs, the Temporal
// dev server on its file (CHAOS_TEMPORAL=cluster: a Temporal server on a PostgreSQL of its own),
// PostgreSQL and the simulator, with faults injected on a schedule; prints the invariants and the
// faults that fired, and exits 1 on any violation.
import { formatReport, passed, runChaos } from './run.js';
import { stopRunningStacks } from './stack.js';

// Ctrl-C reaches this process more than once (from the terminal, and relayed by tsx): the first
// one stops the stack, the repeats must not end the process halfway through, leaving parts behind.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`[chaos] ${signal}: stopping everything it started`);
    void stopRunningStacks().finally(() => process.exit(130));
  });
}

function setting(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name}=${text}: must be a positive whole number`);
  return value;
}

const temporal = process.env.CHAOS_TEMPORAL?.trim() || 'dev';
if (temporal !== 'dev' && temporal !== 'cluster') throw new Error(`CHAOS_TEMPORAL=${temporal}: must be dev or cluster`);

const report = await runChaos({
  orders: setting('CHAOS_ORDERS', 1_000),
  concurrency: setting('CHAOS_CONCURRENCY', 16),
  orderTimeoutSeconds: setting('CHAOS_ORDER_TIMEOUT_SECONDS', 30),
  faultEveryMs: setting('CHAOS_FAULT_EVERY_MS', 8_000),
  seed: setting('CHAOS_SEED', Date.now() % 2 ** 31),
  temporal,
  say: (message) => console.log(`[chaos] ${message}`),
});
console.log(`\n${formatReport(report)}`);
process.exit(passed(report) ? 0 : 1);
