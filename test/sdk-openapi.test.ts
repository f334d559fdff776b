// The SDKs are generated from sdk/openapi.json: it must be the document the API serves.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { SDK_OPENAPI_FILE, sdkOpenApiText } from '../scripts/sdk-openapi.js';

it('sdk/openapi.json is the document the API serves (npm run sdk:openapi writes it)', () => {
  expect(readFileSync(SDK_OPENAPI_FILE, 'utf8'), 'sdk/openapi.json is stale: run npm run sdk:openapi, then each SDK\'s generator').toBe(sdkOpenApiText());
});
