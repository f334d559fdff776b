// Memory of a child's process tree, sampled while a phase runs: the highest VmRSS seen per process,
// and its VmHWM (the kernel's own peak over the process's life).
import { memoryOf, type Proc } from './processes.js';

export interface ProcMemory {
  pid: number;
  role: Proc['role'];
  command: string;
  /** VmRSS at the last sample. */
  rssBytes: number;
  /** The highest VmRSS among this sampler's samples. */
  maxSampledBytes: number;
  /** VmHWM at the last sample: the peak over the process's whole life. */
  peakBytes: number;
}

export class MemorySampler {
  private readonly byPid = new Map<number, ProcMemory>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly tree: () => Proc[]) {}

  start(intervalMs = 1000): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    return this;
  }

  stop(): ProcMemory[] {
    clearInterval(this.timer);
    this.sample();
    return this.snapshot();
  }

  sample(): void {
    for (const proc of this.tree()) {
      const memory = memoryOf(proc.pid);
      if (!memory) continue;
      const known = this.byPid.get(proc.pid);
      this.byPid.set(proc.pid, {
        pid: proc.pid,
        role: proc.role,
        command: proc.command,
        rssBytes: memory.rssBytes,
        maxSampledBytes: Math.max(known?.maxSampledBytes ?? 0, memory.rssBytes),
        peakBytes: memory.peakBytes,
      });
    }
  }

  snapshot(): ProcMemory[] {
    return [...this.byPid.values()];
  }
}

/** The process that runs durapay's worker: one started from worker/main.ts, or else the stack
 *  process itself, where scripts/local-stack.ts runs the worker in-process. */
export function workerProcess(procs: ProcMemory[]): { proc: ProcMemory | undefined; label: string } {
  // The largest: a tsx launcher and the node it starts both carry worker/main.ts in their command.
  const workers = procs.filter((p) => p.role === 'worker').sort((a, b) => b.maxSampledBytes - a.maxSampledBytes);
  if (workers[0]) return { proc: workers[0], label: workers.length > 1 ? `largest of ${workers.length} worker processes` : 'worker process' };
  const stack = procs.find((p) => p.role === 'stack');
  const others = procs.some((p) => p.role === 'api') ? 'the simulator' : 'the API and the simulator';
  return { proc: stack, label: `stack process (the worker runs in it, with ${others})` };
}
