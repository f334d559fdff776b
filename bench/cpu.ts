// CPU time per process role over a stretch of the run, read from /proc/<pid>/stat (utime + stime):
// where each create or notify spends its CPU on a 2-core machine, the bench's own profile.
import { readFileSync } from 'node:fs';
import type { Proc, Role } from './processes.js';

const TICK_MS = 10; // USER_HZ is 100 on Linux

function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime (fields 14-17, counted from pid = 1)
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** 'other' under the stack process is the simulator (and tsx's helpers). */
const label = (role: Role) => (role === 'stack' ? 'stack (simulator)' : role);

export interface CpuUse {
  byRole: Map<string, number>;
  wallMs: number;
}

export class CpuMeter {
  private readonly start = new Map<string, number>();
  private readonly from: number;

  constructor(private readonly trees: (() => Proc[])[]) {
    this.from = Date.now();
    for (const proc of this.procs()) this.start.set(`${proc.pid}/${proc.startTime}`, cpuMsOf(proc.pid) ?? 0);
  }

  private procs(): Proc[] {
    return this.trees.flatMap((tree) => tree());
  }

  /** CPU ms per role since the meter started; processes that started meanwhile count from zero. */
  stop(): CpuUse {
    const byRole = new Map<string, number>();
    for (const proc of this.procs()) {
      const now = cpuMsOf(proc.pid);
      if (now === undefined) continue;
      const used = now - (this.start.get(`${proc.pid}/${proc.startTime}`) ?? 0);
      const role = label(proc.role);
      byRole.set(role, (byRole.get(role) ?? 0) + used);
    }
    return { byRole, wallMs: Date.now() - this.from };
  }
}

/** "temporal 4.1, worker 3.2, … ms CPU per create; total 9.0 ms (1.62 cores busy)", over several stretches. */
export function cpuPer(uses: CpuUse[], count: number, unit: string): string {
  const result: CpuUse = { byRole: new Map(), wallMs: 0 };
  for (const use of uses) {
    result.wallMs += use.wallMs;
    for (const [role, used] of use.byRole) result.byRole.set(role, (result.byRole.get(role) ?? 0) + used);
  }
  const total = [...result.byRole.values()].reduce((a, b) => a + b, 0);
  const parts = [...result.byRole]
    .filter(([, used]) => used > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([role, used]) => `${role} ${(used / count).toFixed(1)}`);
  return `${parts.join(', ')} ms CPU per ${unit}; total ${(total / count).toFixed(1)} ms (${(total / result.wallMs).toFixed(2)} cores busy)`;
}
