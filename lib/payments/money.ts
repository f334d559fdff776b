// Money is integer fen inside durapay and a two-decimal yuan string at the edges ("99.99").

export const MIN_AMOUNT_FEN = 1; // Alipay's minimum: 0.01 yuan
export const MAX_AMOUNT_FEN = 100_000_000_00; // Alipay's maximum: 100,000,000.00 yuan

export const YUAN_PATTERN = /^(0|[1-9]\d{0,8})\.\d{2}$/;
/** A yuan amount Alipay takes, "0.01" to "100000000.00", as one pattern (for the OpenAPI document). */
export const YUAN_RANGE_PATTERN = /^(?:0\.(?:0[1-9]|[1-9]\d)|[1-9]\d{0,7}\.\d{2}|100000000\.00)$/;

/** Parses "12.34" into 1234 fen; undefined when the text is not a two-decimal yuan amount. */
export function parseYuan(text: string): number | undefined {
  if (!YUAN_PATTERN.test(text)) return undefined;
  const [yuan, fen] = text.split('.') as [string, string];
  return Number(yuan) * 100 + Number(fen);
}

/** Formats 1234 fen as "12.34". */
export function formatYuan(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError(`not a fen amount: ${fen}`);
  const yuan = Math.floor(fen / 100);
  const rest = fen % 100;
  return `${yuan}.${rest.toString().padStart(2, '0')}`;
}

/** 123450 fen as a buyer reads money: "1,234.50" (the API's strings stay "1234.50"). */
export function formatYuanForPeople(fen: number): string {
  const [yuan, rest] = formatYuan(fen).split('.') as [string, string];
  return `${yuan.replace(/\B(?=(\d{3})+$)/g, ',')}.${rest}`;
}

/** Alipay answers amounts as yuan strings, sometimes without two decimals ("1", "1.5"). */
export function parseAlipayAmount(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,9}(\.\d{1,2})?$/.test(text)) return undefined;
  const [yuan, fen = ''] = text.split('.') as [string, string?];
  return Number(yuan) * 100 + Number(fen.padEnd(2, '0'));
}

/** A signed yuan amount as Alipay's bills write it ("-12.50", "0.01", "3"); undefined otherwise. */
export function parseSignedYuan(text: string): number | undefined {
  const match = /^([-+]?)(\d{1,12})(?:\.(\d{1,2}))?$/.exec(text);
  if (!match) return undefined;
  const fen = Number(match[2]) * 100 + Number((match[3] ?? '').padEnd(2, '0'));
  return match[1] === '-' ? -fen : fen;
}
