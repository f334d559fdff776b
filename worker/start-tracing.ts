// The worker's tracing, started as worker/main.ts's first import so that pg is instrumented before
// anything loads it (lib/platform/tracing.ts).
import { startTracing } from '../lib/platform/tracing.js';

export const tracing = startTracing('durapay-worker');
