// What a hostile or broken workspace can do to a step, tried on both runtimes through
// `node index.js` (the wasm core, and the native binary with DATABRICKS_AZDO_RUNTIME=native):
// endless and huge answers, trickling bodies, redirects, answers that say nothing, untrusted
// certificates, and input files that never end.
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { BINARY_DIR, CLUSTER, TOKEN, issues, runTask } from './harness.mjs';

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

/**
 * A fake workspace for one notebook run: `runs/submit` answers run 7, `runs/get` answers
 * whatever `scenario.get(request, response)` does (by default: finished, passed), and every
 * request is counted by endpoint.
 */
function fakeWorkspace(handlers = {}) {
  const counts = {};
  let taskKey = 'unit';
  const json = (response, status, body) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  const routes = {
    'POST /api/2.2/jobs/runs/submit': (request, response, body) => {
      taskKey = JSON.parse(body).tasks[0].task_key;
      json(response, 200, { run_id: 7 });
    },
    'GET /api/2.2/jobs/runs/get': (request, response) => json(response, 200, {
      run_id: 7, run_page_url: 'https://example.invalid/run/7',
      state: { life_cycle_state: 'TERMINATED', result_state: 'SUCCESS' },
      tasks: [{ task_key: taskKey, run_id: 8, state: { life_cycle_state: 'TERMINATED', result_state: 'SUCCESS' } }],
    }),
    'GET /api/2.2/jobs/runs/get-output': (request, response) => json(response, 200, { notebook_output: { result: 'ok' } }),
    'POST /api/2.2/jobs/runs/cancel': (request, response) => json(response, 200, {}),
    ...handlers,
  };
  const handle = (request, response) => {
    const route = `${request.method} ${request.url.split('?')[0]}`;
    counts[route] = (counts[route] || 0) + 1;
    let body = '';
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      const handler = routes[route];
      if (handler) handler(request, response, body);
      else json(response, 404, { error_code: 'NOT_FOUND', message: route });
    });
  };
  return { counts, handle };
}

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function serveHttp(workspace) {
  const server = await listen(http.createServer(workspace.handle));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => closeAll(server) };
}

function closeAll(server) {
  server.closeAllConnections?.();
  return new Promise((resolve) => server.close(resolve));
}

function stepEnv(workspaceUrl, inputs = {}) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME || tmpdir(),
    TF_BUILD: 'True',
    INPUT_DATABRICKSHOST: workspaceUrl,
    INPUT_DATABRICKSTOKEN: TOKEN,
    SYSTEM_PLANID: 'plan', SYSTEM_JOBID: 'job', SYSTEM_JOBATTEMPT: '1',
    INPUT_NOTEBOOKPATHS: '/Shared/unit',
    INPUT_CLUSTERMODE: 'existing',
    INPUT_EXISTINGCLUSTERID: CLUSTER,
    ...inputs,
  };
}

const errors = (result) => issues(result, 'error');

async function timed(work) {
  const started = Date.now();
  const value = await work();
  return { ...value, seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// 1. Answers are bounded while they are read.

/** Writes `chunk` as fast as the client reads it, until the client goes away; counts bytes. */
function endless(response, chunk, sent) {
  const write = () => {
    while (!response.destroyed && response.write(chunk)) sent.bytes += chunk.length;
    if (!response.destroyed) response.once('drain', write);
  };
  response.on('close', () => { sent.closed = true; });
  write();
}

const ENDLESS_SHAPES = {
  // Transfer-Encoding: chunked, never ending.
  chunked: (sent) => (request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    endless(response, Buffer.alloc(64 * 1024, ' '), sent);
  },
  // An error status with an endless body: the error path reads the body too.
  'chunked error': (sent) => (request, response) => {
    response.writeHead(500, { 'content-type': 'text/plain' });
    endless(response, Buffer.alloc(64 * 1024, 'x'), sent);
  },
};

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  for (const [shape, make] of Object.entries(ENDLESS_SHAPES)) {
    test(`${runtime}: an endless answer (${shape}) is cut at 16 MB while it streams`, async () => {
      const sent = { bytes: 0, closed: false };
      const workspace = fakeWorkspace({ 'GET /api/2.2/jobs/runs/get': make(sent) });
      const server = await serveHttp(workspace);
      try {
        const result = await timed(() => runTask('DatabricksRunNotebookTest', { ...stepEnv(server.url), ...runtimeEnv }));
        assert.equal(result.code, 3, result.stdout);
        assert.match(errors(result).join('\n'), /larger than 16 MB/);
        assert.ok(sent.bytes < 64 * 1024 * 1024, `the client read ${sent.bytes} bytes`);
        assert.ok(result.seconds < 30, `took ${result.seconds}s`);
      } finally {
        await server.close();
      }
    });
  }

  test(`${runtime}: an endless answer without Content-Length or chunking is cut at 16 MB`, async () => {
    // HTTP/1.1 with Connection: close and no length: the body ends when the socket does.
    let bytes = 0;
    const raw = await listen(net.createServer((socket) => {
      socket.once('data', (head) => {
        if (head.toString().startsWith('POST')) {
          socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{"run_id":7}');
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n');
        const chunk = Buffer.alloc(64 * 1024, ' ');
        const write = () => {
          while (!socket.destroyed && socket.write(chunk)) bytes += chunk.length;
          if (!socket.destroyed) socket.once('drain', write);
        };
        socket.on('error', () => {});
        write();
      });
    }));
    try {
      const url = `http://127.0.0.1:${raw.address().port}`;
      const result = await runTask('DatabricksRunNotebookTest', { ...stepEnv(url), ...runtimeEnv });
      assert.equal(result.code, 3, result.stdout);
      assert.match(errors(result).join('\n'), /larger than 16 MB/);
      assert.ok(bytes < 64 * 1024 * 1024, `the client read ${bytes} bytes`);
    } finally {
      await closeAll(raw);
    }
  });
}

test("wasm: an endless answer through the agent's proxy is cut at 16 MB too", async () => {
  const sent = { bytes: 0 };
  const workspace = fakeWorkspace({ 'GET /api/2.2/jobs/runs/get': ENDLESS_SHAPES.chunked(sent) });
  const server = await serveHttp(workspace);
  const seen = [];
  const proxy = await listen(http.createServer((request, response) => {
    seen.push(request.url);
    const upstream = http.request(request.url, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    response.on('close', () => upstream.destroy());
    request.pipe(upstream);
  }));
  try {
    const env = { ...stepEnv(server.url), AGENT_PROXYURL: `http://127.0.0.1:${proxy.address().port}` };
    const result = await runTask('DatabricksRunNotebookTest', env);
    assert.equal(result.code, 3, result.stdout);
    assert.match(errors(result).join('\n'), /larger than 16 MB/);
    assert.ok(seen.some((url) => url.includes('/runs/get?')), 'the request did not go through the proxy');
    assert.ok(sent.bytes < 64 * 1024 * 1024, `the client read ${sent.bytes} bytes`);
  } finally {
    await closeAll(proxy);
    await server.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 2. Every attempt has a deadline, and timeoutMinutes bounds the step, retries included.

const SLOW_SHAPES = {
  // One byte every 200 ms: the headers come at once, the body never completes.
  'a trickling body': (request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    const timer = setInterval(() => response.write(' '), 200);
    response.on('close', () => clearInterval(timer));
  },
  // Answers that are always retried: 503 with Retry-After.
  'endless 503 retries': (request, response) => {
    response.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
    response.end('{"error_code":"TEMPORARILY_UNAVAILABLE","message":"busy"}');
  },
  // No answer at all to the request.
  'no answer at all': () => {},
};

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  for (const [shape, handler] of Object.entries(SLOW_SHAPES)) {
    test(`${runtime}: ${shape} ends at timeoutMinutes, and the run is cancelled`, async () => {
      const workspace = fakeWorkspace({ 'GET /api/2.2/jobs/runs/get': handler });
      const server = await serveHttp(workspace);
      try {
        // 0.05 minutes: 3 s for the whole step.
        const env = { ...stepEnv(server.url, { INPUT_TIMEOUTMINUTES: '0.05' }), ...runtimeEnv };
        const result = await timed(() => runTask('DatabricksRunNotebookTest', env));
        assert.equal(result.code, 4, result.stdout);
        assert.match(errors(result).join('\n'), /did not finish within timeoutMinutes/);
        assert.ok(result.seconds < 3 + 8, `the step took ${result.seconds}s`);
        assert.equal(workspace.counts['POST /api/2.2/jobs/runs/cancel'], 1, JSON.stringify(workspace.counts));
      } finally {
        await server.close();
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 3. No redirects, on either runtime.

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  for (const [route, status] of [['GET /api/2.2/jobs/runs/get', 302], ['POST /api/2.2/jobs/runs/submit', 307], ['GET /api/2.2/jobs/runs/get', 301], ['GET /api/2.2/jobs/runs/get', 308]]) {
    test(`${runtime}: a ${status} from ${route} is an error naming where it pointed, never followed`, async () => {
      const elsewhere = fakeWorkspace();
      const other = await serveHttp(elsewhere);
      const location = `${other.url}/api/2.2/jobs/runs/get?run_id=7`;
      const workspace = fakeWorkspace({
        [route]: (request, response) => { response.writeHead(status, { location }); response.end(); },
      });
      const server = await serveHttp(workspace);
      try {
        const result = await timed(() => runTask('DatabricksRunNotebookTest', { ...stepEnv(server.url), ...runtimeEnv }));
        assert.equal(result.code, 3, result.stdout);
        const message = errors(result).join('\n');
        assert.ok(message.includes(`redirect to ${location}`), message);
        assert.match(result.stdout, /never redirects/);
        assert.deepEqual(elsewhere.counts, {}, 'the redirect was followed');
        assert.ok(result.seconds < 10, `took ${result.seconds}s: a redirect is not retried`);
        assert.doesNotMatch(result.stdout, /retrying in|ArrayBuffer/);
      } finally {
        await server.close();
        await other.close();
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 10. An answer that says nothing is not "still running".

const SILENT_ANSWERS = {
  'an empty 200': [{ 'content-type': 'application/json' }, '', /empty body/],
  'a blank 200': [{ 'content-type': 'application/json' }, ' \r\n ', /empty body/],
  'an HTML sign-in page': [{ 'content-type': 'text/html' }, '<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>x</body></html>', /HTML page \("Sign in to your account"\).*single sign-on/],
  'an HTML page labelled JSON': [{ 'content-type': 'application/json' }, '<html><body>login</body></html>', /HTML page/],
  'an empty JSON object': [{ 'content-type': 'application/json' }, '{}', /no `state.life_cycle_state`/],
  'another run': [{ 'content-type': 'application/json' }, '{"run_id": 99, "state": {"life_cycle_state": "RUNNING"}}', /describes run 99, not run 7/],
  'plain text': [{ 'content-type': 'text/plain' }, 'OK', /not JSON.*starts with `OK`/],
};

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  for (const [shape, [headers, body, expected]] of Object.entries(SILENT_ANSWERS)) {
    test(`${runtime}: ${shape} from runs/get stops the step at once, saying what came back`, async () => {
      const workspace = fakeWorkspace({
        'GET /api/2.2/jobs/runs/get': (request, response) => { response.writeHead(200, headers); response.end(body); },
      });
      const server = await serveHttp(workspace);
      try {
        const result = await timed(() => runTask('DatabricksRunNotebookTest', { ...stepEnv(server.url), ...runtimeEnv }));
        assert.equal(result.code, 3, result.stdout);
        assert.match(errors(result).join('\n'), expected);
        assert.doesNotMatch(result.stdout, /retrying in/);
        assert.ok(result.seconds < 10, `took ${result.seconds}s`);
      } finally {
        await server.close();
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 4. A certificate the agent does not trust fails at once, with a hint; a CA can be added.

/** A throwaway company CA and a certificate for localhost signed by it. */
function makeCertificate(dir) {
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'),
    '-days', '1', '-subj', '/CN=databricks-azdo test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('key.pem'), '-out', file('leaf.csr'), '-subj', '/CN=localhost');
  writeFileSync(file('leaf.ext'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('cert.pem'), '-days', '1', '-extfile', file('leaf.ext'));
  return { key: readFileSync(file('key.pem')), cert: readFileSync(file('cert.pem')), certFile: file('ca.pem') };
}

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: an untrusted certificate fails at once with a hint, and trusting its CA fixes it`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'azdo-tls-'));
    const { key, cert, certFile } = makeCertificate(dir);
    const workspace = fakeWorkspace();
    const server = await listen(https.createServer({ key, cert }, workspace.handle));
    try {
      const url = `https://localhost:${server.address().port}`;
      const untrusted = await timed(() => runTask('DatabricksRunNotebookTest', { ...stepEnv(url), ...runtimeEnv }));
      assert.equal(untrusted.code, 3, untrusted.stdout);
      assert.doesNotMatch(untrusted.stdout, /retrying in/);
      assert.ok(untrusted.seconds < 10, `took ${untrusted.seconds}s`);
      assert.match(untrusted.stdout, /certificate/i);
      assert.match(untrusted.stdout, /NODE_EXTRA_CA_CERTS/);
      assert.match(untrusted.stdout, /SSL_CERT_FILE/);
      assert.deepEqual(workspace.counts, {}, 'a request got through');

      // The usual ways to add a company CA, per runtime: a file, or (native) a folder of them.
      const caFolder = path.join(dir, 'ca-folder');
      mkdirSync(caFolder);
      copyFileSync(certFile, path.join(caFolder, 'company-ca.pem'));
      const ways = runtime === 'wasm' ? [{ NODE_EXTRA_CA_CERTS: certFile }] : [{ SSL_CERT_FILE: certFile }, { SSL_CERT_DIR: caFolder }];
      for (const trust of ways) {
        const trusted = await runTask('DatabricksRunNotebookTest', { ...stepEnv(url), ...runtimeEnv, ...trust });
        assert.equal(trusted.code, 0, `${JSON.stringify(trust)}: ${trusted.stdout}`);
      }
      assert.equal(workspace.counts['POST /api/2.2/jobs/runs/submit'], ways.length);
    } finally {
      await closeAll(server);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 5. Files an input points at are bounded: no device, no FIFO, no huge file.

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: newClusterJson pointing at a device, a FIFO or a huge file is one clear input error`, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'azdo-files-'));
    const fifo = path.join(dir, 'cluster.fifo');
    execFileSync('mkfifo', [fifo]);
    const huge = path.join(dir, 'huge.json');
    writeFileSync(huge, `{"spark_version": "${'x'.repeat(2 * 1024 * 1024)}"}`);
    const workspace = fakeWorkspace();
    const server = await serveHttp(workspace);
    try {
      for (const [file, reason] of [['/dev/zero', /not a regular file/], [fifo, /not a regular file/], [huge, /larger than 1048576 bytes/], [dir, /not a regular file|directory/i]]) {
        const env = { ...stepEnv(server.url, { INPUT_CLUSTERMODE: 'new', INPUT_NEWCLUSTERJSON: file }), ...runtimeEnv };
        const result = await timed(() => runTask('DatabricksRunNotebookTest', env));
        assert.equal(result.code, 2, result.stdout);
        const message = errors(result).join('\n');
        assert.match(message, /newClusterJson/);
        assert.match(message, reason);
        assert.ok(result.seconds < 10, `${file} took ${result.seconds}s`);
      }
      assert.deepEqual(workspace.counts, {}, 'a request was sent');
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 8. A malformed proxy setting is refused without repeating what may be a credential.

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: a malformed Agent.ProxyUrl holding a credential is refused without repeating it`, async () => {
    const workspace = fakeWorkspace();
    const server = await serveHttp(workspace);
    try {
      for (const proxyUrl of ['proxy.corp:8080?token=s3cr3t-q', 'user:s3cr3t-p@proxy.corp:8080', 'proxy.corp:8080#s3cr3t-f',
        'socks5://u:s3cr3t-s@proxy:1080', 'ftp://proxy/?s3cr3t-t']) {
        const result = await runTask('DatabricksRunNotebookTest', { ...stepEnv(server.url), ...runtimeEnv, AGENT_PROXYURL: proxyUrl });
        assert.equal(result.code, 2, result.stdout);
        assert.match(errors(result).join('\n'), /Agent\.ProxyUrl/);
        // Registering it for masking is the one place it may appear.
        const shown = result.lines.filter((l) => !l.startsWith('##vso[task.setsecret]')).join('\n') + result.stderr;
        assert.doesNotMatch(shown, /s3cr3t/, proxyUrl);
      }
      assert.deepEqual(workspace.counts, {}, 'a request was sent');
    } finally {
      await server.close();
    }
  });
}
