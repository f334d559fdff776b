// A merchant's webhook receiver in a few lines: every POST is checked with the TypeScript SDK's
// verifier, on the raw body, before anything is believed. `npm run example:receiver` runs it on
// 127.0.0.1:4000 (PORT) with the secret in DURAPAY_WEBHOOK_SECRET: the listen secret `durapay
// listen` prints, or a webhook endpoint's own secret in production.
import { createServer } from 'node:http';
// In a merchant's own code: import { verifyWebhook, WebhookSignatureError } from '@durapay/sdk';
import { verifyWebhook, WebhookSignatureError } from '../sdk/typescript/src/index.js';

const secret = process.env.DURAPAY_WEBHOOK_SECRET;
if (!secret) {
  console.error('set DURAPAY_WEBHOOK_SECRET to the secret the webhooks are signed with (durapay listen prints its own)');
  process.exit(64);
}
const port = Number(process.env.PORT ?? 4000);

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      const event = verifyWebhook(secret, Buffer.concat(chunks), req.headers['durapay-signature']);
      const order = 'outTradeNo' in event.data ? ` ${event.data.outTradeNo}` : '';
      console.log(`verified ${event.type} ${event.id}${order}`);
      res.writeHead(200).end();
    } catch (error) {
      if (!(error instanceof WebhookSignatureError)) throw error;
      console.log(`refused (${error.reason}): ${error.message}`);
      res.writeHead(400).end();
    }
  });
}).listen(port, '127.0.0.1', () => console.log(`receiving webhooks on http://127.0.0.1:${port}/`));
