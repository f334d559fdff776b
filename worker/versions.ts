// Temporal's Worker Versioning: every worker serves one version (deployment name + build id) of
// its deployment, and every workflow is pinned to the version that started it, so a build only
// ever replays its own runs. A rollout makes a new version current (`temporal worker deployment
// set-current-version`, or ramping); new workflows start on it, and the older version's workers
// stop once its pinned workflows have drained.
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import type { WorkerVersionConfig } from '../lib/platform/config.js';

export interface WorkerVersion {
  deploymentName: string;
  buildId: string;
}

/** The configured build id, or one derived from the workflow code: a changed workflow is a new version. */
export function workerVersionOf(config: WorkerVersionConfig, workflowBundle: { code: string }): WorkerVersion {
  const buildId = config.buildId ?? `workflows-${createHash('sha256').update(workflowBundle.code).digest('hex').slice(0, 16)}`;
  return { deploymentName: config.deploymentName, buildId };
}

export function deploymentOptions(version: WorkerVersion): WorkerDeploymentOptions {
  return { useWorkerVersioning: true, version, defaultVersioningBehavior: 'PINNED' };
}

/** The command an operator runs to roll a version out. */
export function setCurrentCommand(version: WorkerVersion, namespace: string): string {
  return `temporal worker deployment set-current-version --namespace ${namespace} --deployment-name ${version.deploymentName} --build-id ${version.buildId}`;
}

export type VersionStanding = 'made current' | 'current' | 'not current';

const REGISTER_DEADLINE_MS = 60_000;
const POLL_MS = 200;
// gRPC codes the routing update answers while another update or a new version's registration is under way.
const RETRYABLE_CODES = new Set([5 /* NOT_FOUND */, 9 /* FAILED_PRECONDITION */, 10 /* ABORTED */, 14 /* UNAVAILABLE */]);

/**
 * Once Temporal lists `version` with every one of `taskQueues` (it learns them from the workers'
 * polls), makes it the deployment's current version when `setCurrent` asks for it or when the
 * deployment has none yet (its first build); otherwise leaves routing to the operator. Says where
 * the version stands.
 */
export async function takeUpVersion(opts: {
  client: Client;
  namespace: string;
  version: WorkerVersion;
  taskQueues: string[];
  setCurrent: boolean;
}): Promise<VersionStanding> {
  const { client, namespace, version, taskQueues, setCurrent } = opts;
  const service = client.workflowService;
  const deadline = Date.now() + REGISTER_DEADLINE_MS;
  for (;;) {
    try {
      const { workerDeploymentVersionInfo } = await service.describeWorkerDeploymentVersion({ namespace, deploymentVersion: version });
      const listed = new Set((workerDeploymentVersionInfo?.taskQueueInfos ?? []).map((info) => info.name));
      if (taskQueues.every((queue) => listed.has(queue))) break;
    } catch (err) {
      if (!RETRYABLE_CODES.has((err as { code?: number }).code ?? -1)) throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Temporal did not list worker version ${version.deploymentName}/${version.buildId} with task queues ${taskQueues.join(', ')} within ${REGISTER_DEADLINE_MS / 1000} s`);
    }
    await sleep(POLL_MS);
  }
  for (;;) {
    try {
      // Right after the version is listed, the deployment itself may still answer NotFound.
      const { conflictToken, workerDeploymentInfo } = await service.describeWorkerDeployment({ namespace, deploymentName: version.deploymentName });
      const current = workerDeploymentInfo?.routingConfig?.currentDeploymentVersion;
      if (current?.buildId === version.buildId) return 'current';
      if (current?.buildId && !setCurrent) return 'not current';
      await service.setWorkerDeploymentCurrentVersion({
        namespace,
        deploymentName: version.deploymentName,
        buildId: version.buildId,
        conflictToken,
        identity: `durapay-worker@${hostname()}/${randomUUID().slice(0, 8)}`,
      });
      return 'made current';
    } catch (err) {
      // Another worker changed the routing meanwhile (the conflict token), or the deployment is not
      // visible yet: look again.
      if (!RETRYABLE_CODES.has((err as { code?: number }).code ?? -1) || Date.now() > deadline) throw err;
      await sleep(POLL_MS);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
