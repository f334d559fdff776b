// PEM text as it comes in environment variables and files: certificates parsed and checked block
// by block, for the Alipay certificates (lib/alipay/credentials.ts) and Temporal's TLS
// (lib/platform/temporal-connection.ts).
import { X509Certificate } from 'node:crypto';
import { ConfigError } from './environment.js';

/** What `make` parses, or undefined when it throws (key material that does not parse). */
export function tryKey<T>(make: () => T): T | undefined {
  try {
    return make();
  } catch {
    return undefined;
  }
}

export const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** PEM put in an environment variable often comes with literal \n for its line breaks. */
export function pemText(text: string): string {
  return text.trim().replace(/\\n/g, '\n');
}

/** Every block must be a CERTIFICATE that parses; gives them back as plain PEM, without stray text. */
export function parseCertificates(name: string, text: string): { certificates: X509Certificate[]; pem: string } {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) {
    throw new ConfigError(`${name}: not a PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  }
  const certificates = blocks.map(([block, label], index) => {
    if (label !== 'CERTIFICATE') {
      throw new ConfigError(`${name}: block ${index + 1} is a ${label}; expected only CERTIFICATE blocks`);
    }
    const certificate = tryKey(() => new X509Certificate(block));
    if (!certificate) throw new ConfigError(`${name}: certificate ${index + 1} does not parse`);
    return certificate;
  });
  return { certificates, pem: `${blocks.map(([block]) => block).join('\n')}\n` };
}
