// No import circles in durapay's own code, in any folder: dependency-cruiser (pinned in
// devDependencies) reads every file tsconfig.json compiles (lib/, workflows/, activities/, api/,
// worker/, cli/, simulator/, scripts/, bench/, chaos/, test/), resolves each import as TypeScript
// does ('./client.js' is client.ts) and follows it; a module that leads back to itself fails here.
//
// What counts: static imports, `export … from`, dynamic import(), and type-only imports
// (`import type`, `import { type X }`): the cruise reads the TypeScript before compilation
// (tsPreCompilationDeps), where those are still there, so a circle of types alone fails too (the
// second test proves it on a circle of its own). What no tool sees: module paths computed at run
// time, such as moduleFile('./bundle-workflows', …) or a worker thread's entry, which are strings.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface ImportGraph {
  /** Each circle as the modules it goes through, e.g. "a.ts -> b.ts -> a.ts". */
  circles: string[];
  /** Relative imports that lead to no file: the cruise cannot see past them. */
  unresolved: string[];
  modules: number;
  typeOnlyImports: number;
}

/** Every file the TypeScript project at tsConfigFile compiles, and the circles among them. */
async function importGraph(tsConfigFile: string): Promise<ImportGraph> {
  const tsConfig = extractTSConfig(tsConfigFile);
  const { output } = await cruise(
    tsConfig.fileNames,
    {
      validate: true,
      ruleSet: { forbidden: [{ name: 'no-circular', severity: 'error', from: {}, to: { circular: true } }] },
      doNotFollow: { path: 'node_modules' },
      tsPreCompilationDeps: true,
      tsConfig: { fileName: tsConfigFile },
    },
    {},
    { tsConfig },
  );
  const result = output as ICruiseResult;
  const local = result.modules.filter((module) => !module.source.includes('node_modules') && !module.coreModule);
  return {
    circles: result.summary.violations
      .filter((violation) => violation.rule.name === 'no-circular')
      .map((violation) => [violation.from, ...(violation.cycle ?? []).map((step) => step.name)].join(' -> ')),
    unresolved: local.flatMap((module) =>
      module.dependencies.filter((dependency) => dependency.couldNotResolve && dependency.module.startsWith('.')).map((dependency) => `${module.source}: ${dependency.module}`),
    ),
    modules: local.length,
    typeOnlyImports: local.flatMap((module) => module.dependencies).filter((dependency) => dependency.dependencyTypes.includes('type-only')).length,
  };
}

describe('import graph', () => {
  it('has no import circle anywhere in the project, type-only imports included', async () => {
    const graph = await importGraph(path.join(ROOT, 'tsconfig.json'));
    expect(graph.unresolved).toEqual([]);
    // The cruise really read the project, type-only imports too.
    expect(graph.modules).toBeGreaterThan(100);
    expect(graph.typeOnlyImports).toBeGreaterThan(0);
    expect(graph.circles).toEqual([]);
  });

  it('finds a circle made of type-only imports', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'durapay-import-graph-'));
    try {
      writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true } }));
      writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b.js';\nexport interface A { b?: B }\n");
      writeFileSync(path.join(dir, 'b.ts'), "import { type A } from './a.js';\nexport interface B { a?: A }\n");
      writeFileSync(path.join(dir, 'c.ts'), "import type { A } from './a.js';\nexport const c: A = {};\n");
      const graph = await importGraph(path.join(dir, 'tsconfig.json'));
      expect(graph.circles).toHaveLength(1);
      expect(graph.circles[0]).toMatch(/a\.ts -> .*b\.ts -> .*a\.ts$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
