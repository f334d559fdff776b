// `npm run sdk:generate:java`: regenerates the Java SDK's client, sdk/java/generated/, from
// sdk/openapi.json with openapi-generator (the `java` generator, library `native`: java.net.http and
// Jackson), whose version is pinned in sdk/java/pom.xml (profile `generate`; Maven fetches it).
//
// What this step does to the document before the generator reads it, and nothing else:
// - it keeps the merchant API only: the /v1 paths and the components they reach (the buyer's
//   page, Alipay's notify, health and the /ops endpoints are not for merchants' code);
// - the document stays OpenAPI 3.1, which openapi-generator reads (in beta; it warns), with one
//   conversion: a schema of `type: "null"` alone (the `details` of errors that have none) loses its
//   type, since the generator names it ModelNull, a class it never writes; null is all the API sends;
// - info.description (the error codes and signing, documented in sdk/java/README.md and the API's
//   own document) becomes one line: the generator copies it into the head of every file it writes.
// The generator writes a whole project; only its Java sources (src/main/java) are kept, under
// sdk/java/generated/, which nobody edits by hand. test/sdk-java.test.ts regenerates into a temporary
// folder and fails when the committed sources differ.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainModule } from '../lib/platform/module-files.js';

export const JAVA_SDK_DIR = fileURLToPath(new URL('../sdk/java/', import.meta.url));
export const JAVA_GENERATED_DIR = join(JAVA_SDK_DIR, 'generated');
export const OPENAPI_FILE = fileURLToPath(new URL('../sdk/openapi.json', import.meta.url));

const GENERATED_README = `# Generated: do not edit

Everything under this folder is written by \`npm run sdk:generate:java\` (scripts/sdk-generate-java.ts)
from sdk/openapi.json with the openapi-generator version pinned in ../pom.xml. Change the API or the
script, then regenerate; test/sdk-java.test.ts fails when these sources are stale.
`;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The merchant API of the document: its /v1 paths and only the components they reach. */
export function merchantDocument(document: { [key: string]: any }): { [key: string]: any } {
  const paths = Object.fromEntries(Object.entries(document.paths as Record<string, Json>).filter(([path]) => path.startsWith('/v1/')));
  const components = (document.components ?? {}) as Record<string, Record<string, Json>>;
  const reached = new Map<string, Set<string>>();
  const visit = (node: Json): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      const match = key === '$ref' && typeof value === 'string' ? /^#\/components\/([^/]+)\/(.+)$/.exec(value) : null;
      if (match) {
        const [, section, name] = match as unknown as [string, string, string];
        const seen = reached.get(section) ?? new Set<string>();
        reached.set(section, seen);
        if (!seen.has(name)) {
          seen.add(name);
          visit(components[section]?.[name] ?? null);
        }
      } else visit(value);
    }
  };
  visit(paths as Json);
  const untypeNulls = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(untypeNulls);
    if (node === null || typeof node !== 'object') return node;
    const out: { [key: string]: Json } = {};
    for (const [key, value] of Object.entries(node)) if (!(key === 'type' && value === 'null')) out[key] = untypeNulls(value);
    return out;
  };
  const securitySchemes = new Set<string>();
  for (const item of Object.values(paths)) {
    for (const operation of Object.values(item as Record<string, any>)) {
      for (const requirement of (operation?.security ?? []) as Record<string, unknown>[]) Object.keys(requirement).forEach((name) => securitySchemes.add(name));
    }
  }
  const kept: Record<string, Record<string, Json>> = {};
  for (const [section, entries] of Object.entries(components)) {
    const names = section === 'securitySchemes' ? securitySchemes : (reached.get(section) ?? new Set<string>());
    const chosen = Object.fromEntries(Object.entries(entries).filter(([name]) => names.has(name)));
    if (Object.keys(chosen).length > 0) kept[section] = chosen;
  }
  const usedTags = new Set(Object.values(paths).flatMap((item) => Object.values(item as Record<string, any>).flatMap((op) => (op?.tags ?? []) as string[])));
  return {
    ...document,
    info: { ...document.info, description: 'The durapay merchant API: the /v1 paths of sdk/openapi.json.' },
    tags: (document.tags ?? []).filter((tag: { name: string }) => usedTags.has(tag.name)),
    paths: untypeNulls(paths as Json),
    components: untypeNulls(kept as Json),
  };
}

/** Runs mvn in sdk/java to its end; rejects with its output when it fails. */
export function runMaven(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('mvn', args, { cwd: JAVA_SDK_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`mvn ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`));
    });
  });
}

/** Generates the client's sources into `outDir` (its generated/ layout: src/main/java and README.md). */
export async function generateJavaSdk(outDir: string = JAVA_GENERATED_DIR, openApiFile: string = OPENAPI_FILE): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'durapay-java-generate-'));
  try {
    const spec = join(work, 'openapi.json');
    writeFileSync(spec, `${JSON.stringify(merchantDocument(JSON.parse(readFileSync(openApiFile, 'utf8'))), null, 2)}\n`);
    const project = join(work, 'project');
    await runMaven(['-B', '-q', '-Pgenerate', 'generate-sources', `-Ddurapay.openapi=${spec}`, `-Ddurapay.generated=${project}`]);
    rmSync(outDir, { recursive: true, force: true });
    cpSync(join(project, 'src', 'main', 'java'), join(outDir, 'src', 'main', 'java'), { recursive: true });
    writeFileSync(join(outDir, 'README.md'), GENERATED_README);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (isMainModule(import.meta.url)) {
  await generateJavaSdk();
  console.log('wrote sdk/java/generated');
}
