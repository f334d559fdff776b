import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Temporal keeps membership ports in a smallint column, so no port we pick reaches 32768. */
const HIGHEST_PORT_BELOW = 32_768;
const LOWEST_PORT = 10_000;

/**
 * The first port of the OS's ephemeral range (Linux: 32768 by default; read from /proc when present).
 * Ports the OS hands to `bind(0)` and to outgoing connections come from that range, so a port we
 * pick below it cannot be taken by them between our probe and the server's bind.
 */
function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const start = Number(low);
    return Number.isInteger(start) && start > LOWEST_PORT ? start : HIGHEST_PORT_BELOW;
  } catch {
    return HIGHEST_PORT_BELOW;
  }
}

/** Ports findFreePorts picks from: [from, below). */
export const PICKED_PORT_RANGE = { from: LOWEST_PORT, below: Math.min(HIGHEST_PORT_BELOW, ephemeralRangeStart()) };

/**
 * `count` distinct free TCP ports on `host`, picked at random below the OS's ephemeral range. All
 * listeners are held open until every port is known, so the ports differ from each other. Another
 * process picking at random may still take one before the real server binds it: callers that start
 * servers retry on "address already in use" (see retryOnAddressInUse).
 */
export async function findFreePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    while (servers.length < count) {
      const server = net.createServer();
      const port = PICKED_PORT_RANGE.from + Math.floor(Math.random() * (PICKED_PORT_RANGE.below - PICKED_PORT_RANGE.from));
      const listening = await new Promise<boolean>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
        server.listen(port, host, () => resolve(true));
      });
      if (listening) servers.push(server);
    }
    return servers.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await findFreePorts(1, host);
  return port!;
}

const START_ATTEMPTS = 3;

/**
 * Runs `start` again, up to three times in all, while it fails because a port was taken between
 * picking and binding; `start` picks fresh ports on each call. Other failures go straight through.
 */
export async function retryOnAddressInUse<T>(start: (attempt: number) => Promise<T>, log: (msg: string) => void = () => {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt);
    } catch (err) {
      if (attempt >= START_ATTEMPTS || !/address already in use|EADDRINUSE/i.test(String((err as Error).message ?? err))) throw err;
      log(`a port was taken before the server could bind it; starting again on fresh ports (attempt ${attempt + 1} of ${START_ATTEMPTS})`);
    }
  }
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
