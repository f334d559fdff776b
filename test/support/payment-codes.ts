// Buyers' payment codes for barcode orders, and how the simulator's buyer behind one behaves.
import { randomInt } from 'node:crypto';
import { expect } from 'vitest';
import type { Stack } from './stack.js';

/** A fresh payment code: 18 digits starting with 28, as Alipay's app shows them. */
export const newAuthCode = () => `28${String(randomInt(10 ** 8)).padStart(8, '0')}${String(randomInt(10 ** 8)).padStart(8, '0')}`;

export type BuyerBehaviour =
  | { kind: 'pays' }
  | { kind: 'confirms'; afterMs: number }
  | { kind: 'never_confirms' }
  | { kind: 'balance_not_enough' }
  | { kind: 'invalid_code' };

/** A fresh payment code whose buyer behaves so at the simulator. */
export async function buyerCode(stack: Pick<Stack, 'simCall'>, behaviour: BuyerBehaviour): Promise<string> {
  const authCode = newAuthCode();
  const set = await stack.simCall('PUT', `/sim/payment-codes/${authCode}`, behaviour);
  expect(set.status).toBe(200);
  return authCode;
}
