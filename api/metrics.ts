// The API's Prometheus metrics at GET /metrics: requests by route pattern and status with their
// latency, what became of Alipay's notifies, and Node's process metrics. Per process; scraped
// without authentication (see the README: keep it off the public side of the load balancer).
import { trace } from '@opentelemetry/api';
import { Router, type RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NotifyRejection } from '../lib/alipay/notify.js';

const registry = new Registry();
collectDefaultMetrics({ register: registry });

/** A request no route took (a 404, or one refused before routing: rate limit, merchant auth). */
const UNMATCHED_ROUTE = 'unmatched';

const httpRequests = new Counter({
  name: 'durapay_http_requests_total',
  help: 'HTTP requests answered, by method, route pattern and status code',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});
const httpRequestDuration = new Histogram({
  name: 'durapay_http_request_duration_seconds',
  help: 'Time from a request to its answer, by method and route pattern',
  labelNames: ['method', 'route'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

/** verified: handed to its order's running workflow; late: its order's workflow had finished, so a
 *  late-notify workflow reads it; unaccepted: Temporal did not take it (Alipay sends it again). */
type NotifyOutcome = 'verified' | 'late' | 'rejected' | 'unaccepted';

const alipayNotifies = new Counter({
  name: 'durapay_alipay_notifies_total',
  help: "Alipay's async notifies by outcome, and by reason when rejected",
  labelNames: ['outcome', 'reason'] as const,
  registers: [registry],
});

/** The cashier pages' event streams open now, and the reads of the database that serve them all. */
export const cashierStreamsOpen = new Gauge({
  name: 'durapay_cashier_streams_open',
  help: "Cashier pages' event streams open now",
  registers: [registry],
});
export const cashierStatusReads = new Counter({
  name: 'durapay_cashier_status_reads_total',
  help: "Reads of the database for the open cashier event streams (one a second for all of them)",
  registers: [registry],
});

export function countNotify(outcome: NotifyOutcome, reason: NotifyRejection | '' = ''): void {
  alipayNotifies.inc({ outcome, reason });
}

/**
 * Counts each request under its route pattern (/v1/payments/:outTradeNo), never its URL, so the
 * label stays bounded. Express sets req.route when a route takes the request; the router's mount
 * path is in req.baseUrl only at that moment (it is restored as the request leaves the router, e.g.
 * towards the error handler), so the pattern is taken then, by a setter on this request.
 */
export function httpMetrics(): RequestHandler {
  return (req, res, next) => {
    const endTimer = httpRequestDuration.startTimer();
    // The request's HTTP span (lib/platform/tracing.ts) is named for its route, as the metrics are.
    const span = trace.getActiveSpan();
    let route = UNMATCHED_ROUTE;
    let matched: { path?: unknown } | undefined;
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => matched,
      set(value: { path?: unknown } | undefined) {
        matched = value;
        if (typeof value?.path !== 'string') return;
        route = req.baseUrl + value.path;
        span?.updateName(`${req.method} ${route}`).setAttribute('http.route', route);
      },
    });
    res.once('close', () => {
      // A client gone before any answer was sent has no status code.
      const status = res.headersSent ? String(res.statusCode) : 'aborted';
      httpRequests.inc({ method: req.method, route, status });
      endTimer({ method: req.method, route });
    });
    next();
  };
}

export function metricsRouter(): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  });
  return router;
}
