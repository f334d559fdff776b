/**
 * `npm run sdk:generate:go`: generates the Go SDK's client (sdk/go/api/client.gen.go) from
 * sdk/openapi.json with oapi-codegen, pinned below. Never edit the generated file by hand: change the
 * API (then `npm run sdk:openapi`) and run this again. test/sdk-go.test.ts regenerates into a
 * temporary folder and fails when the committed file differs.
 *
 * oapi-codegen reads OpenAPI 3.0 only (its kin-openapi cannot read 3.1's boolean schemas and type
 * lists), and sdk/openapi.json is 3.1. So this script converts the document itself, in memory, every
 * time (never a hand-edited copy), with `toOpenApi30` below:
 *   - only the merchant API is kept: the paths under /v1 (the signed routes the SDK is for; /ops,
 *     Alipay's notify, the cashier pages and the probes are not a merchant's to call);
 *   - `type: [T, "null"]` becomes `type: T, nullable: true`, and null leaves `enum` lists (nullable says it);
 *   - `anyOf`/`oneOf` members `{type: "null"}` become `nullable: true` (one member left: an `allOf` of it);
 *   - `const: v` becomes `enum: [v]`; schema `examples: [a, …]` becomes `example: a`;
 *   - numeric `exclusiveMinimum`/`exclusiveMaximum` become `minimum`/`maximum` with the boolean form;
 *   - boolean schemas become `{}` (true) and `{not: {}}` (false);
 *   - keywords 3.0 does not have and code generation does not use are dropped: if/then/else (the
 *     barcode-or-QR rule of CreatePaymentRequest: the server checks it), $schema, $id, $comment,
 *     contentMediaType, contentEncoding, prefixItems, $defs, dependent*, patternProperties,
 *     propertyNames, unevaluated*; siblings of a `$ref` (3.0 ignores them);
 *   - `openapi` becomes 3.0.3, `info.license.identifier` and top-level `webhooks`/`jsonSchemaDialect` go.
 *
 * oapi-codegen is built from its Go module into the per-user cache (scripts/go-binaries.ts), once:
 *   npm run sdk:generate:go              writes sdk/go/api/client.gen.go
 *   npx tsx scripts/sdk-go.ts --out FILE  writes FILE instead (what the staleness test does)
 *   npx tsx scripts/sdk-go.ts --in DOC    reads the 3.1 document DOC instead of sdk/openapi.json
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOnPath, goBinaryCacheDir, installIntoCache, isExecutableFile } from './go-binaries.js';
import { isMainModule } from '../lib/platform/module-files.js';

export const OAPI_CODEGEN_VERSION = '2.8.2';
const OAPI_CODEGEN_MODULE = 'github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OPENAPI_FILE = path.join(ROOT, 'sdk/openapi.json');
export const GO_SDK_DIR = path.join(ROOT, 'sdk/go');
/** The generated client, relative to sdk/go. */
export const GO_GENERATED_FILE = path.join(GO_SDK_DIR, 'api/client.gen.go');
const GO_PACKAGE = 'api';
/** The paths the SDK covers: the signed merchant API. */
const MERCHANT_PATH_PREFIX = '/v1/';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Schema keywords of JSON Schema 2020-12 that OpenAPI 3.0 lacks and code generation never reads. */
const DROPPED_KEYWORDS = [
  'if',
  'then',
  'else',
  '$schema',
  '$id',
  '$comment',
  '$anchor',
  '$defs',
  'contentMediaType',
  'contentEncoding',
  'contentSchema',
  'prefixItems',
  'dependentRequired',
  'dependentSchemas',
  'patternProperties',
  'propertyNames',
  'unevaluatedProperties',
  'unevaluatedItems',
  'minContains',
  'maxContains',
  'contains',
];

const isNullSchema = (schema: Json) => isObject(schema) && (schema.type === 'null' || (Array.isArray(schema.type) && schema.type.length === 1 && schema.type[0] === 'null'));

/** One 3.1 schema (a JSON Schema 2020-12 subset) as a 3.0 schema. */
export function schemaTo30(input: Json): Json {
  if (input === true) return {};
  if (input === false) return { not: {} };
  if (!isObject(input)) return input;
  if (typeof input.$ref === 'string') return { $ref: input.$ref };
  const schema: JsonObject = {};
  let nullable = input.nullable === true;
  for (const [key, value] of Object.entries(input)) {
    if (DROPPED_KEYWORDS.includes(key)) continue;
    switch (key) {
      case 'type': {
        if (Array.isArray(value)) {
          const types = value.filter((t) => t !== 'null');
          if (types.length < value.length) nullable = true;
          if (types.length === 1) schema.type = types[0]!;
          // several types: 3.0 cannot say it; the schema is left untyped (any)
        } else if (value === 'null') {
          nullable = true;
        } else {
          schema.type = value;
        }
        break;
      }
      case 'enum':
        if (Array.isArray(value)) {
          if (value.includes(null)) nullable = true;
          schema.enum = value.filter((v) => v !== null);
        }
        break;
      case 'const':
        schema.enum = [value];
        break;
      case 'examples':
        if (Array.isArray(value) && value.length > 0) schema.example = value[0]!;
        break;
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        if (typeof value === 'number') {
          schema[key === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = value;
          schema[key] = true;
        } else {
          schema[key] = value;
        }
        break;
      case 'properties':
        if (isObject(value)) schema.properties = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, schemaTo30(s)]));
        break;
      case 'items':
      case 'not':
        schema[key] = schemaTo30(value);
        break;
      case 'additionalProperties':
        schema[key] = typeof value === 'boolean' ? value : schemaTo30(value);
        break;
      case 'allOf':
      case 'anyOf':
      case 'oneOf': {
        if (!Array.isArray(value)) break;
        const members = value.filter((member) => !isNullSchema(member));
        if (members.length < value.length) nullable = true;
        // One member left of a nullable anyOf/oneOf ("X or null"): X, as an allOf of one.
        if (members.length === 1 && members.length < value.length) schema.allOf = members.map(schemaTo30);
        else if (members.length > 0) schema[key] = members.map(schemaTo30);
        break;
      }
      case 'nullable':
        break;
      default:
        schema[key] = value;
    }
  }
  if (nullable) schema.nullable = true;
  return schema;
}

const mapValues = (value: Json | undefined, fn: (v: Json) => Json): Json | undefined =>
  isObject(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fn(v)])) : value;

/** A parameter or header object: its schema converted. */
function withSchema(holder: Json): Json {
  if (!isObject(holder) || holder.schema === undefined) return holder;
  return { ...holder, schema: schemaTo30(holder.schema) };
}

/** A content map ({ "application/json": { schema } }): each media type's schema converted. */
const contentTo30 = (content: Json | undefined) => mapValues(content, withSchema);

function bodyTo30(body: Json): Json {
  if (!isObject(body)) return body;
  const out: JsonObject = { ...body };
  if (body.content !== undefined) out.content = contentTo30(body.content)!;
  if (body.headers !== undefined) out.headers = mapValues(body.headers, withSchema)!;
  return out;
}

function operationTo30(operation: Json): Json {
  if (!isObject(operation)) return operation;
  const out: JsonObject = { ...operation };
  if (Array.isArray(operation.parameters)) out.parameters = operation.parameters.map(withSchema);
  if (operation.requestBody !== undefined) out.requestBody = bodyTo30(operation.requestBody);
  if (operation.responses !== undefined) out.responses = mapValues(operation.responses, bodyTo30)!;
  delete out.callbacks;
  return out;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** The merchant API of a 3.1 document, as OpenAPI 3.0.3 (see the top of this file). */
export function toOpenApi30(document: JsonObject): JsonObject {
  const doc = structuredClone(document);
  const out: JsonObject = { ...doc, openapi: '3.0.3' };
  delete out.webhooks;
  delete out.jsonSchemaDialect;
  if (isObject(doc.info) && isObject(doc.info.license)) {
    const { identifier: _identifier, ...license } = doc.info.license;
    out.info = { ...doc.info, license };
  }
  const paths: JsonObject = {};
  for (const [route, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
    if (!route.startsWith(MERCHANT_PATH_PREFIX) || !isObject(item)) continue;
    const converted: JsonObject = { ...item };
    if (Array.isArray(item.parameters)) converted.parameters = item.parameters.map(withSchema);
    for (const method of HTTP_METHODS) if (item[method] !== undefined) converted[method] = operationTo30(item[method]!);
    paths[route] = converted;
  }
  out.paths = paths;
  if (isObject(doc.components)) {
    const c = doc.components;
    const components: JsonObject = { ...c };
    if (c.schemas !== undefined) components.schemas = mapValues(c.schemas, schemaTo30)!;
    if (c.parameters !== undefined) components.parameters = mapValues(c.parameters, withSchema)!;
    if (c.headers !== undefined) components.headers = mapValues(c.headers, withSchema)!;
    if (c.responses !== undefined) components.responses = mapValues(c.responses, bodyTo30)!;
    if (c.requestBodies !== undefined) components.requestBodies = mapValues(c.requestBodies, bodyTo30)!;
    delete components.pathItems;
    out.components = components;
  }
  return out;
}

export function cachedOapiCodegenPath(): string {
  return path.join(goBinaryCacheDir(), `oapi-codegen-${OAPI_CODEGEN_VERSION}`);
}

/** oapi-codegen from the cache, built there from its Go module first if need be (Go required). */
export async function resolveOapiCodegen(log: (msg: string) => void = () => {}): Promise<string> {
  const binary = cachedOapiCodegenPath();
  const check = async (): Promise<string | undefined> => {
    if (!(await isExecutableFile(binary))) return `${binary} is missing`;
    const version = await run(binary, ['-version'], ROOT).then(
      (out) => out.stdout,
      () => '',
    );
    return version.includes(`v${OAPI_CODEGEN_VERSION}`) ? undefined : `${binary} -version does not say v${OAPI_CODEGEN_VERSION}`;
  };
  if (!(await check())) return binary;
  const go = await findOnPath('go');
  if (!go) throw new Error(`oapi-codegen ${OAPI_CODEGEN_VERSION} is built from its Go module, and \`go\` is not on PATH: install Go 1.25 or later (https://go.dev/dl/)`);
  await installIntoCache(
    {
      label: `oapi-codegen ${OAPI_CODEGEN_VERSION}`,
      programs: [{ package: `${OAPI_CODEGEN_MODULE}@v${OAPI_CODEGEN_VERSION}`, builds: 'oapi-codegen', installAs: path.basename(binary) }],
      check,
      expected: '~1 min',
      lockName: '.oapi-codegen-build.lock',
    },
    go,
    log,
  );
  return binary;
}

function run(command: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(command)} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Generates the client from `inputFile` (default sdk/openapi.json) into `outputFile` (default: the committed one). */
export async function generateGoClient({
  inputFile = OPENAPI_FILE,
  outputFile = GO_GENERATED_FILE,
  log = () => {},
}: { inputFile?: string; outputFile?: string; log?: (msg: string) => void } = {}) {
  const binary = await resolveOapiCodegen(log);
  const document = JSON.parse(readFileSync(inputFile, 'utf8')) as JsonObject;
  const work = mkdtempSync(path.join(tmpdir(), 'durapay-sdk-go-'));
  try {
    const spec = path.join(work, 'openapi-3.0.json');
    writeFileSync(spec, `${JSON.stringify(toOpenApi30(document), null, 2)}\n`);
    const config = path.join(work, 'oapi-codegen.yaml');
    writeFileSync(
      config,
      [
        `package: ${GO_PACKAGE}`,
        'generate:',
        '  models: true',
        '  client: true',
        // Enum constants always carry their type's name (PaymentStatusPAID), so a value added to
        // another enum later never renames an existing constant.
        'compatibility:',
        '  always-prefix-enum-values: true',
        'output-options:',
        '  resolve-type-name-collisions: true',
        `output: ${JSON.stringify(path.resolve(outputFile))}`,
        '',
      ].join('\n'),
    );
    await run(binary, ['-config', config, spec], work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const option = (name: string) => {
    const at = process.argv.indexOf(name);
    return at >= 0 ? path.resolve(process.argv[at + 1] ?? '') : undefined;
  };
  const outputFile = option('--out') ?? GO_GENERATED_FILE;
  try {
    await generateGoClient({ inputFile: option('--in'), outputFile, log: (msg) => console.error(`[sdk-go] ${msg}`) });
    console.log(`wrote ${path.relative(process.cwd(), outputFile)}`);
  } catch (err) {
    console.error(`[sdk-go] ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

if (isMainModule(import.meta.url)) await main();
