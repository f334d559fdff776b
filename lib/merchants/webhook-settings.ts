// How merchant webhooks are delivered: the answer timeout and the waits between attempts, and their
// defaults. A file of its own, importing nothing, so the configuration (lib/platform/config.ts)
// reads the defaults without importing the webhooks' workflow messages and the activity contracts.

export interface WebhookSettings {
  /** A delivery counts only as a 2xx within this. */
  timeoutMs: number;
  /** Waits between attempts: one attempt more than there are waits, then the event is failed. */
  retryScheduleMs: number[];
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  timeoutMs: 10_000,
  // 10s, 1m, 5m, 30m, 2h, 6h, 16h: 24 h 36 min 10 s from the first attempt to the last, so a
  // receiver down for a whole day still gets the event.
  retryScheduleMs: [10_000, 60_000, 300_000, 1_800_000, 7_200_000, 21_600_000, 57_600_000],
};
