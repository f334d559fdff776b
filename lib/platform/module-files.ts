// durapay runs from its TypeScript sources (through tsx: npm start, the tests, the dev scripts) or
// compiled to JavaScript (dist/, as the production image runs it, with plain node). The few places
// that name a module file at run time (a thread's entry, a child process's script, the workflows
// handed to the bundler) ask here, so they name the file that exists in the build they run from.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Whether the module at moduleUrl runs compiled: its own file is .js, not .ts. */
export function runsCompiled(moduleUrl: string): boolean {
  return moduleUrl.endsWith('.js');
}

/** The file of the module `specifier` (relative, without extension) next to moduleUrl, in the same build. */
export function moduleFile(specifier: string, moduleUrl: string): string {
  return fileURLToPath(new URL(`${specifier}${runsCompiled(moduleUrl) ? '.js' : '.ts'}`, moduleUrl));
}

/** Node's flags to run a module file: tsx's loader for TypeScript, none for compiled JavaScript. */
export function nodeFlagsToRun(file: string): string[] {
  return file.endsWith('.ts') ? ['--import', 'tsx'] : [];
}

/** Whether the module at moduleUrl is the script node was started with (not imported by another). */
export function isMainModule(moduleUrl: string): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(moduleUrl);
  } catch {
    return false;
  }
}
