/**
 * A real Temporal server on PostgreSQL, as production runs one, for `TEMPORAL_MODE=cluster npm start`
 * and the tests and proofs that take it: the server and its SQL schema tool built from their
 * official Go module (cached beside the CLI), the schema set up and updated by that tool (never
 * auto-setup), persistence and advanced visibility in two databases of the given PostgreSQL, the
 * frontend, history, matching and worker services in one process, and the `durapay` namespace
 * with the payment search attributes registered by this step.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import pg from 'pg';
import { findFreePorts, retryOnAddressInUse } from '../../lib/platform/free-port.js';
import { findOnPath, goBinaryCacheDir, installIntoCache, isExecutableFile } from '../go-binaries.js';
import { ensureSearchAttributes, GRPC_ALREADY_EXISTS, sleep, spawnInOwnGroup, waitUntilServing, type ManagedServer } from './temporal.js';

/** The server the Temporal CLI 1.5.1 embeds: the one every test already runs against. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
const SERVER_MODULE = 'go.temporal.io/server';
/**
 * History shards: chosen once, when the cluster's database is made, and never changeable after.
 * Four lets history work spread over several shard owners (and over hosts, in a larger layout)
 * while one machine's cluster stays light.
 */
export const NUM_HISTORY_SHARDS = 4;
export const CLUSTER_NAMESPACE = 'durapay';
/** How long Temporal keeps a finished order's history: long enough to look into last week's orders. */
export const CLUSTER_RETENTION_DAYS = 7;

/**
 * The cluster's SQL schema, as Temporal's schema tool makes it: the plugin (the server's too) and,
 * for each database, the versioned schema the tool embeds. docker-compose.yml's schema job runs the
 * same steps (test/compose.test.ts compares them).
 */
export const CLUSTER_SCHEMA = {
  plugin: 'postgres12',
  initialVersion: '0.0',
  databases: {
    persistence: { name: 'temporal', schemaName: 'postgresql/v12/temporal' },
    visibility: { name: 'temporal_visibility', schemaName: 'postgresql/v12/visibility' },
  },
} as const;
export const CLUSTER_DATABASES = {
  persistence: CLUSTER_SCHEMA.databases.persistence.name,
  visibility: CLUSTER_SCHEMA.databases.visibility.name,
} as const;

/**
 * temporal-sql-tool's commands for one database, after the connection flags and `--db`: create it
 * and set up versioning at the initial version (both leave a database that has them as it is), then
 * update it to the schema this version ships (which applies only what is missing).
 */
export function clusterSchemaSteps(database: keyof typeof CLUSTER_SCHEMA.databases): { create: string[]; setUp: string[]; update: string[] } {
  return {
    create: ['create-database'],
    setUp: ['setup-schema', '-v', CLUSTER_SCHEMA.initialVersion],
    update: ['update-schema', '--schema-name', CLUSTER_SCHEMA.databases[database].schemaName],
  };
}

/**
 * What the cluster needs beyond Temporal's defaults: ids that fit the SQL visibility's 255-character
 * columns. Task queue partitions stay at the default (4), as in production; the dev server's
 * single-partition settings are for one dev server only.
 */
export const CLUSTER_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = { 'limit.maxIDLength': 255 };

const READY_DEADLINE_MS = 120_000;
const POLL_MS = 250;
const run = promisify(execFile);

export interface TemporalServerBinaries {
  server: string;
  sqlTool: string;
}

/** The server and its schema tool from the cache, built there first if need be (Go required). */
export async function resolveTemporalServer(log: (msg: string) => void): Promise<TemporalServerBinaries> {
  const dir = goBinaryCacheDir();
  const binaries = {
    server: path.join(dir, `temporal-server-${TEMPORAL_SERVER_VERSION}`),
    sqlTool: path.join(dir, `temporal-sql-tool-${TEMPORAL_SERVER_VERSION}`),
  };
  const check = async () => {
    for (const file of Object.values(binaries)) if (!(await isExecutableFile(file))) return `${file} is missing`;
    return undefined;
  };
  if (!(await check())) return binaries;
  const go = await findOnPath('go');
  if (!go) {
    throw new Error(
      `TEMPORAL_MODE=cluster runs the Temporal server ${TEMPORAL_SERVER_VERSION} built from its Go module, and \`go\` is not on PATH: install Go 1.25 or later (https://go.dev/dl/)`,
    );
  }
  await installIntoCache(
    {
      label: `the Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL schema tool`,
      programs: [
        { package: `${SERVER_MODULE}/cmd/server@v${TEMPORAL_SERVER_VERSION}`, builds: 'server', installAs: path.basename(binaries.server) },
        { package: `${SERVER_MODULE}/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`, builds: 'sql', installAs: path.basename(binaries.sqlTool) },
      ],
      ldflags: '-s -w',
      check,
      expected: '~5 min',
      lockName: '.temporal-server-build.lock',
    },
    go,
    log,
  );
  return binaries;
}

interface PostgresTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** A database that exists, to connect to while creating the cluster's own. */
  existing: string;
}

function postgresTarget(databaseUrl: string): PostgresTarget {
  const url = new URL(databaseUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    existing: url.pathname.slice(1) || 'postgres',
  };
}

/**
 * The cluster's two databases, made and brought to the schema this server version ships with by
 * its own schema tool: create-database and `setup-schema -v 0.0` once, `update-schema` on every
 * start (it applies only what is missing).
 */
export async function setUpClusterSchema(sqlTool: string, databaseUrl: string, log: (msg: string) => void): Promise<void> {
  const target = postgresTarget(databaseUrl);
  const base = ['--plugin', CLUSTER_SCHEMA.plugin, '--ep', target.host, '-p', String(target.port), '-u', target.user, '--pw', target.password];
  const tool = async (database: string, ...command: string[]) => {
    try {
      await run(sqlTool, [...base, '--db', database, ...command], { timeout: 120_000 });
    } catch (err) {
      const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
      throw new Error(`temporal-sql-tool ${command.join(' ')} on ${database} failed:\n${`${stdout}\n${stderr}`.trim().slice(-4_000)}`);
    }
  };
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let existing: Set<string>;
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database');
    existing = new Set(rows.map((r) => r.datname));
  } finally {
    await client.end();
  }
  for (const kind of ['persistence', 'visibility'] as const) {
    const database = CLUSTER_DATABASES[kind];
    const steps = clusterSchemaSteps(kind);
    if (!existing.has(database)) {
      log(`creating the Temporal ${kind} database ${database}`);
      await tool(database, ...steps.create, '--defaultdb', target.existing);
      await tool(database, ...steps.setUp);
    }
    await tool(database, ...steps.update);
  }
}

/**
 * This cluster is one process, and the last one has stopped: its services' rows in the membership
 * table name hosts that are gone. Left there, the new process's ring waits for them to time out
 * and answers `Not enough hosts to serve the request` meanwhile.
 */
async function forgetStoppedHosts(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  url.pathname = `/${CLUSTER_DATABASES.persistence}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query('DELETE FROM cluster_membership');
  } finally {
    await client.end();
  }
}

interface ClusterPorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/** The server's static configuration (development.yaml) and its dynamic configuration. */
function writeClusterConfig(dir: string, databaseUrl: string, ports: ClusterPorts): void {
  const target = postgresTarget(databaseUrl);
  const datastore = (database: string, maxConns: number) => ({
    sql: {
      pluginName: CLUSTER_SCHEMA.plugin,
      databaseName: database,
      connectAddr: `${target.host}:${target.port}`,
      connectProtocol: 'tcp',
      user: target.user,
      password: target.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number, extra: Record<string, number> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...extra },
  });
  const config = {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: NUM_HISTORY_SHARDS,
      datastores: {
        'postgres-default': datastore(CLUSTER_DATABASES.persistence, 20),
        'postgres-visibility': datastore(CLUSTER_DATABASES.visibility, 10),
      },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: service(ports.frontend, ports.frontendMembership, { httpPort: ports.frontendHttp }),
      history: service(ports.history, ports.historyMembership),
      matching: service(ports.matching, ports.matchingMembership),
      worker: service(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${ports.frontend}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: path.join(dir, 'dynamicconfig.yaml'), pollInterval: '10s' },
  };
  const configDir = path.join(dir, 'config');
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  // JSON is YAML: the server reads this file as YAML. It holds the database password: mode 600.
  writeFileSync(path.join(configDir, 'development.yaml'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  const dynamic = Object.entries(CLUSTER_DYNAMIC_CONFIG)
    .map(([key, value]) => `${key}:\n  - value: ${JSON.stringify(value)}\n    constraints: {}\n`)
    .join('');
  writeFileSync(path.join(dir, 'dynamicconfig.yaml'), dynamic, { mode: 0o600 });
}

export interface TemporalClusterOptions {
  /** The PostgreSQL whose databases `temporal` and `temporal_visibility` hold the cluster. */
  databaseUrl: string;
  /** Where the cluster's configuration is written. */
  dir: string;
  /** The frontend's gRPC port; 0/undefined picks a free one. */
  port?: number;
  log?: (msg: string) => void;
}

export interface TemporalCluster {
  /** The frontend, host:port. */
  address: string;
  namespace: string;
  /** The server process's pid (its services all run in it). */
  pid: number | undefined;
  stop(): Promise<void>;
}

export async function startTemporalCluster(opts: TemporalClusterOptions): Promise<TemporalCluster> {
  const log = opts.log ?? (() => {});
  const binaries = await resolveTemporalServer(log);
  await setUpClusterSchema(binaries.sqlTool, opts.databaseUrl, log);
  return retryOnAddressInUse(async () => {
    await forgetStoppedHosts(opts.databaseUrl);
    // findFreePorts stays below 32768: Temporal keeps membership ports in a smallint column.
    const free = await findFreePorts(9);
    const ports: ClusterPorts = {
      frontend: opts.port || free[0]!,
      frontendHttp: free[1]!,
      frontendMembership: free[2]!,
      history: free[3]!,
      historyMembership: free[4]!,
      matching: free[5]!,
      matchingMembership: free[6]!,
      worker: free[7]!,
      workerMembership: free[8]!,
    };
    const dir = path.resolve(opts.dir);
    writeClusterConfig(dir, opts.databaseUrl, ports);
    const started = Date.now();
    const server = spawnInOwnGroup(binaries.server, ['--root', dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'], dir);
    const address = `127.0.0.1:${ports.frontend}`;
    try {
      const connection = await waitUntilServing(server, address, 'the Temporal server', (c) => c.workflowService.getSystemInfo({}), READY_DEADLINE_MS);
      try {
        await ensureNamespace(connection, CLUSTER_NAMESPACE);
        await ensureSearchAttributes(connection, CLUSTER_NAMESPACE);
        await waitForHistory(server, connection, CLUSTER_NAMESPACE);
      } finally {
        await connection.close();
      }
    } catch (err) {
      await server.stop();
      throw err;
    }
    log(`Temporal server ${TEMPORAL_SERVER_VERSION} on PostgreSQL ready at ${address} in ${Date.now() - started} ms`);
    return { address, namespace: CLUSTER_NAMESPACE, pid: server.child.pid, stop: server.stop };
  }, log);
}

const GRPC_NOT_FOUND = 5;

/**
 * The frontend answers before the history and matching services have joined the ring: callers
 * would get `Not enough hosts to serve the request`. History answers NotFound for a workflow that
 * does not exist once it serves; matching describes any task queue.
 */
async function waitForHistory(server: ManagedServer, connection: Connection, namespace: string): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    try {
      try {
        await connection.workflowService.describeWorkflowExecution({ namespace, execution: { workflowId: 'durapay-readiness-probe' } });
      } catch (err) {
        if ((err as { code?: number }).code !== GRPC_NOT_FOUND) throw err;
      }
      // And matching, which every task goes through.
      await connection.workflowService.describeTaskQueue({ namespace, taskQueue: { name: 'durapay-readiness-probe' } });
      return;
    } catch (err) {
      if (server.exited()) throw new Error(`the Temporal server exited during startup. Output:\n${server.outputTail()}`);
      if (Date.now() > deadline) throw new Error(`the Temporal server's history service is not serving after ${READY_DEADLINE_MS} ms: ${String(err)}`);
    }
    await sleep(POLL_MS);
  }
}

/** The namespace, registered with its retention unless it exists; retried while the services join. */
async function ensureNamespace(connection: Connection, namespace: string): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        description: 'durapay: payment, refund, webhook and reconciliation workflows',
        workflowExecutionRetentionPeriod: msToTs(`${CLUSTER_RETENTION_DAYS} days`),
      });
    } catch (err) {
      if ((err as { code?: number }).code !== GRPC_ALREADY_EXISTS) {
        if (Date.now() > deadline) throw err;
        await sleep(POLL_MS * 4);
        continue;
      }
    }
    try {
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(POLL_MS);
    }
  }
}
