import net from 'node:net';

/**
 * Ask the OS for `count` distinct free TCP ports on `host` (each below `below`, when given). All listeners are
 * held open until every port is known, so the ports differ from each other.
 * There is an unavoidable window between closing and the real server binding;
 * callers treat "address in use" as a startup failure.
 */
export async function findFreePorts(count: number, host = '127.0.0.1', below?: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    while (servers.length < count) {
      const server = net.createServer();
      // The OS hands out ports from its ephemeral range (32768 and up here); below it, try at random.
      const port = below === undefined ? 0 : 10_000 + Math.floor(Math.random() * (below - 10_000));
      const listening = await new Promise<boolean>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => (below !== undefined && err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
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
