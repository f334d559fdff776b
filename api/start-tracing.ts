// The API's tracing, started as api/main.ts's first import so that Node's http and pg are
// instrumented before anything loads them (lib/platform/tracing.ts).
import { startTracing } from '../lib/platform/tracing.js';

export const tracing = startTracing('durapay-api');
