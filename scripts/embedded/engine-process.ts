// The worker and the API as processes of their own under `npm start`, exactly as `npm run worker`
// and `npm run api` run them: each gets a core's worth of event loop instead of sharing one (see
// the README's performance section for the measurements behind this layout).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_DEADLINE_MS = 120_000;
// Above the worker's default WORKER_SHUTDOWN_GRACE (30 s): activities in flight finish before a SIGKILL.
const STOP_GRACE_MS = 45_000;
const OUTPUT_TAIL_LINES = 30;

export type EngineRole = 'worker' | 'api';

/** As package.json's scripts run them: the worker's heap is capped so V8 collects before the
 *  process grows past a few hundred MB (uncapped, 2 000 waiting orders took it from 560 to 620 MB
 *  while idle; capped, it stayed at 415 MB). */
const NODE_FLAGS: Record<EngineRole, string[]> = { worker: ['--max-old-space-size=256'], api: [] };

export interface EngineProcess {
  role: EngineRole;
  pid: number;
  /** Resolves when the process exits, for whatever reason. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (a clean shutdown), then SIGKILL if it has not exited within the grace time. */
  stop(): Promise<void>;
  /** SIGKILL, as the kernel would: no shutdown, no goodbye to Temporal. */
  kill(): Promise<void>;
}

export interface EngineProcessOptions {
  role: EngineRole;
  env: Record<string, string | undefined>;
  /** Each line the process writes (pino JSON lines, mostly). */
  output: (line: string) => void;
}

export async function startEngineProcess({ role, env, output }: EngineProcessOptions): Promise<EngineProcess> {
  // DURAPAY_CPU_PROFILE_DIR: each engine process writes a V8 CPU profile there when it exits
  // (node --cpu-prof, which NODE_OPTIONS may not carry); how the bench's profile is taken.
  const profile = process.env.DURAPAY_CPU_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.DURAPAY_CPU_PROFILE_DIR] : [];
  const child = spawn(process.execPath, [...NODE_FLAGS[role], ...profile, '--import', 'tsx', `${role}/main.ts`], {
    cwd: REPO_ROOT,
    env: env as NodeJS.ProcessEnv,
    // The IPC channel carries the "ready" message (lib/platform/process.ts), whatever the log level; and
    // when this process dies, its closing stops the child.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const tail: string[] = [];
  const becameReady = new Promise<void>((resolve) =>
    child.on('message', (message: { ready?: boolean }) => {
      if (message?.ready) resolve();
    }),
  );
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      tail.push(line);
      if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
      output(line);
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const stop = () => stopChild(child, exited);

  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    becameReady.then(() => 'ready' as const),
    exited.then(() => 'exited' as const),
    new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), READY_DEADLINE_MS))),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ready') {
    await stop();
    const why = outcome === 'late' ? `was not ready within ${READY_DEADLINE_MS / 1000} s` : 'exited while starting';
    throw new Error(`the ${role} process ${why}; its last output:\n${tail.join('\n')}`);
  }
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  return { role, pid: child.pid!, exited, stop, kill };
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_GRACE_MS)));
  if ((await Promise.race([exited, late])) === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}
