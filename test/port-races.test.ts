/**
 * A server told to listen on a port that another process took between our pick and its bind fails
 * to start ("address already in use"). CI saw it: the dev server's HTTP API port, left to the CLI,
 * came from the OS's ephemeral range and went to another process first.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { Connection } from '@temporalio/client';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { findFreePorts, PICKED_PORT_RANGE, retryOnAddressInUse } from '../lib/platform/free-port.js';
import { startTemporalDevServer } from '../scripts/embedded/temporal.js';

// When set, the next findFreePorts call of three or more hands out `taken` third: the dev server's HTTP API port.
const handOut = vi.hoisted(() => ({ taken: 0 }));
vi.mock('../lib/platform/free-port.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../lib/platform/free-port.js')>();
  return {
    ...real,
    findFreePorts: async (count: number, host?: string) => {
      const ports = await real.findFreePorts(count, host);
      if (handOut.taken && count >= 3) {
        ports[2] = handOut.taken;
        handOut.taken = 0;
      }
      return ports;
    },
  };
});

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

function listen(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function ephemeralRangeStart(): number {
  return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
}

function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** The TCP ports a process listens on, from /proc (Linux). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set(
    readOr(() => readdirSync(`/proc/${pid}/fd`), [] as string[])
      .map((fd) => /^socket:\[(\d+)\]$/.exec(readOr(() => readlinkSync(`/proc/${pid}/fd/${fd}`), ''))?.[1])
      .filter((inode): inode is string => inode !== undefined),
  );
  return readFileSync(`/proc/${pid}/net/tcp`, 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[3] === '0A' && inodes.has(cols[9]!)) // 0A: LISTEN
    .map((cols) => Number.parseInt(cols[1]!.split(':')[1]!, 16));
}

/** The dev server process started with `--port <grpcPort>`. */
function devServerPid(grpcPort: number): number {
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    const args = readOr(() => readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'), [] as string[]);
    if (args.includes('start-dev') && args[args.indexOf('--port') + 1] === String(grpcPort)) return Number(entry);
  }
  throw new Error(`no dev server process on port ${grpcPort}`);
}

async function answers(url: string, pattern: RegExp): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  return response !== undefined && response.ok && pattern.test(await response.text());
}

describe('ports picked for servers', () => {
  it('lie below the OS ephemeral range, where outgoing connections and bind(0) never land', async () => {
    expect(PICKED_PORT_RANGE.below).toBeLessThanOrEqual(ephemeralRangeStart());
    const ports = await findFreePorts(200);
    expect(new Set(ports).size).toBe(200);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(PICKED_PORT_RANGE.from);
      expect(port).toBeLessThan(PICKED_PORT_RANGE.below);
    }
  });

  it('a start is tried again only while a port was taken, and three times at most', async () => {
    const inUse = () => Promise.reject(new Error('listen tcp 127.0.0.1:44025: bind: address already in use'));
    let calls = 0;
    await expect(retryOnAddressInUse(() => (++calls < 3 ? inUse() : Promise.resolve('served')))).resolves.toBe('served');
    expect(calls).toBe(3);

    calls = 0;
    await expect(retryOnAddressInUse(() => (++calls, inUse()))).rejects.toThrow(/address already in use/);
    expect(calls).toBe(3);

    calls = 0;
    await expect(retryOnAddressInUse(() => (++calls, Promise.reject(new Error('schema too old'))))).rejects.toThrow('schema too old');
    expect(calls).toBe(1);
  });
});

describe('Temporal dev server ports', () => {
  it('serves its HTTP API and metrics on ports it was given below the ephemeral range', async () => {
    const server = await startTemporalDevServer({});
    cleanups.push(() => server.stop());
    const grpcPort = Number(server.address.split(':')[1]);
    const ports = listeningPorts(devServerPid(grpcPort));
    const httpApiPorts: number[] = [];
    const metricsPorts: number[] = [];
    for (const port of ports) {
      if (await answers(`http://127.0.0.1:${port}/api/v1/namespaces`, /"namespaces"/)) httpApiPorts.push(port);
      if (await answers(`http://127.0.0.1:${port}/metrics`, /^# HELP /m)) metricsPorts.push(port);
    }
    expect(httpApiPorts).toHaveLength(1);
    expect(metricsPorts).toHaveLength(1);
    for (const port of [grpcPort, Number(new URL(server.uiUrl!).port), httpApiPorts[0]!, metricsPorts[0]!]) {
      expect(port).toBeLessThan(PICKED_PORT_RANGE.below);
    }
  });

  it('starts on fresh ports when one it picked was taken before the server could bind it', async () => {
    const squatter = await listen();
    cleanups.push(() => new Promise((resolve) => squatter.close(resolve)));
    handOut.taken = (squatter.address() as net.AddressInfo).port;

    const logged: string[] = [];
    const server = await startTemporalDevServer({ log: (line) => logged.push(line) });
    cleanups.push(() => server.stop());
    expect(handOut.taken).toBe(0);
    expect(logged).toContainEqual(expect.stringMatching(/port was taken.*\(attempt 2 of 3\)/));
    const connection = await Connection.connect({ address: server.address });
    try {
      const { namespaceInfo } = await connection.workflowService.describeNamespace({ namespace: 'default' });
      expect(namespaceInfo?.name).toBe('default');
    } finally {
      await connection.close();
    }
  });
});
