// The task folders exactly as the agent runs them: `node index.js`, inputs and variables in the
// environment, stdout parsed as the agent parses it.
import { test } from './runner.mjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import tls from 'node:tls';
import net from 'node:net';
import path from 'node:path';

import {
  BINARY_DIR, FAILING, HOSTILE_EXIT, PASSING, REPO_PATH, ROOT, SLOW, TOKEN,
  normalize, outputVariable, parseCommand, pipelineEnv, repoWorkspace, runTask,
} from './harness.mjs';

const repo = repoWorkspace({ unit: PASSING, bad: FAILING, hostile: HOSTILE_EXIT, slow: SLOW });
const notebookEnv = repo.notebookEnv;

function assertEveryCommandParses(result) {
  for (const line of result.lines.filter((l) => l.startsWith('##vso['))) {
    assert.doesNotThrow(() => parseCommand(line), line);
  }
  // Only whole lines that start with the prefix are commands: nothing else may contain one.
  for (const line of result.lines.filter((l) => !l.startsWith('##vso[task.setsecret]'))) {
    assert.equal(line.indexOf('##vso[', 1), -1, `a second command inside: ${line}`);
    assert.ok(!line.includes(TOKEN), `the token leaks: ${line}`);
  }
}

test('repo update reports the head commit as an output variable', async () => {
  const result = await runTask('DatabricksRepoUpdate', pipelineEnv(repo.emulator, repo.project, { repoPath: REPO_PATH }));
  assert.equal(result.code, 0, result.stdout);
  assert.equal(outputVariable(result, 'headCommitId'), repo.project.head);
  assert.equal(outputVariable(result, 'repoPath'), REPO_PATH);
  assert.equal(parseCommand(result.lines[0]).command, 'task.setsecret', 'the token is masked before anything else');
  assertEveryCommandParses(result);
});

test('passing notebooks pass the step and publish their results', async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const reports = mkdtempSync(path.join(tmpdir(), 'azdo-reports-'));
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/unit', AGENT_TEMPDIRECTORY: reports }));
  const publish = parseCommand(result.lines.find((l) => l.startsWith('##vso[results.publish')));
  assert.equal(publish.properties.type, 'JUnit');
  assert.match(readFileSync(publish.properties.resultFiles, 'utf8'), /tests="1" failures="0"/);
  const summary = parseCommand(result.lines.find((l) => l.startsWith('##vso[task.uploadsummary')));
  assert.match(readFileSync(summary.message, 'utf8'), /1 of 1 passed/);
  rmSync(reports, { recursive: true, force: true });
  assert.equal(result.code, 0, result.stdout);
  assert.equal(outputVariable(result, 'resultState'), 'SUCCESS');
  assert.deepEqual(JSON.parse(outputVariable(result, 'notebookOutput')), { [`${REPO_PATH}/test/unit`]: 'all good' });
  const complete = parseCommand(result.lines.at(-1));
  assert.equal(complete.command, 'task.complete');
  assert.equal(complete.properties.result, 'Succeeded');
  assertEveryCommandParses(result);
});

test('a failing notebook fails the step, and its text cannot issue commands', async () => {
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/unit\ntest/bad' }));
  assert.equal(result.code, 1, result.stdout);
  const errors = result.lines.filter((l) => l.startsWith('##vso[task.logissue')).map(parseCommand);
  assert.ok(errors.some((e) => e.properties.type === 'error' && e.message.includes('AssertionError: boom **vso[task.complete')), result.stdout);
  assert.equal(parseCommand(result.lines.at(-1)).properties.result, 'Failed');
  assertEveryCommandParses(result);
});

test('hostile characters in values round-trip through the agent parser', async () => {
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/hostile' }));
  assert.equal(result.code, 0, result.stdout);
  const outputs = JSON.parse(outputVariable(result, 'notebookOutput'));
  assert.equal(outputs[`${REPO_PATH}/test/hostile`], 'a;b]c%d\r\ne **vso[task.setvariable variable=x]y');
  assertEveryCommandParses(result);
});

test('bad input fails before any request', async () => {
  await repo.emulator.resetRequests();
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/unit', clusterMode: 'serverles' }));
  assert.equal(result.code, 2, result.stdout);
  const error = parseCommand(result.lines.find((l) => l.startsWith('##vso[task.logissue')));
  assert.match(error.message, /input `clusterMode`: `serverles` is not one of/);
  assert.match(error.message, /did you mean `serverless`\?/);
  assert.equal(await repo.emulator.requests(), 0);
});

test('a libraries line that is no PyPI requirement fails before any request', async () => {
  await repo.emulator.resetRequests();
  for (const [line, why] of [
    ['npm: left-pad@^1.3.0', /line 1 \(`npm: left-pad@\^1\.3\.0`\) is not a PyPI requirement \(PEP 508\): `:` at character 4/],
    ['pypi: pandas=2.2', /`=` at character 7/],
  ]) {
    const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/unit', libraries: line }));
    assert.equal(result.code, 2, result.stdout);
    const errors = result.lines.filter((l) => l.startsWith('##vso[task.logissue')).map((l) => parseCommand(l).message);
    assert.equal(errors.length, 1, result.stdout);
    assert.match(errors[0], /^input `libraries`: /);
    assert.match(errors[0], why);
  }
  assert.equal(await repo.emulator.requests(), 0);
});

test('a missing token says which variable to add', async () => {
  const env = notebookEnv({ notebookPaths: 'test/unit', databricksToken: '$(DATABRICKS_TOKEN)', SECRET_DATABRICKS_TOKEN: undefined });
  const result = await runTask('DatabricksRunNotebookTest', env);
  assert.equal(result.code, 2, result.stdout);
  assert.match(result.stdout, /add DATABRICKS_TOKEN as a secret variable/);
});

test('a workspace that cannot be reached is reported with the reason, not a Node stack', async () => {
  // A port that was just free: nothing listens there, so every connection is refused.
  const port = await new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
  const env = pipelineEnv(repo.emulator, repo.project, { repoPath: REPO_PATH, databricksHost: `http://127.0.0.1:${port}` });
  const result = await runTask('DatabricksRepoUpdate', env, {
    signalWhen: (stdout) => stdout.includes('retrying in'),
  });
  assert.equal(result.code, 130, result.stdout);
  const warning = parseCommand(result.lines.find((l) => l.startsWith('##vso[task.logissue type=warning]')));
  assert.match(warning.message, new RegExp(`connect ECONNREFUSED 127\\.0\\.0\\.1:${port}; retrying in`));
  assert.doesNotMatch(result.stdout, /fetch failed|node:internal|JsValue/);
});

/** A forward proxy for plain-HTTP targets that remembers each request line and its credentials. */
async function startForwardProxy() {
  const seen = [];
  const server = http.createServer((request, response) => {
    seen.push({ url: request.url, credentials: request.headers['proxy-authorization'] });
    const upstream = http.request(request.url, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

const PROXY_ENV = { AGENT_PROXYUSERNAME: 'ci-proxy', SECRET_AGENT_PROXYPASSWORD: 'pr0xy%;pass]' };
const PROXY_CREDENTIALS = `Basic ${Buffer.from('ci-proxy:pr0xy%;pass]').toString('base64')}`;

test("the wasm core's requests go through the agent's proxy with its credentials", async () => {
  const proxy = await startForwardProxy();
  try {
    const before = await repo.emulator.requests();
    const env = { ...notebookEnv({ notebookPaths: 'test/unit' }), ...PROXY_ENV, AGENT_PROXYURL: proxy.url };
    const result = await runTask('DatabricksRunNotebookTest', env);
    assert.equal(result.code, 0, result.stdout);
    assert.equal(proxy.seen.length, (await repo.emulator.requests()) - before, 'every request went through the proxy');
    for (const { url, credentials } of proxy.seen) {
      assert.ok(url.startsWith(`${repo.emulator.url}/api/`), url);
      assert.equal(credentials, PROXY_CREDENTIALS);
    }
    assert.ok(!result.stdout.replace(/^##vso\[task\.setsecret\].*$/gm, '').includes('pr0xy%;pass]'));
  } finally {
    proxy.close();
  }
});

test("URLs on the agent's proxy bypass list go direct", async () => {
  const proxy = await startForwardProxy();
  try {
    const env = {
      ...notebookEnv({ notebookPaths: 'test/unit' }), ...PROXY_ENV,
      AGENT_PROXYURL: proxy.url, AGENT_PROXYBYPASSLIST: JSON.stringify(['example\\.com', '127\\.0\\.0\\.1']),
    };
    const result = await runTask('DatabricksRunNotebookTest', env);
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(proxy.seen, []);
  } finally {
    proxy.close();
  }
});

test('a proxy that refuses the tunnel credentials fails the step at once, with a hint', async () => {
  const tunnels = [];
  const server = http.createServer().on('connect', (request, socket) => {
    tunnels.push({ target: request.url, credentials: request.headers['proxy-authorization'] });
    socket.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const env = {
      ...pipelineEnv(repo.emulator, repo.project, { repoPath: REPO_PATH, mode: 'delete', databricksHost: 'https://adb-1234567890123456.7.azuredatabricks.net' }),
      ...PROXY_ENV, AGENT_PROXYURL: `http://127.0.0.1:${server.address().port}`,
    };
    const result = await runTask('DatabricksRepoUpdate', env);
    assert.equal(result.code, 3, result.stdout);
    const error = parseCommand(result.lines.find((l) => l.startsWith('##vso[task.logissue type=error]')));
    assert.match(error.message, /the proxy refused the tunnel to adb-1234567890123456\.7\.azuredatabricks\.net:443: HTTP 407/);
    assert.match(error.message, /check the proxy user name and password/);
    assert.doesNotMatch(result.stdout, /retrying/);
    assert.deepEqual(tunnels[0], { target: 'adb-1234567890123456.7.azuredatabricks.net:443', credentials: PROXY_CREDENTIALS });
  } finally {
    server.close();
  }
});

test("HTTPS through the agent's proxy: a CONNECT tunnel, then TLS to the workspace", async () => {
  // A throwaway certificate for localhost, trusted by the task's Node only.
  const dir = mkdtempSync(path.join(tmpdir(), 'azdo-tls-'));
  const [keyFile, certFile] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
  const emulatorPort = Number(new URL(repo.emulator.url).port);
  const relay = (a, b) => { a.pipe(b).pipe(a); a.on('error', () => b.destroy()); b.on('error', () => a.destroy()); };
  // An HTTPS workspace: TLS in front of the repo.emulator.
  const front = tls.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) },
    (socket) => relay(socket, net.connect(emulatorPort, '127.0.0.1')));
  const tunnels = [];
  const proxy = http.createServer().on('connect', (request, client, head) => {
    tunnels.push({ target: request.url, credentials: request.headers['proxy-authorization'] });
    const upstream = net.connect(Number(request.url.split(':')[1]), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      relay(client, upstream);
    });
    upstream.on('error', () => client.destroy());
  });
  await Promise.all([front, proxy].map((server) => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))));
  try {
    const workspace = `https://localhost:${front.address().port}`;
    const env = {
      ...pipelineEnv(repo.emulator, repo.project, { repoPath: REPO_PATH, databricksHost: workspace }),
      ...PROXY_ENV, AGENT_PROXYURL: `http://127.0.0.1:${proxy.address().port}`, NODE_EXTRA_CA_CERTS: certFile,
    };
    const result = await runTask('DatabricksRepoUpdate', env);
    assert.equal(result.code, 0, result.stdout);
    assert.ok(tunnels.length > 0, 'no tunnel was asked for');
    for (const tunnel of tunnels) {
      assert.deepEqual(tunnel, { target: `localhost:${front.address().port}`, credentials: PROXY_CREDENTIALS });
    }
  } finally {
    front.close();
    proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a malformed agent proxy setting is one clear error, before any request", async () => {
  const before = await repo.emulator.requests();
  const env = { ...notebookEnv({ notebookPaths: 'test/unit' }), AGENT_PROXYURL: 'proxy.corp:8080' };
  const result = await runTask('DatabricksRunNotebookTest', env);
  assert.equal(result.code, 2, result.stdout);
  const error = parseCommand(result.lines.find((l) => l.startsWith('##vso[task.logissue type=error]')));
  assert.match(error.message, /variable `Agent\.ProxyUrl`: `proxy\.corp:8080` is not an http\(s\) URL/);
  assert.equal(await repo.emulator.requests(), before);
});

test('SIGINT while polling cancels the Databricks run', async () => {
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/slow' }), {
    signalWhen: (stdout) => stdout.includes('run RUNNING'),
  });
  assert.equal(result.code, 130, result.stdout);
  assert.match(result.stdout, /stopped \(TERMINATED CANCELED\)/);
  const runs = await repo.emulator.runs();
  assert.equal(runs.at(-1).result_state, 'CANCELED');
});

test('the native runtime prints the same log as the wasm one', async () => {
  const env = notebookEnv({ notebookPaths: 'test/unit\ntest/bad' });
  const wasm = await runTask('DatabricksRunNotebookTest', env);
  const native = await runTask('DatabricksRunNotebookTest', {
    ...env, DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${env.PATH}`,
  });
  assert.equal(native.code, wasm.code);
  assert.equal(normalize(native.stdout), normalize(wasm.stdout));
});

test('a missing native binary is one clear error', async () => {
  const env = notebookEnv({ notebookPaths: 'test/unit', DATABRICKS_AZDO_RUNTIME: 'native', PATH: '/nonexistent' });
  const result = await runTask('DatabricksRunNotebookTest', env);
  assert.equal(result.code, 1, result.stdout);
  const error = parseCommand(result.lines[0]);
  assert.equal(error.properties.type, 'error');
  assert.match(error.message, /native databricks-azdo binary was not found/);
  assert.match(error.message, /put databricks-azdo on the PATH/);
});

test('a wasm core that cannot load falls back to the native binary', async () => {
  const { cpSync, mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const copy = mkdtempSync(path.join(tmpdir(), 'azdo-broken-'));
  cpSync(path.join(ROOT, 'task', 'DatabricksRunNotebookTest'), copy, { recursive: true });
  writeFileSync(path.join(copy, 'core', 'databricks_azdo_bg.wasm'), 'not wasm');
  const env = notebookEnv({ notebookPaths: 'test/unit' });
  const result = await runTask('DatabricksRunNotebookTest', { ...env, PATH: `${BINARY_DIR}${path.delimiter}${env.PATH}` }, { folder: copy });
  rmSync(copy, { recursive: true, force: true });
  assert.equal(result.code, 0, result.stdout);
  assert.match(result.lines[0], /^##\[warning\]The wasm core could not be loaded .*; using the native binary\.$/);
  assert.equal(outputVariable(result, 'resultState'), 'SUCCESS');
});

test('SIGINT during a submit retry cancels the run the lost submit started (wasm)', async () => {
  await repo.emulator.setFaults(['POST /api/2.2/jobs/runs/submit=drop-after*1']);
  const before = (await repo.emulator.runs()).length;
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/slow' }), {
    signalWhen: (stdout) => stdout.includes('POST /api/2.2/jobs/runs/submit:'),
  });
  await repo.emulator.setFaults([]);
  assert.equal(result.code, 130, result.stdout);
  const runs = await repo.emulator.runs();
  assert.equal(runs.length, before + 1, 'exactly one run started');
  assert.equal(runs.at(-1).result_state, 'CANCELED');
});

test('SIGTERM while polling cancels the run (native, through index.js)', async () => {
  const env = notebookEnv({ notebookPaths: 'test/slow' });
  const result = await runTask('DatabricksRunNotebookTest', {
    ...env, DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${env.PATH}`,
  }, { signalWhen: (stdout) => stdout.includes('run RUNNING'), signal: 'SIGTERM' });
  assert.equal(result.code, 130, result.stdout);
  assert.match(result.stdout, /stopped \(TERMINATED CANCELED\)/);
  assert.equal((await repo.emulator.runs()).at(-1).result_state, 'CANCELED');
});

test('a signal at any moment leaves no run behind (wasm and native)', async () => {
  const live = ['QUEUED', 'PENDING', 'RUNNING', 'TERMINATING', 'BLOCKED', 'WAITING_FOR_RETRY'];
  // Moments from "Node is still starting" to "the run is being polled".
  const moments = [0, 40, 120, 250, 500, 900, 1400, 2200];
  for (const [i, ms] of moments.entries()) {
    const native = i % 2 === 1;
    const env = notebookEnv({ notebookPaths: 'test/slow' });
    const runtime = native ? { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${env.PATH}` } : {};
    const signal = i % 3 === 2 ? 'SIGTERM' : 'SIGINT';
    const result = await runTask('DatabricksRunNotebookTest', { ...env, ...runtime }, { signalAfterMs: ms, signal });
    const label = `${native ? 'native' : 'wasm'} ${signal} after ${ms} ms`;
    // Either our handler ran (130) or the signal came before Node could install it (killed).
    assert.ok(result.code === 130 || result.code === 128, `${label}: exit ${result.code}\n${result.stdout}`);
    const running = (await repo.emulator.runs()).filter((r) => live.includes(r.life_cycle_state));
    assert.deepEqual(running, [], `${label}: a run was left behind\n${result.stdout}`);
  }
});
