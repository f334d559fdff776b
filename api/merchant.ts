// Who is calling the merchant API. Today durapay serves one merchant, the configured Alipay app;
// HMAC-signed requests with per-merchant secrets replace this middleware in a later issue.
import type { RequestHandler } from 'express';

export interface Merchant {
  id: string;
  appId: string;
}

export function singleMerchant(appId: string): RequestHandler {
  const merchant: Merchant = { id: `app-${appId}`, appId };
  return (_req, res, next) => {
    res.locals.merchant = merchant;
    next();
  };
}
