// Money in the console: integer fen inside, the API's two-decimal yuan strings ("1234.50") at the
// edge, and ¥1,234.50 on screen in every language (the same rule as lib/payments/money.ts).

const YUAN = /^(0|[1-9]\d{0,8})\.\d{2}$/;

/** "1234.50" → 123450; undefined for anything but a two-decimal yuan string. */
export function parseYuan(text: string | null | undefined): number | undefined {
  if (typeof text !== 'string' || !YUAN.test(text)) return undefined;
  const [yuan, fen] = text.split('.') as [string, string];
  return Number(yuan) * 100 + Number(fen);
}

/** 123450 → "1234.50", what the API takes. */
export function toYuan(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError(`not a fen amount: ${fen}`);
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

/** 123450 → "¥1,234.50". */
export function formatFen(fen: number): string {
  const [yuan, rest] = toYuan(fen).split('.') as [string, string];
  return `¥${yuan.replace(/\B(?=(\d{3})+$)/g, ',')}.${rest}`;
}

/** An API amount as people read it; "—" when there is none. */
export function formatYuan(text: string | null | undefined): string {
  const fen = parseYuan(text);
  return fen === undefined ? '—' : formatFen(fen);
}

/** What a person typed as yuan ("12", "12.5", "1,234.50") → fen; undefined when it is not money. */
export function parseTypedYuan(text: string): number | undefined {
  const plain = text.trim().replace(/^¥/, '').replace(/,/g, '');
  const match = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(plain);
  if (!match) return undefined;
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}
