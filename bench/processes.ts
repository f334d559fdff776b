// The processes behind a child of the bench, found through /proc (Linux): the child and all its
// descendants, each labelled by its command line, with its memory. Whatever process layout the
// engine has, its worker and API are found by their entry points.
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

export type Role = 'worker' | 'api' | 'temporal' | 'postgres' | 'reference-worker' | 'stack' | 'other';

export interface Proc {
  pid: number;
  ppid: number;
  /** Clock ticks since boot: with the pid, it names this process and not a later one with its pid. */
  startTime: number;
  role: Role;
  command: string;
}

function readStat(pid: number): { ppid: number; startTime: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), startTime: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

function readCommand(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

export function roleOf(argv: string[]): Role {
  const line = argv.join(' ');
  const program = basename(argv[0] ?? '');
  if (/\bworker\/main\.ts\b/.test(line)) return 'worker';
  if (/\bapi\/main\.ts\b/.test(line)) return 'api';
  if (line.includes('bench/reference-worker')) return 'reference-worker';
  if (line.includes('bench/stack-process')) return 'stack';
  if (program === 'temporal' || line.includes('start-dev')) return 'temporal';
  // The postmaster, and its backends, whose titles read "postgres: ...".
  if (program === 'postgres' || program.startsWith('postgres:') || line.startsWith('postgres:')) return 'postgres';
  return 'other';
}

/** The process rootPid and its descendants, as they are now. */
export function processTree(rootPid: number): Proc[] {
  const children = new Map<number, number[]>();
  const stats = new Map<number, { ppid: number; startTime: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const stat = readStat(pid);
    if (!stat) continue;
    stats.set(pid, stat);
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  }
  const tree: Proc[] = [];
  const queue = stats.has(rootPid) ? [rootPid] : [];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    const argv = readCommand(pid);
    const { ppid, startTime } = stats.get(pid)!;
    tree.push({ pid, ppid, startTime, role: roleOf(argv), command: argv.join(' ').slice(0, 120) });
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

export interface Memory {
  /** VmRSS: resident now. */
  rssBytes: number;
  /** VmHWM: the highest RSS this process ever had. */
  peakBytes: number;
}

export function memoryOf(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rssBytes: kb('VmRSS'), peakBytes: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** True while pid still names the process that had this start time. */
export function isSameProcess(proc: Pick<Proc, 'pid' | 'startTime'>): boolean {
  return readStat(proc.pid)?.startTime === proc.startTime;
}

/** SIGKILL, by pid, each process of a tree recorded earlier that still runs: leaves first, so
 *  nothing is orphaned (re-parented out of sight) before its turn. */
export function killRecorded(procs: Proc[]): number {
  let killed = 0;
  for (const proc of [...procs].reverse()) {
    if (!isSameProcess(proc)) continue;
    try {
      process.kill(proc.pid, 'SIGKILL');
      killed++;
    } catch {
      /* gone meanwhile */
    }
  }
  return killed;
}
