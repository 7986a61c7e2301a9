// What a hostile workspace costs one RunNotebookTest step, on both runtimes (README,
// Reliability): peak memory on an endless answer, and the time to give up on a trickling body
// (with timeoutMinutes: 1) and on a certificate the agent does not trust.
// Usage: node scripts/bench-hostile.mjs   (after scripts/build.sh and cargo build; needs GNU
// time at /usr/bin/time and openssl; takes about 3 minutes)
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TASK = path.join(ROOT, 'task', 'DatabricksRunNotebookTest', 'index.js');
const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${path.join(ROOT, 'target', 'debug')}${path.delimiter}${process.env.PATH}` },
};

function workspace(runsGet) {
  return (request, response) => {
    const send = (body) => { response.writeHead(200, { 'content-type': 'application/json' }); response.end(JSON.stringify(body)); };
    if (request.url.startsWith('/api/2.2/jobs/runs/submit')) return send({ run_id: 7 });
    if (request.url.startsWith('/api/2.2/jobs/runs/cancel')) return send({});
    return runsGet(request, response);
  };
}

const endless = (request, response) => {
  response.writeHead(200, { 'content-type': 'application/json' });
  const chunk = Buffer.alloc(64 * 1024, ' ');
  const write = () => { while (!response.destroyed && response.write(chunk)); if (!response.destroyed) response.once('drain', write); };
  write();
};

const trickle = (request, response) => {
  response.writeHead(200, { 'content-type': 'application/json' });
  const timer = setInterval(() => response.write(' '), 1000);
  response.on('close', () => clearInterval(timer));
};

/** Runs the step under GNU time: exit code, seconds, peak RSS of the largest process (MB). */
function step(url, env) {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-f', 'PEAK %M', process.execPath, TASK], {
      env: {
        PATH: process.env.PATH, HOME: tmpdir(), TF_BUILD: 'True', INPUT_DATABRICKSHOST: url, INPUT_DATABRICKSTOKEN: 'dapi-bench',
        INPUT_NOTEBOOKPATHS: '/Shared/unit', INPUT_EXISTINGCLUSTERID: 'bench', INPUT_TIMEOUTMINUTES: '1', ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const started = Date.now();
    child.on('close', (code) => resolve({
      code, seconds: (Date.now() - started) / 1000, peakMb: Number((stderr.match(/PEAK (\d+)/) || [0, 0])[1]) / 1024,
    }));
  });
}

async function serve(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const dir = mkdtempSync(path.join(tmpdir(), 'azdo-bench-tls-'));
const file = (name) => path.join(dir, name);
const openssl = (...args) => execFileSync('openssl', args, { stdio: 'ignore' });
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=bench CA');
openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('key.pem'), '-out', file('leaf.csr'), '-subj', '/CN=localhost');
writeFileSync(file('leaf.ext'), 'subjectAltName=DNS:localhost\n');
openssl('x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('cert.pem'), '-days', '1', '-extfile', file('leaf.ext'));

const servers = {
  endless: await serve(http.createServer(workspace(endless))),
  trickle: await serve(http.createServer(workspace(trickle))),
  untrusted: await serve(https.createServer({ key: readFileSync(file('key.pem')), cert: readFileSync(file('cert.pem')) }, workspace(endless))),
};
const url = (name) => `${name === 'untrusted' ? 'https://localhost' : 'http://127.0.0.1'}:${servers[name].address().port}`;

console.log('| runtime | endless answer: exit, time, peak RSS | trickling body (1 B/s, timeoutMinutes 1): exit, time | untrusted certificate: exit, time |');
console.log('|---|---|---|---|');
for (const [runtime, env] of Object.entries(RUNTIMES)) {
  const big = await step(url('endless'), env);
  const slow = await step(url('trickle'), env);
  const cert = await step(url('untrusted'), env);
  console.log(`| ${runtime} | ${big.code}, ${big.seconds.toFixed(1)} s, ${big.peakMb.toFixed(0)} MB | ${slow.code}, ${slow.seconds.toFixed(1)} s | ${cert.code}, ${cert.seconds.toFixed(2)} s |`);
}
for (const server of Object.values(servers)) { server.closeAllConnections(); server.close(); }
rmSync(dir, { recursive: true, force: true });
