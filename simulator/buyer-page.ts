import { formatCents, type Trade } from './trades.js';

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What the buyer's phone shows after scanning: Scan and Pay drive the control API. */
export function buyerPage(trade: Trade): string {
  const base = `/sim/trades/${encodeURIComponent(trade.outTradeNo)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Alipay simulator</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:28rem;margin:2rem auto">
<h1>¥${formatCents(trade.totalCents)}</h1>
<p>${escapeHtml(trade.subject)}<br><small>${escapeHtml(trade.outTradeNo)}</small></p>
<button onclick="act('scan')">Scan</button> <button onclick="act('pay')">Pay</button>
<pre id="out"></pre>
<script>
async function act(action) {
  const res = await fetch(${JSON.stringify(base)} + '/' + action, { method: 'POST' });
  const body = await res.json();
  document.getElementById('out').textContent = res.status + ' ' + (body.status || body.error) + '\\n' + (body.message || '');
}
</script>
</body></html>`;
}
