// `npm run sdk:openapi`: writes sdk/openapi.json, the document the API serves at /openapi.json, for
// the SDK generators (each SDK's generate script reads it). test/sdk-openapi.test.ts fails when the
// file no longer matches the API.
import { writeFileSync } from 'node:fs';
import { buildOpenApiDocument } from '../api/openapi.js';
import { isMainModule } from '../lib/platform/module-files.js';

export const SDK_OPENAPI_FILE = new URL('../sdk/openapi.json', import.meta.url);

export const sdkOpenApiText = () => `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;

if (isMainModule(import.meta.url)) {
  writeFileSync(SDK_OPENAPI_FILE, sdkOpenApiText());
  console.log('wrote sdk/openapi.json');
}
