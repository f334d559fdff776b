/**
 * Local Temporal dev server for development and tests: `temporal server
 * start-dev` from the CLI found by resolveTemporalCli, or, without one,
 * @temporalio/testing's downloaded copy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
// @temporalio/proto is CommonJS without named-export hints: only its default import works under ESM.
import proto from '@temporalio/proto';
import { resolveTemporalCli } from '../temporal-cli.js';
import { findFreePorts, isPortOpen, retryOnAddressInUse } from '../../lib/platform/free-port.js';

/** Custom search attributes the payment workflows upsert (Temporal type names). */
export const PAYMENT_SEARCH_ATTRIBUTES = {
  PaymentStatus: 'Keyword',
  OutTradeNo: 'Keyword',
  AmountFen: 'Int',
  MerchantId: 'Keyword',
  AlipayTradeNo: 'Keyword',
} as const;

type SearchAttributeTypeName = (typeof PAYMENT_SEARCH_ATTRIBUTES)[keyof typeof PAYMENT_SEARCH_ATTRIBUTES];

const { IndexedValueType } = proto.temporal.api.enums.v1;
const INDEXED_VALUE_TYPES: Record<SearchAttributeTypeName, proto.temporal.api.enums.v1.IndexedValueType> = {
  Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Int: IndexedValueType.INDEXED_VALUE_TYPE_INT,
};

/** Keeps one matching partition per task queue (faster pickup on a single node) and lifts the transfer poll cap. */
const DEV_DYNAMIC_CONFIG = [
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  'history.transferProcessorMaxPollRPS=1000',
];

/** The persistent file in write-ahead-log mode: about twice the throughput of the default rollback
 *  journal here, and `synchronous=normal` in WAL mode still survives a crash of the server process
 *  (only a power loss may drop the last commits). */
const SQLITE_FILE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

const READY_DEADLINE_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const SEARCH_ATTRIBUTES_DEADLINE_MS = 30_000;
const POLL_MS = 200;
const OUTPUT_TAIL_LINES = 40;

export interface TemporalDevServerOptions {
  /** Persistent SQLite file; undefined keeps state in memory. */
  dbFile?: string;
  /** gRPC port; 0/undefined picks a free one. */
  port?: number;
  /** Web UI port; 0/undefined picks a free one. */
  uiPort?: number;
  namespace?: string;
  log?: (msg: string) => void;
}

export interface TemporalDevServer {
  /** host:port for Connection.connect / NativeConnection.connect. */
  address: string;
  uiUrl?: string;
  namespace: string;
  stop(): Promise<void>;
}

export async function startTemporalDevServer(opts: TemporalDevServerOptions = {}): Promise<TemporalDevServer> {
  const log = opts.log ?? (() => {});
  const namespace = opts.namespace ?? 'default';
  const dbFile = opts.dbFile ? path.resolve(opts.dbFile) : undefined;
  const cli = await resolveTemporalCli({ log });
  if (!cli) {
    const [freeGrpcPort, freeUiPort] = await findFreePorts(2);
    log('no Temporal CLI found; falling back to the @temporalio/testing download');
    return startWithTestingDownload({ port: opts.port || freeGrpcPort!, uiPort: opts.uiPort || freeUiPort!, namespace, dbFile, log });
  }
  // A server orphaned by a SIGKILLed parent would keep the SQLite file (and its ports) busy.
  const pidFile = dbFile ? `${dbFile}.server-pid` : undefined;
  if (dbFile && pidFile) {
    await fs.mkdir(path.dirname(dbFile), { recursive: true });
    await stopLeftoverServer(pidFile, dbFile, log);
  }

  return retryOnAddressInUse(async () => {
    // Every port the server listens on for others is ours to pick, below the OS's ephemeral range;
    // left to the CLI, the HTTP and metrics ports would come from that range, where any outgoing
    // connection may take them first. (Its history and matching ports are still the CLI's choice.)
    const [freeGrpcPort, freeUiPort, httpPort, metricsPort] = await findFreePorts(4);
    const port = opts.port || freeGrpcPort!;
    const uiPort = opts.uiPort || freeUiPort!;
    const args = [
      'server',
      'start-dev',
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--ui-port', String(uiPort),
      '--http-port', String(httpPort),
      '--metrics-port', String(metricsPort),
      '--namespace', namespace,
      '--log-level', 'warn',
      ...(dbFile ? ['--db-filename', dbFile, ...SQLITE_FILE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma])] : []),
      // Only honoured when the DB is created; ensureSearchAttributes covers existing DBs.
      ...searchAttributeArgs(),
      ...DEV_DYNAMIC_CONFIG.flatMap((kv) => ['--dynamic-config-value', kv]),
    ];

    const started = Date.now();
    const server = spawnInOwnGroup(cli.path, args);
    const stop = async () => {
      await server.stop();
      if (pidFile) await fs.rm(pidFile, { force: true });
    };
    const address = `127.0.0.1:${port}`;
    try {
      if (pidFile && server.child.pid) await fs.writeFile(pidFile, String(server.child.pid));
      const connection = await waitUntilServing(server, address, 'Temporal dev server', (c) => c.workflowService.describeNamespace({ namespace }));
      try {
        await ensureSearchAttributes(connection, namespace);
      } finally {
        await connection.close();
      }
    } catch (err) {
      await stop();
      throw err;
    }
    log(`Temporal dev server (${cli.source}: ${cli.path}) ready at ${address} in ${Date.now() - started} ms`);
    return { address, uiUrl: `http://127.0.0.1:${uiPort}`, namespace, stop };
  }, log);
}

/**
 * Registers PAYMENT_SEARCH_ATTRIBUTES on the namespace. Idempotent: adds only
 * the missing ones, fails on a type clash, and returns once all are listed.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const wanted = Object.entries(PAYMENT_SEARCH_ATTRIBUTES).map(([name, type]) => ({ name, type: INDEXED_VALUE_TYPES[type] }));
  const listCustom = async () =>
    (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};

  const existing = await listCustom();
  const clashes = wanted.filter(({ name, type }) => name in existing && existing[name] !== type);
  if (clashes.length > 0) {
    const details = clashes.map(({ name, type }) => `${name} is ${IndexedValueType[existing[name]!]}, want ${IndexedValueType[type]}`);
    throw new Error(`search attributes registered with another type in namespace ${namespace}: ${details.join('; ')}`);
  }
  const missing = wanted.filter(({ name }) => !(name in existing));
  if (missing.length === 0) return;

  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(({ name, type }) => [name, type])),
    });
  } catch (err) {
    // A concurrent caller may have added them first; the poll below decides.
    if ((err as { code?: number }).code !== GRPC_ALREADY_EXISTS) throw err;
  }

  const deadline = Date.now() + SEARCH_ATTRIBUTES_DEADLINE_MS;
  for (;;) {
    const current = await listCustom();
    if (missing.every(({ name }) => name in current)) return;
    if (Date.now() > deadline) {
      throw new Error(`search attributes ${missing.map((m) => m.name).join(', ')} not visible in ${namespace} after ${SEARCH_ATTRIBUTES_DEADLINE_MS} ms`);
    }
    await sleep(POLL_MS);
  }
}

export const GRPC_ALREADY_EXISTS = 6;

function searchAttributeArgs(): string[] {
  return Object.entries(PAYMENT_SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]);
}

export interface ManagedServer {
  child: ChildProcess;
  /** Last lines of stdout+stderr, for startup errors. */
  outputTail(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/**
 * Spawns in a new process group so stop() can signal everything it started
 * and a terminal Ctrl-C reaches only us; we then forward the shutdown.
 */
export function spawnInOwnGroup(executable: string, args: string[], cwd?: string): ManagedServer {
  const child = spawn(executable, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
  const tail: string[] = [];
  const collect = (chunk: Buffer) => {
    tail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - OUTPUT_TAIL_LINES));
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);

  let exitCode: number | null | undefined;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      exitCode = -1;
      resolve();
    });
  });

  const signalGroup = (signal: NodeJS.Signals) => {
    if (exitCode === undefined && child.pid !== undefined) killGroup(child.pid, signal);
  };
  // SIGKILL when the parent dies: there is no one left to wait for a graceful stop, and
  // the server's SQLite persistence is crash-safe.
  const unregisterParentExit = killOnParentExit(() => signalGroup('SIGKILL'));

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      signalGroup('SIGTERM');
      const escalate = setTimeout(() => signalGroup('SIGKILL'), STOP_GRACE_MS);
      await exitPromise;
      clearTimeout(escalate);
      unregisterParentExit();
    })());

  return {
    child,
    outputTail: () => (spawnError ? `${spawnError.message}\n` : '') + tail.join('\n'),
    exited: () => exitCode !== undefined,
    stop,
  };
}

/**
 * Stops the dev server recorded in pidFile if it still serves dbFile (checked
 * via its command line, as the pid may have been reused). Linux only: without
 * /proc the cmdline check fails and nothing is killed.
 */
async function stopLeftoverServer(pidFile: string, dbFile: string, log: (msg: string) => void): Promise<void> {
  const pid = Number.parseInt(await fs.readFile(pidFile, 'utf8').catch(() => ''), 10);
  const servesDbFile = async () =>
    (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').includes(dbFile);
  if (Number.isInteger(pid) && pid > 0 && (await servesDbFile())) {
    log(`stopping Temporal dev server (pid ${pid}) left running on ${dbFile} by an earlier run`);
    killGroup(pid, 'SIGTERM');
    const killAt = Date.now() + STOP_GRACE_MS;
    // A zombie has an empty cmdline, so this also ends once it exited but is not reaped yet.
    while (await servesDbFile()) {
      if (Date.now() > killAt + STOP_GRACE_MS) throw new Error(`cannot stop Temporal dev server pid ${pid} using ${dbFile}`);
      if (Date.now() > killAt) killGroup(pid, 'SIGKILL');
      await sleep(POLL_MS);
    }
  }
  await fs.rm(pidFile, { force: true });
}

/**
 * Polls until the frontend answers `probe` (a TCP check first: a Connection to a closed port waits
 * out its connect timeout); returns that connection, or fails with the server's output. `what`
 * names the server in the errors.
 */
export async function waitUntilServing(
  server: ManagedServer,
  address: string,
  what: string,
  probe: (connection: Connection) => Promise<unknown>,
  deadlineMs = READY_DEADLINE_MS,
): Promise<Connection> {
  const [host, portText] = address.split(':') as [string, string];
  const deadline = Date.now() + deadlineMs;
  let lastError: unknown;
  for (;;) {
    if (server.exited()) {
      throw new Error(`${what} exited during startup. Output:\n${server.outputTail()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not ready at ${address} after ${deadlineMs} ms (last error: ${String(lastError)}). Output:\n${server.outputTail()}`);
    }
    if (await isPortOpen(Number(portText), host)) {
      let connection: Connection | undefined;
      try {
        connection = await Connection.connect({ address, connectTimeout: 2_000 });
        await probe(connection);
        return connection;
      } catch (err) {
        lastError = err;
        await connection?.close();
      }
    }
    await sleep(POLL_MS);
  }
}

/**
 * Without a local CLI, @temporalio/testing downloads one (needs internet) and
 * its Rust core supervises the process. Imported lazily: it loads the native bridge.
 */
async function startWithTestingDownload(opts: {
  port: number;
  uiPort: number;
  namespace: string;
  dbFile: string | undefined;
  log: (msg: string) => void;
}): Promise<TemporalDevServer> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const started = Date.now();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download' },
      ip: '127.0.0.1',
      port: opts.port,
      ui: true,
      uiPort: opts.uiPort,
      namespace: opts.namespace,
      ...(opts.dbFile ? { dbFilename: opts.dbFile } : {}),
      log: { format: 'pretty', level: 'warn' },
      extraArgs: [
        ...searchAttributeArgs(),
        ...DEV_DYNAMIC_CONFIG.flatMap((kv) => ['--dynamic-config-value', kv]),
        ...(opts.dbFile ? SQLITE_FILE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma]) : []),
      ],
    },
  });
  try {
    await ensureSearchAttributes(env.connection, opts.namespace);
  } catch (err) {
    await env.teardown();
    throw err;
  }
  opts.log(`Temporal dev server (@temporalio/testing download) ready at ${env.address} in ${Date.now() - started} ms`);
  let stopping: Promise<void> | undefined;
  return {
    address: env.address,
    uiUrl: `http://127.0.0.1:${opts.uiPort}`,
    namespace: opts.namespace,
    stop: () => (stopping ??= env.teardown()),
  };
}

const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const killsOnParentExit = new Set<() => void>();

function killAllOnParentExit(): void {
  for (const kill of killsOnParentExit) kill();
}

function onParentSignal(signal: NodeJS.Signals): void {
  // Someone else handles this signal (e.g. a graceful shutdown calling stop()): leave it to them; 'exit' still covers us.
  if (process.listeners(signal).some((listener) => listener !== onParentSignal)) return;
  killAllOnParentExit();
  process.removeListener(signal, onParentSignal);
  process.kill(process.pid, signal);
}

/**
 * Runs `kill` when this process exits, including on a signal: Node skips
 * 'exit' handlers when a signal kills it, so we also listen for signals and
 * re-raise them to keep the default "die". Returns the unregister function.
 */
function killOnParentExit(kill: () => void): () => void {
  if (killsOnParentExit.size === 0) {
    process.on('exit', killAllOnParentExit);
    for (const signal of EXIT_SIGNALS) process.on(signal, onParentSignal);
  }
  killsOnParentExit.add(kill);
  return () => {
    killsOnParentExit.delete(kill);
    if (killsOnParentExit.size > 0) return;
    process.removeListener('exit', killAllOnParentExit);
    for (const signal of EXIT_SIGNALS) process.removeListener(signal, onParentSignal);
  };
}

/** Our servers lead their own process group (spawned detached). */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
