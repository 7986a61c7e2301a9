// A hostile identity provider, through `node index.js` on both runtimes: a token too short to
// be real is refused before it is registered as a secret (it would mask that text in every
// later line of the job), and a client secret it echoes back, in any encoding we could have
// produced ourselves, is never printed.
import { test } from './runner.mjs';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';

import { BINARY_DIR, CLUSTER, parseCommand, runTask } from './harness.mjs';
import { agentEnv, secrets } from './identities.mjs';

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

/**
 * Runs `body(url)` against a server that answers every token request with `answer(body,
 * route)`: `[status, json]`; the server is closed afterwards, also on failure.
 */
async function withProvider(answer, body) {
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (c) => chunks.push(c));
    request.on('end', () => {
      const [status, body] = answer(Buffer.concat(chunks).toString('utf8'), request.url);
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await body(`http://127.0.0.1:${server.address().port}`);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

function stepEnv(method, url, runtimeEnv) {
  return {
    PATH: process.env.PATH, TF_BUILD: 'True', ...agentEnv(method, url), ...runtimeEnv,
    INPUT_DATABRICKSHOST: url, INPUT_NOTEBOOKPATHS: '/Shared/tests/unit', INPUT_EXISTINGCLUSTERID: CLUSTER,
  };
}

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: a token too short to be real is refused before it is masked`, async () => {
    for (const [method, tiny] of [['secret', 'e'], ['federation', 'ab']]) {
      const answer = (_, route) => (route.includes('oidctoken')
        ? [200, { oidcToken: tiny }]
        : [200, { access_token: tiny, expires_in: 3600, token_type: 'Bearer' }]);
      await withProvider(answer, async (url) => {
        const result = await runTask('DatabricksRunNotebookTest', stepEnv(method, url, runtimeEnv));
        assert.equal(result.code, 3, `${method}: ${result.stdout}`);
        assert.match(result.stdout, new RegExp(`has ${tiny.length} characters, too few for a real token`));
        const registered = result.lines.filter((l) => l.startsWith('##vso[task.setsecret]')).map((l) => parseCommand(l).message);
        assert.ok(!registered.includes(tiny), `${method}: the tiny token was registered`);
      });
    }
  });

  test(`${runtime}: a client secret echoed back encoded is printed in no spelling`, async () => {
    const form = new URLSearchParams({ s: secrets.client }).toString().slice(2);
    const spellings = [
      form, form.replace(/%7E/g, '~'), form.toLowerCase(), encodeURIComponent(secrets.client),
      Buffer.from(secrets.client).toString('base64'), Buffer.from(secrets.client).toString('base64url'),
    ];
    for (const echoed of spellings) {
      const answer = () => [401, {
        error: 'invalid_client', error_codes: [7000215],
        error_description: `AADSTS7000215: Invalid client secret provided: '${echoed}'.`,
      }];
      await withProvider(answer, async (url) => {
        const result = await runTask('DatabricksRunNotebookTest', stepEnv('secret', url, runtimeEnv));
        assert.equal(result.code, 3, result.stdout);
        assert.match(result.stdout, /client secret/);
        for (const line of `${result.stdout}\n${result.stderr}`.split('\n')) {
          if (line.startsWith('##vso[task.setsecret]')) continue;
          assert.ok(!line.includes(echoed) && !line.includes(secrets.client), `${echoed} is printed: ${line}`);
        }
      });
    }
  });
}
