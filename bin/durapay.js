#!/usr/bin/env node
// `durapay`: the merchant CLI as a command (package.json "bin"; `npx durapay …` in the repository).
// It runs the compiled CLI when there is one (dist/cli/main.js: the production image, or after
// `npm run build`), else the TypeScript itself through tsx (a development checkout).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  // tsx's loader, in this process: signals, stdin and the exit code stay the CLI's own.
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../cli/main.ts', import.meta.url).href);
}
