#!/usr/bin/env node
// Cold start of a task: from spawning `node index.js` (as the agent does) to its first HTTP
// request, for the wasm core and the native binary, and for the native binary started directly
// (`databricks-azdo task ...`, without Node). A benchmark, not a test.
// Usage: node scripts/bench-startup.mjs [runs] [runtimes]   (after scripts/build.sh and cargo build --release)
//   runtimes: a comma-separated subset of wasm,native,direct,version (default: the first three;
//   version: `databricks-azdo --version`, start to exit)
//   NATIVE_DIR=DIR: the folder of the native binary (default: target/release), e.g. the agents'
//   build without the emulator: cargo build --release --no-default-features --target-dir target/fenced
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[2] || 15);
const native = process.env.NATIVE_DIR ? path.resolve(process.env.NATIVE_DIR) : path.join(root, 'target', 'release');
const runtimes = (process.argv[3] || 'wasm,native,direct').split(',');

function once(runtime, url) {
  return new Promise((resolve, reject) => {
    const env = {
      PATH: runtime === 'native' ? `${native}${path.delimiter}${process.env.PATH}` : process.env.PATH,
      DATABRICKS_AZDO_RUNTIME: runtime === 'native' ? 'native' : '',
      INPUT_DATABRICKSHOST: url, INPUT_DATABRICKSTOKEN: 'bench-token',
      INPUT_NOTEBOOKPATHS: '/Shared/bench', INPUT_EXISTINGCLUSTERID: '0101-000000-bench',
    };
    const started = process.hrtime.bigint();
    if (runtime === 'version') { // the binary's start and exit, nothing else: `--version`
      const child = spawn(path.join(native, 'databricks-azdo'), ['--version'], { env, stdio: 'ignore' });
      child.once('exit', () => resolve(Number(process.hrtime.bigint() - started) / 1e6));
      child.once('error', reject);
      return;
    }
    const [program, args] = runtime === 'direct'
      ? [path.join(native, 'databricks-azdo'), ['task', 'DatabricksRunNotebookTest']]
      : [process.execPath, [path.join(root, 'task', 'DatabricksRunNotebookTest', 'index.js')]];
    const child = spawn(program, args, { env, stdio: 'ignore' });
    server.once('request', (_req, res) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error_code":"BENCH","message":"stop"}');
      child.once('exit', () => resolve(ms));
    });
    child.once('error', reject);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}`;
const results = {};
for (const runtime of runtimes) {
  const times = [];
  for (let i = 0; i < runs; i++) times.push(await once(runtime, url));
  results[runtime] = { median: median(times), min: Math.min(...times), max: Math.max(...times) };
}
server.close();
console.log(`cold start to first request (${runs} runs each, node ${process.version})`);
for (const [runtime, r] of Object.entries(results)) {
  console.log(`  ${runtime.padEnd(6)} median ${r.median.toFixed(1)} ms  (min ${r.min.toFixed(1)}, max ${r.max.toFixed(1)})`);
}
console.log('  (wasm and native: `node index.js`; direct: the binary without Node; version: `--version` to its exit)');
if (results.wasm && results.native) {
  console.log(`  wasm / native through index.js: ${(results.wasm.median / results.native.median).toFixed(2)}x`);
}
