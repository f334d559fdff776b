// The OpenAPI document as one JSON Schema resource for ajv, as a generated client reads it: the
// schemas' $refs resolve within it (`openapi.json#/…`), formats are checked, and its OpenAPI-only
// members are known to ajv as annotations.
import { Ajv2020 } from 'ajv/dist/2020.js';
import formatsPlugin from 'ajv-formats';

export function documentAjv(doc: object, options: { allErrors?: boolean } = {}): Ajv2020 {
  const ajv = new Ajv2020({ ...options, strict: true, strictTypes: false, allowUnionTypes: true });
  // ajv-formats is CommonJS: its default export arrives as the module object under NodeNext.
  ((formatsPlugin as any).default ?? formatsPlugin)(ajv);
  for (const keyword of ['openapi', 'info', 'tags', 'paths', 'components']) ajv.addKeyword(keyword);
  ajv.addSchema(doc, 'openapi.json');
  return ajv;
}
