'use strict';
// Entry point the agent runs (`node index.js`, no arguments). scripts/build.sh copies this file
// into every task folder; the task's name comes from its task.json. It runs the wasm core with
// the step's environment, or the native binary when DATABRICKS_AZDO_RUNTIME=native is set or
// wasm cannot run here. No npm dependencies: the core speaks the agent's protocol itself.
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const { createRequest } = require('./http.js');

const TASK = require('./task.json').name;
const EXE = process.platform === 'win32' ? 'databricks-azdo.exe' : 'databricks-azdo';

// Everything the core prints goes through its own escaping (src/pipeline/escape.rs). These few
// lines are printed when the core cannot run, so they hold our own words and, of outside text
// (a path, an error message), only characters that need no escaping in a logging command.
function plain(text) {
  return String(text).replace(/[^A-Za-z0-9 _.,:;()'/\\@+=-]/g, '?');
}

function fail(message, code = 1) {
  process.stdout.write(`##vso[task.logissue type=error]${message}\n##vso[task.complete result=Failed]${message}\n`);
  process.exitCode = code;
}

function findNative() {
  const bundled = path.join(__dirname, 'bin', `${process.platform}-${process.arch}`, EXE);
  if (fs.existsSync(bundled)) {
    try { fs.chmodSync(bundled, 0o755); } catch (_) { /* read-only folder: try as it is */ }
    return bundled;
  }
  for (const dir of (process.env.PATH || '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, EXE);
    if (fs.existsSync(candidate)) return candidate;
  }
  return null;
}

function runNative() {
  const binary = findNative();
  if (!binary) {
    return fail(`${TASK}: the native databricks-azdo binary was not found (looked in ${plain(path.join(__dirname, 'bin'))} and on PATH). ` +
      'On a self-hosted agent, put databricks-azdo on the PATH of the agent service (build it with `cargo install --locked --path . --no-default-features` ' +
      'from the databricks-azdo repository), or remove DATABRICKS_AZDO_RUNTIME=native to use the built-in wasm core.');
  }
  const child = spawn(binary, ['task', TASK], { stdio: 'inherit', env: process.env });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => fail(`${TASK}: could not start ${plain(binary)}: ${plain(error.message)}`));
  child.on('exit', (code, signal) => { process.exitCode = code ?? (signal ? 130 : 1); });
}

function wasmProblem() {
  if (typeof WebAssembly !== 'object') return 'this Node.js has no WebAssembly';
  return null;
}

// A file an input points at, read only when it is a regular file of at most `maxBytes`: not a
// device (/dev/zero never ends), not a FIFO (it would wait for a writer). Throws with a reason.
function readBoundedFile(file, maxBytes) {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK || 0));
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new Error('it is not a regular file');
    if (stat.size > maxBytes) throw new Error(`it is larger than ${maxBytes} bytes`);
    // Sized by the file, one byte more to notice one that grew while it was read.
    const buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    for (let n; length < buffer.length && (n = fs.readSync(fd, buffer, length, buffer.length - length, null)) > 0;) length += n;
    if (length > stat.size) throw new Error('it changed while it was read');
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  } finally {
    fs.closeSync(fd);
  }
}

// A service principal's certificate (PEM: the certificate and its RSA key), for signing its
// client assertion with Node's own crypto. Errors never quote the text: it holds the key.
function loadCertificate(pem) {
  const crypto = require('crypto');
  let certificate;
  let key;
  try {
    certificate = new crypto.X509Certificate(pem);
  } catch (_) {
    throw new Error('it holds no readable certificate (-----BEGIN CERTIFICATE-----)');
  }
  try {
    key = crypto.createPrivateKey(pem);
  } catch (_) {
    throw new Error('it holds no readable private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error('its private key is not an RSA key; Microsoft Entra certificates use RSA');
  const digest = (algorithm) => crypto.createHash(algorithm).update(certificate.raw).digest();
  return {
    sha1: digest('sha1'),
    sha256: digest('sha256'),
    sign: (data) => crypto.sign('sha256', Buffer.from(data), key),
  };
}

async function runWasm() {
  let core;
  try {
    // Node 16 (V8 9.4) recompiles the whole module with TurboFan in the background as soon as
    // it loads, which delays the first request by ~20 ms on a 2-core agent; later Nodes tier up
    // only the hot functions. The core spends its time waiting on the network, not computing.
    if (Number(process.versions.node.split('.')[0]) < 18) require('v8').setFlagsFromString('--no-wasm-tier-up');
    core = require('./core/databricks_azdo.js');
  } catch (error) {
    // One line, and no command or log format of its own inside.
    process.stdout.write(`##[warning]The wasm core could not be loaded (${plain(error.message)}); using the native binary.\n`);
    return runNative();
  }
  const controller = new AbortController();
  const cancelled = new Promise((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => controller.abort());
  const io = {
    write: (line) => { process.stdout.write(line + '\n'); },
    writeErr: (line) => { process.stderr.write(line + '\n'); },
    readBytes: readBoundedFile,
    // Entries of a folder; lstat semantics: a symbolic link is neither a folder nor a file.
    fileSize: (file) => fs.statSync(file).size,
    listDir: (dir) => fs.readdirSync(dir, { withFileTypes: true })
      .map((entry) => ({ name: entry.name, dir: entry.isDirectory(), file: entry.isFile() })),
    request: createRequest(),
    certificate: loadCertificate,
    writeFile: (file, text) => fs.writeFileSync(file, text),
    cancelled,
  };
  try {
    process.exitCode = await core.runTask(TASK, { ...process.env }, io);
  } catch (error) {
    fail(`${TASK}: internal error: ${plain(error && error.message ? error.message : error)}`);
  }
}

const problem = wasmProblem();
if ((process.env.DATABRICKS_AZDO_RUNTIME || '').toLowerCase() === 'native') {
  runNative();
} else if (problem) {
  process.stdout.write(`##[warning]${problem}; using the native binary.\n`);
  runNative();
} else {
  runWasm();
}
