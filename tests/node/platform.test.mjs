// The platform as it is in late 2026, through `node index.js` on both runtimes (the wasm core,
// and the native binary index.js runs): Jobs API 2.2 pages of tasks, a run queued at the
// workspace's limit, serverless run fields, OAuth found through the host metadata (also on a
// unified host), Azure DevOps id tokens issued by Microsoft Entra, and a system-assigned
// managed identity named from its token.
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

import {
  BINARY_DIR, CLUSTER, PASSING, REPO_PATH, SLOW, TOKEN, makeProject, outputVariable, pipelineEnv, request, runTask,
  startEmulator,
} from './harness.mjs';
import {
  AZURE_CONNECTION, DATABRICKS_CLIENT, DATABRICKS_CONNECTION, MSI_CLIENT, ORG_ID, TENANT, agentEnv,
  identities,
} from './identities.mjs';

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};
const RUNS_GET = 'GET /api/2.2/jobs/runs/get';

/** A GUID's bytes in Microsoft's order (first three groups little-endian), base64url. */
function guidBase64url(guid) {
  const bytes = Buffer.from(guid.replace(/-/g, ''), 'hex');
  for (const [start, end] of [[0, 4], [4, 6], [6, 8]]) bytes.subarray(start, end).reverse();
  return bytes.toString('base64url');
}

/** The issuer and subject of the id tokens Entra issues for a converted connection. */
function entraPair(connectionId) {
  return {
    issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`,
    subject: `/eid1/c/pub/t/${guidBase64url(TENANT)}/a/${guidBase64url('499b84ac-1321-427f-aa17-267ca6975798')}/sc/${ORG_ID}/${connectionId}`,
  };
}

let project;
before(() => {
  const notebooks = { unit: PASSING, slow: SLOW };
  for (let i = 0; i < 101; i += 1) notebooks[`many/n${String(i).padStart(3, '0')}`] = PASSING;
  project = makeProject(notebooks);
});
after(() => project.cleanup());

/**
 * Runs `body` with an emulator of its own (stopped afterwards, also on failure: Node 16's test
 * context has no `after`), with the Repo checked out at REPO_PATH unless `identities` are given.
 */
async function withEmulator({ extraArgs = [], identities } = {}, body) {
  const emulator = await startEmulator([], { extraArgs, identities });
  try {
    if (!identities) {
      const update = await runTask('DatabricksRepoUpdate', pipelineEnv(emulator, project, { repoPath: REPO_PATH }));
      assert.equal(update.code, 0, update.stdout);
    }
    await body(emulator);
  } finally {
    await emulator.stop();
  }
}

test('both runtimes read every page of a run of 101 notebooks, one request a page a poll', () => withEmulator({}, async (emulator) => {
  // One step id: the second runtime gets the first one's run back and reads the same pages.
  const step = randomUUID();
  let seen = { first_page: 0, later_pages: 0 };
  for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
    const before = (await emulator.requestCounts())[RUNS_GET] ?? 0;
    const result = await runTask('DatabricksRunNotebookTest', pipelineEnv(emulator, project, {
      repoPath: REPO_PATH, notebookPaths: 'test/many/n*', existingClusterId: CLUSTER, SYSTEM_TASKINSTANCEID: step, ...runtimeEnv,
    }));
    assert.equal(result.code, 0, `${runtime}: ${result.stdout}`);
    assert.equal(outputVariable(result, 'testsPassed'), '101', runtime);
    const reads = ((await emulator.requestCounts())[RUNS_GET] ?? 0) - before;
    const now = (await emulator.runs()).at(-1).runs_get_reads;
    const polls = now.first_page - seen.first_page;
    assert.ok(polls >= 1, `${runtime}: ${JSON.stringify(now)}`);
    assert.equal(now.later_pages - seen.later_pages, polls, `${runtime}: one more page a poll`);
    assert.equal(reads, 2 * polls, `${runtime}: nothing else reads runs/get`);
    seen = now;
  }
  assert.equal((await emulator.runs()).length, 1);
}));

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  // The workspace's limit is one active run, and another pipeline's run holds it.
  test(`${runtime}: a run queued at the workspace's limit says why, and runs once a slot frees`, () => withEmulator({ extraArgs: ['--max-active-runs', '1'] }, async (emulator) => {
    const occupying = await request(`${emulator.url}/api/2.2/jobs/runs/submit`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ tasks: [{ task_key: 'slow', existing_cluster_id: CLUSTER, notebook_task: { notebook_path: `${REPO_PATH}/test/slow` } }] }),
    });
    const occupyingRun = occupying.json().run_id;
    let cancelSent = false;
    const result = await runTask('DatabricksRunNotebookTest', pipelineEnv(emulator, project, {
      repoPath: REPO_PATH, notebookPaths: 'test/unit', existingClusterId: CLUSTER, ...runtimeEnv,
    }), {
      signalWhen: (stdout) => {
        if (stdout.includes('run QUEUED') && !cancelSent) {
          cancelSent = true;
          request(`${emulator.url}/api/2.2/jobs/runs/cancel`, {
            method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ run_id: occupyingRun }),
          });
        }
        return false;
      },
    });
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /run QUEUED: ACTIVE_RUNS_LIMIT_REACHED: The run is queued/);
    const ours = (await emulator.runs()).at(-1);
    assert.deepEqual(ours.queue, { enabled: true });
    assert.equal(ours.result_state, 'SUCCESS');
  }));

  test(`${runtime}: performanceTarget and budgetPolicyId reach the serverless run`, () => withEmulator({}, async (emulator) => {
    const result = await runTask('DatabricksRunNotebookTest', pipelineEnv(emulator, project, {
      repoPath: REPO_PATH, notebookPaths: 'test/unit', clusterMode: 'serverless', performanceTarget: 'PERFORMANCE_OPTIMIZED',
      budgetPolicyId: '1a2b3c4d-0000-4000-8000-123456789abc', ...runtimeEnv,
    }));
    assert.equal(result.code, 0, result.stdout);
    const run = (await emulator.runs()).at(-1);
    assert.equal(run.performance_target, 'PERFORMANCE_OPTIMIZED');
    assert.equal(run.budget_policy_id, '1a2b3c4d-0000-4000-8000-123456789abc');
  }));
}

/** The parties with both connections converted to the Entra issuer, and a unified host. */
function platformIdentities() {
  const config = identities();
  for (const connection of config.devops.serviceConnections) {
    if (connection.id === AZURE_CONNECTION || connection.id === DATABRICKS_CONNECTION) connection.entraTenantId = TENANT;
  }
  const azure = entraPair(AZURE_CONNECTION);
  config.entra.applications[0].federatedCredentials = [{ ...azure, audience: 'api://AzureADTokenExchange' }];
  config.workspace.federationPolicies.push({ clientId: DATABRICKS_CLIENT, audience: 'api://AzureADTokenExchange', ...entraPair(DATABRICKS_CONNECTION) });
  config.workspace.unifiedHost = { accountId: 'a1b2c3d4-0000-4000-8000-0000000000aa' };
  return config;
}

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: Entra-issued id tokens, a unified host, a system-assigned managed identity`, () => withEmulator({ identities: platformIdentities() }, async (emulator) => {
    for (const method of ['federation', 'databricksConnectionFederation', 'databricksM2m', 'managedIdentity']) {
      const result = await runTask('DatabricksRepoUpdate', pipelineEnv(emulator, project, {
        SECRET_DATABRICKS_TOKEN: undefined, INPUT_DATABRICKSTOKEN: undefined,
        ...agentEnv(method, emulator.url), ...runtimeEnv, repoPath: `${REPO_PATH}-${method}`,
      }));
      assert.equal(result.code, 0, `${method}: ${result.stdout}${result.stderr}`);
      if (method === 'managedIdentity') {
        assert.match(result.stdout, new RegExp(`: client id ${MSI_CLIENT}, tenant ${TENANT} \\(read from its token\\)`));
      }
    }
    const counts = await emulator.requestCounts();
    assert.ok(counts['GET /.well-known/databricks-config'] >= 2, JSON.stringify(counts));
    assert.ok(counts['POST /oidc/accounts/a1b2c3d4-0000-4000-8000-0000000000aa/v1/token'] >= 2, JSON.stringify(counts));
    assert.equal(counts['POST /oidc/v1/token'], undefined, 'a unified host has no classic token endpoint');
    const ids = (await emulator.identities()).tokens_issued;
    assert.ok(ids.entra >= 1 && ids.workspace_oauth >= 2, JSON.stringify(ids));
  }));
}
