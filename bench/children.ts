// The bench's child processes (the stack, the reference worker): started with tsx and an IPC
// channel, in a process group of their own (a Ctrl-C reaches only the bench, which then stops them
// in order), their output read for warnings, and stopped by message, then killed by pid if need be.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killRecorded, type Proc, processTree } from './processes.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TAIL_LINES = 60;

/** What the child wrote at warning level and up (pino JSON lines, or plain lines saying so). */
export interface LogDigest {
  warnings: number;
  errors: number;
  /** Message → count, in order of first appearance. */
  messages: Map<string, number>;
}

export interface Child<Ready> {
  name: string;
  pid: number;
  ready: Ready;
  /** The child and its descendants now, each remembered for the final kill. */
  tree(): Proc[];
  log: LogDigest;
  tail(): string;
  /** Asks it to stop, waits up to graceMs for it to exit, then SIGKILLs by pid whatever of its tree is left. */
  stop(graceMs?: number): Promise<void>;
}

function parseLine(line: string, log: LogDigest): void {
  let level: number | undefined;
  let message = line;
  try {
    const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
    level = entry.level;
    message = [entry.msg, entry.err?.message].filter(Boolean).join(': ');
  } catch {
    if (/\b(ERROR|Error|error)\b/.test(line)) level = 50;
    else if (/\bWARN/.test(line)) level = 40;
  }
  if (level === undefined || level < 40) return;
  if (level >= 50) log.errors++;
  else log.warnings++;
  const key = message.slice(0, 160);
  log.messages.set(key, (log.messages.get(key) ?? 0) + 1);
}

export async function startChild<Ready>(
  name: string,
  script: string,
  env: Record<string, string | undefined>,
  { readyDeadlineMs, onMessage }: { readyDeadlineMs: number; onMessage?: (message: { type: string; message?: string }) => void },
): Promise<Child<Ready>> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  const tail: string[] = [];
  const log: LogDigest = { warnings: 0, errors: 0, messages: new Map() };
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const line of lines.filter(Boolean)) {
        parseLine(line, log);
        tail.push(line.slice(0, 400));
      }
      tail.splice(0, Math.max(0, tail.length - TAIL_LINES));
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const seen = new Map<number, Proc>();
  const tree = () => {
    const procs = child.pid === undefined ? [] : processTree(child.pid);
    for (const proc of procs) seen.set(proc.pid, proc);
    return procs;
  };
  let stopped: Promise<void> | undefined;
  const stop = (graceMs = 60_000) => {
    stopped ??= (async () => {
      tree();
      if (child.connected) child.send({ type: 'stop' });
      const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), graceMs).unref());
      const late = (await Promise.race([exited, timer])) === 'late';
      // Leaves first, so no process is re-parented out of sight before its turn. Once the child
      // has exited, this only sweeps helpers that outlive it by a moment (tsx's esbuild service).
      const left = killRecorded([...seen.values()]);
      if (late) console.error(`[bench] ${name}: did not stop within ${graceMs / 1000} s; killed ${left} process(es) of it`);
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    })();
    return stopped;
  };
  const handle = { name, pid: child.pid!, tree, log, tail: () => tail.join('\n'), stop };

  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready after ${readyDeadlineMs / 1000} s`)), readyDeadlineMs);
      child.on('message', (message: { type: string; message?: string; info?: Ready }) => {
        onMessage?.(message);
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve((message.info ?? message) as Ready);
        } else if (message.type === 'failed') {
          clearTimeout(timer);
          reject(new Error(`${name} failed to start: ${message.message}`));
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (code ${code}) before it was ready`));
      });
    });
    tree();
    return { ...handle, ready };
  } catch (err) {
    await stop(30_000);
    throw new Error(`${(err as Error).message}\n--- last output of ${name} ---\n${tail.join('\n')}`);
  }
}
