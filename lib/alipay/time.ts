// Alipay speaks Beijing time (UTC+8, no daylight saving) as "yyyy-MM-dd HH:mm:ss".
const BEIJING_OFFSET_MS = 8 * 3_600_000;

/** Truncates to the second, so the result is never later than the instant given. */
export function formatBeijingTime(epochMs: number): string {
  return new Date(epochMs + BEIJING_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

export function parseBeijingTime(text: string): number | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!) - BEIJING_OFFSET_MS;
}
