'use strict';
// The wasm core's side of the HTTP seam (src/host/http.rs): one request in, an answer or a
// typed failure out, over Node's own http/https/tls. Not `fetch`: it follows redirects, has no
// proxy support, times out only the headers, and loading it costs every step ~40 ms.
//
// The promises the core relies on, kept here as natively:
// - the whole attempt, body included, ends within `timeoutMs`;
// - the body is counted as it streams and the read stops past `maxBytes`;
// - a redirect is returned as it is, never followed (Node's http never follows one);
// - a failure rejects with `{ kind, message }`, the kind taken from Node's error codes.
// The core decides whether a request goes through the agent's web proxy and with which
// credentials (src/host/proxy.rs); when `spec.proxy` is set, this file only carries it out:
// plain HTTP in absolute form, HTTPS through a CONNECT tunnel.
// scripts/build.sh copies this file next to index.js.

// OpenSSL's verification failures as Node reports them: waiting does not fix any of them.
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'INVALID_CA',
  'CERT_CHAIN_TOO_LONG', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function kindOf(error) {
  const code = error && error.code;
  if (code === 'ENOTFOUND') return 'unknown-host';
  if (CERTIFICATE_CODES.has(code)) return 'certificate';
  return 'other';
}

function describe(error) {
  if (error && Array.isArray(error.errors) && error.errors.length) {
    return error.errors.map(describe).join('; ');
  }
  const message = (error && (error.message || error.code)) || String(error);
  return CERTIFICATE_CODES.has(error && error.code) && !message.includes(error.code)
    ? `${message} (${error.code})` : message;
}

/**
 * The request function handed to the core: `request(spec)` → `{ promise, abort }`.
 * spec: { method, url, headers: [[name, value]...], body: Uint8Array | null, timeoutMs, maxBytes,
 *         proxy: { host, port, secure, authorization: string | null } | null }.
 * The promise resolves to { status, headers: [[name, value]...], body: Uint8Array }.
 * After `abort()` (the core dropped the request) it never settles.
 */
function createRequest() {
  return (spec) => {
    let settle = null;
    const promise = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    const sockets = [];
    let timer = null;
    const finish = (outcome, value) => {
      if (!settle) return;
      const { resolve, reject } = settle;
      settle = null;
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      if (outcome === 'ok') resolve(value); else reject(value);
    };
    const failed = (kind, message) => finish('error', { kind, message });
    const abort = () => {
      // Settles nothing: the core has stopped listening.
      settle = null;
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
    };
    timer = setTimeout(() => failed('timed-out', `no complete answer within ${spec.timeoutMs / 1000}s`), spec.timeoutMs);
    try {
      start(spec, sockets, finish, failed);
    } catch (error) {
      failed(kindOf(error), describe(error));
    }
    return { promise, abort };
  };
}

// Node's modules are loaded on first use: a step that only talks plain HTTP never loads tls.
function start(spec, sockets, finish, failed) {
  const target = new URL(spec.url);
  const headers = {};
  for (const [name, value] of spec.headers) headers[name] = value;
  const body = spec.body ? Buffer.from(spec.body) : null;
  if (body) headers['content-length'] = String(body.length);
  const receive = (answer) => {
    const declared = Number(answer.headers['content-length']);
    if (declared > spec.maxBytes) return failed('too-large', `the answer is larger than ${spec.maxBytes >> 20} MB`);
    const chunks = [];
    let size = 0;
    answer.on('data', (chunk) => {
      size += chunk.length;
      if (size > spec.maxBytes) failed('too-large', `the answer is larger than ${spec.maxBytes >> 20} MB`);
      else chunks.push(chunk);
    });
    answer.on('error', (error) => failed(kindOf(error), describe(error)));
    answer.on('aborted', () => failed('other', 'the connection closed before the answer was complete'));
    answer.on('end', () => {
      const answerHeaders = [];
      for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
        answerHeaders.push([answer.rawHeaders[i].toLowerCase(), answer.rawHeaders[i + 1]]);
      }
      finish('ok', { status: answer.statusCode, headers: answerHeaders, body: new Uint8Array(Buffer.concat(chunks)) });
    });
    return undefined;
  };
  const send = (module, options) => {
    const request = module.request(options, receive);
    request.on('socket', (socket) => sockets.push(socket));
    request.on('error', (error) => failed(kindOf(error), describe(error)));
    request.end(body || undefined);
  };
  const secure = target.protocol === 'https:';
  const port = Number(target.port) || (secure ? 443 : 80);
  const proxy = spec.proxy;
  const path = `${target.pathname}${target.search}`;
  if (!proxy) {
    // A fresh connection per request (agent: false): nothing stays open to keep Node running
    // after the step, and a cancelled request closes its own socket.
    return send(require(secure ? 'https' : 'http'), {
      host: target.hostname.replace(/^\[(.*)\]$/, '$1'), port, method: spec.method, path, headers, agent: false,
    });
  }
  const auth = proxy.authorization ? { 'proxy-authorization': proxy.authorization } : {};
  const viaProxy = { host: proxy.host, port: proxy.port, agent: false };
  const proxyModule = require(proxy.secure ? 'https' : 'http');
  const proxyFailed = (error) => failed(kindOf(error), `the agent's proxy ${proxy.host}:${proxy.port}: ${describe(error)}`);
  if (!secure) {
    const request = proxyModule.request({ ...viaProxy, method: spec.method, path: target.href, headers: { ...headers, host: target.host, ...auth } }, receive);
    request.on('socket', (socket) => sockets.push(socket));
    request.on('error', proxyFailed);
    return request.end(body || undefined);
  }
  const tunnel = proxyModule.request({ ...viaProxy, method: 'CONNECT', path: `${target.hostname}:${port}`, headers: { host: `${target.hostname}:${port}`, ...auth } });
  tunnel.on('socket', (socket) => sockets.push(socket));
  tunnel.on('error', proxyFailed);
  tunnel.on('connect', (answer, socket) => {
    sockets.push(socket);
    if (answer.statusCode === 407) {
      return failed('proxy-authentication', `the proxy refused the tunnel to ${target.hostname}:${port}: HTTP 407 ${answer.statusMessage || ''}`.trim());
    }
    if (answer.statusCode !== 200) {
      return failed('other', `the proxy refused the tunnel to ${target.hostname}:${port}: HTTP ${answer.statusCode} ${answer.statusMessage || ''}`.trim());
    }
    return send(require('https'), {
      host: target.hostname, port, method: spec.method, path, headers, agent: false,
      createConnection: () => require('tls').connect({ socket, servername: target.hostname }),
    });
  });
  return tunnel.end();
}

module.exports = { createRequest };
