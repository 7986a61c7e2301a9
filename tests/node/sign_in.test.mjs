// Signing in without a personal access token, through the task folders as the agent runs them
// (the wasm core, and the native binary through index.js): every method's service connection
// in the agent's exact environment (checked against azure-pipelines-task-lib's own readers),
// the whole pipeline, tokens renewed during a run longer than their lifetime, refusals
// explained, and no credential in the log.
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';

import {
  BINARY_DIR, CLUSTER, PASSING, REPO_PATH, ROOT, makeProject, parseCommand, pipelineEnv, runTask, startEmulator,
} from './harness.mjs';
import {
  AZURE_CLIENT, AZURE_CONNECTION, CERTIFICATE, ISSUER, KEY_LINES, ORG, PIPELINE, PROJECT, TENANT,
  UNAUTHORIZED_CONNECTION, agentEnv, connection, identities, secrets,
} from './identities.mjs';

const SLEEPY = '# Databricks notebook source\nimport time\ntime.sleep(4)\ndbutils.notebook.exit("slept")\n';

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

/** Nothing printed holds a credential: the scenario's secrets, the key, or any value the step registered as a secret. */
function assertNoCredential(result, label) {
  const registered = result.lines.filter((l) => l.startsWith('##vso[task.setsecret]')).map((l) => parseCommand(l).message).filter((v) => v.length >= 8);
  const hunted = [secrets.job, secrets.client, secrets.header, ...KEY_LINES, ...registered];
  for (const line of `${result.stdout}\n${result.stderr}`.split('\n')) {
    if (line.startsWith('##vso[task.setsecret]')) continue;
    for (const secret of hunted) assert.ok(!line.includes(secret), `${label}: a credential leaks: ${line}`);
  }
  return registered;
}

let emulator;
let project;
before(async () => {
  emulator = await startEmulator([], { identities: identities() });
  project = makeProject({ unit: PASSING });
});
after(async () => {
  await emulator.stop();
  project.cleanup();
});

test('the connection variables are where azure-pipelines-task-lib reads them', () => {
  const env = { ...agentEnv('certificate', 'http://127.0.0.1:1'), PATH: process.env.PATH };
  const script = `
    const tl = require(${JSON.stringify(path.join(ROOT, 'scripts/node_modules/azure-pipelines-task-lib/task.js'))});
    const id = tl.getInput('azureSubscription', true);
    process.stdout.write(JSON.stringify({
      scheme: tl.getEndpointAuthorizationScheme(id, false),
      client: tl.getEndpointAuthorizationParameter(id, 'serviceprincipalid', false),
      tenant: tl.getEndpointAuthorizationParameter(id, 'tenantid', false),
      kind: tl.getEndpointAuthorizationParameter(id, 'authenticationType', false),
      pem: tl.getEndpointAuthorizationParameter(id, 'servicePrincipalCertificate', false),
      authority: tl.getEndpointDataParameter(id, 'activeDirectoryAuthority', false),
      url: tl.getEndpointUrl(id, false),
      accessToken: tl.getEndpointAuthorizationParameter('SYSTEMVSSCONNECTION', 'AccessToken', false),
    }));`;
  const run = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const read = JSON.parse(run.stdout.split('\n').filter((l) => l.startsWith('{')).pop());
  assert.deepEqual(read, {
    scheme: 'ServicePrincipal', client: AZURE_CLIENT, tenant: TENANT, kind: 'spnCertificate', pem: CERTIFICATE,
    authority: 'http://127.0.0.1:1/', url: 'https://management.azure.com/', accessToken: secrets.job,
  });
});

const METHODS = ['federation', 'secret', 'certificate', 'managedIdentity', 'databricksM2m', 'databricksConnectionFederation', 'databricksFederation'];
for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  for (const method of METHODS) {
    test(`${runtime}: ${method} signs in for the whole pipeline, with no credential in the log`, async () => {
      const repoPath = `${REPO_PATH}-${runtime}-${method}`;
      const env = (inputs) => pipelineEnv(emulator, project, {
        SECRET_DATABRICKS_TOKEN: undefined, INPUT_DATABRICKSTOKEN: undefined,
        ...agentEnv(method, emulator.url), ...runtimeEnv, repoPath, ...inputs,
      });
      const steps = [
        ['DatabricksRepoUpdate', env({})],
        ['DatabricksRunNotebookTest', env({ notebookPaths: 'test/unit', existingClusterId: CLUSTER })],
        ['DatabricksRepoUpdate', env({ mode: 'delete' })],
      ];
      for (const [task, stepEnv] of steps) {
        const result = await runTask(task, stepEnv);
        assert.equal(result.code, 0, `${task}: ${result.stdout}${result.stderr}`);
        assert.match(result.stdout, /Signed in with/);
        assert.ok(result.lines[0].startsWith('##vso[task.setsecret]'), 'credentials are masked before anything else');
        const registered = assertNoCredential(result, `${runtime} ${method} ${task}`);
        assert.ok(registered.length >= 2, `the connection's credential and the token obtained are registered: ${registered.length}`);
      }
    });
  }

  test(`${runtime}: tokens are renewed during a run longer than their lifetime`, async () => {
    const shortLived = await startEmulator([], { identities: identities({ tokenLifetimeSeconds: 2 }) });
    const sleepy = makeProject({ sleepy: SLEEPY });
    try {
      const env = pipelineEnv(shortLived, sleepy, {
        SECRET_DATABRICKS_TOKEN: undefined, INPUT_DATABRICKSTOKEN: undefined,
        ...agentEnv('federation', shortLived.url), ...runtimeEnv,
        source: 'git', notebookPaths: 'test/sleepy', existingClusterId: CLUSTER,
      });
      const result = await runTask('DatabricksRunNotebookTest', env);
      assert.equal(result.code, 0, result.stdout);
      const issued = (await shortLived.identities()).tokens_issued;
      assert.ok(issued.entra >= 2, `renewed: ${JSON.stringify(issued)}`);
      assert.equal(issued.devops, issued.entra, 'a new id token for every exchange');
      assertNoCredential(result, runtime);
    } finally {
      await shortLived.stop();
      sleepy.cleanup();
    }
  });

  test(`${runtime}: token calls take the agent's proxy; the managed identity endpoint never does`, async () => {
    const seen = [];
    const proxy = http.createServer((request, response) => {
      seen.push(`${request.method} ${request.url}`);
      const upstream = http.request(request.url, { method: request.method, headers: request.headers }, (answer) => {
        response.writeHead(answer.statusCode, answer.headers);
        answer.pipe(response);
      });
      upstream.on('error', () => response.destroy());
      request.pipe(upstream);
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      for (const method of ['federation', 'managedIdentity']) {
        seen.length = 0;
        const env = pipelineEnv(emulator, project, {
          SECRET_DATABRICKS_TOKEN: undefined, INPUT_DATABRICKSTOKEN: undefined,
          ...agentEnv(method, emulator.url), ...runtimeEnv,
          repoPath: `${REPO_PATH}-proxied`, mode: 'delete', AGENT_PROXYURL: `http://127.0.0.1:${proxy.address().port}`,
        });
        const result = await runTask('DatabricksRepoUpdate', env);
        assert.equal(result.code, 0, result.stdout);
        assert.ok(seen.some((r) => r.startsWith(`GET ${emulator.url}/api/2.0/`)), seen.join('\n'));
        if (method === 'federation') {
          assert.ok(seen.some((r) => r.startsWith('POST') && r.includes('/oidctoken?')), `the id token request: ${seen.join('\n')}`);
          assert.ok(seen.some((r) => r.startsWith(`POST ${emulator.url}/${TENANT}/oauth2/v2.0/token`)), `the Entra request: ${seen.join('\n')}`);
        } else {
          assert.ok(!seen.some((r) => r.includes('/msi/token')), seen.join('\n'));
        }
        assertNoCredential(result, `${runtime} ${method} proxied`);
      }
    } finally {
      proxy.closeAllConnections?.();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  test(`${runtime}: refusals say what to fix`, async () => {
    const base = (method, inputs = {}) => pipelineEnv(emulator, project, {
      SECRET_DATABRICKS_TOKEN: undefined, INPUT_DATABRICKSTOKEN: undefined,
      ...agentEnv(method, emulator.url), ...runtimeEnv, repoPath: `${REPO_PATH}-refused`, ...inputs,
    });
    const cases = [
      ['a connection not authorized for the pipeline', base('federation', {
        INPUT_AZURESUBSCRIPTION: UNAUTHORIZED_CONNECTION,
        ...connection(UNAUTHORIZED_CONNECTION, 'https://management.azure.com/', 'WorkloadIdentityFederation',
          { tenantid: TENANT, serviceprincipalid: AZURE_CLIENT }, { activeDirectoryAuthority: `${emulator.url}/` }),
      }), /gave no id token for the service connection in `azureSubscription`[\s\S]*Pipeline permissions/],
      ['a wrong client secret', base('secret', { [`ENDPOINT_AUTH_PARAMETER_${AZURE_CONNECTION}_SERVICEPRINCIPALKEY`]: 'not-the-secret' }),
        /client secret of application 9b0c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4 \(tenant [^)]+\) is not valid/],
      ['a federation without a matching policy', base('databricksFederation', { INPUT_CLIENTID: 'ffffffff-5b6a-4798-8a7b-6c5d4e3f2a1b' }),
        new RegExp(`issuer \`${ISSUER}\`, subject \`p://${ORG}/${PROJECT}/${PIPELINE}\``)],
      ['a missing job access token', base('federation', { ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: undefined, ENDPOINT_AUTH_SYSTEMVSSCONNECTION: undefined }),
        /variable `System.AccessToken`/],
      ['a malformed certificate', base('certificate', { [`ENDPOINT_AUTH_PARAMETER_${AZURE_CONNECTION}_SERVICEPRINCIPALCERTIFICATE`]: '-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n' }),
        /certificate cannot be used/],
    ];
    for (const [label, env, expected] of cases) {
      const result = await runTask('DatabricksRepoUpdate', env);
      assert.notEqual(result.code, 0, `${label}: ${result.stdout}`);
      const error = result.lines.find((l) => l.startsWith('##vso[task.logissue type=error]'));
      assert.ok(error, `${label}: ${result.stdout}${result.stderr}`);
      assert.match(parseCommand(error).message, expected, label);
      assertNoCredential(result, `${runtime} ${label}`);
    }
  });
}
