/** Alipay speaks Beijing wall-clock time (UTC+8, no DST) in `yyyy-MM-dd HH:mm:ss`. */
const BEIJING_OFFSET_MS = 8 * 3_600_000;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

export function formatBeijing(ms: number): string {
  return new Date(ms + BEIJING_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** `yyyyMMdd` in Beijing, the prefix of Alipay trade numbers. */
export function beijingDate(ms: number): string {
  return formatBeijing(ms).slice(0, 10).replaceAll('-', '');
}

/** Epoch ms, or null when the text is not a real `yyyy-MM-dd HH:mm:ss` instant. */
export function parseBeijing(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!) - BEIJING_OFFSET_MS;
  // Date.UTC rolls over (02-30 → 03-02); a round trip rejects such dates.
  return formatBeijing(ms) === text ? ms : null;
}

/**
 * Expiry instant for a relative `timeout_express`: `<n>m|h|d` within 1m..15d,
 * or `1c` (end of the current Beijing day). Null when invalid.
 */
export function parseTimeoutExpress(text: string, now: number): number | null {
  if (text === '1c') {
    const beijingDayStart = Math.floor((now + BEIJING_OFFSET_MS) / DAY_MS) * DAY_MS - BEIJING_OFFSET_MS;
    return beijingDayStart + DAY_MS;
  }
  const m = /^([1-9]\d*)([mhd])$/.exec(text);
  if (!m) return null;
  const unitMs = { m: MINUTE_MS, h: 60 * MINUTE_MS, d: DAY_MS }[m[2] as 'm' | 'h' | 'd'];
  const span = Number(m[1]) * unitMs;
  return span <= 15 * DAY_MS ? now + span : null;
}

/** `yyyy-MM-dd HH:mm:ss.SSS` in Beijing: the form of gmt_refund in refund notifies. */
export function formatBeijingMillis(ms: number): string {
  return new Date(ms + BEIJING_OFFSET_MS).toISOString().slice(0, 23).replace('T', ' ');
}
