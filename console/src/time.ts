// Instants from the API (ISO 8601, UTC) in the browser's own time zone, as YYYY-MM-DD HH:mm:ss.
import dayjs from 'dayjs';

export function formatTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined || iso === '') return '—';
  const d = dayjs(iso);
  return d.isValid() ? d.format('YYYY-MM-DD HH:mm:ss') : String(iso);
}

/** How long ago, in whole minutes, hours or days, for a queue's "age" column. */
export function ageOf(iso: string, now = Date.now()): { unit: 'm' | 'h' | 'd'; n: number } {
  const minutes = Math.max(0, Math.floor((now - Date.parse(iso)) / 60_000));
  if (minutes < 60) return { unit: 'm', n: minutes };
  if (minutes < 48 * 60) return { unit: 'h', n: Math.floor(minutes / 60) };
  return { unit: 'd', n: Math.floor(minutes / 1440) };
}
