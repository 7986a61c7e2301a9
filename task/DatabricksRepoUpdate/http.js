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
// Through the agent's web proxy (`config.sh --proxyurl`): plain HTTP in absolute form, HTTPS
// through a CONNECT tunnel, with the agent's proxy credentials; URLs on its bypass list go
// direct. scripts/build.sh copies this file next to index.js.

class ProxySettingError extends Error {}

/** The proxy the agent hands to tasks (`Agent.ProxyUrl` and friends), or null. */
function agentProxy(env) {
  const raw = (env.AGENT_PROXYURL || '').trim();
  if (!raw) return null;
  let url = null;
  try { url = new URL(raw); } catch (_) { /* reported below */ }
  if (!url || !['http:', 'https:'].includes(url.protocol) || !url.hostname) {
    // Repeated only when it cannot hold credentials (user:password@, ?token=, #...): those
    // may not be masked.
    const value = /^[A-Za-z0-9.:/[\]_-]*$/.test(raw) ? `\`${raw}\`` : 'the value';
    throw new ProxySettingError(`variable \`Agent.ProxyUrl\`: ${value} is not an http(s) URL\n` +
      "hint: the agent's proxy comes from `config.sh --proxyurl`; reconfigure it as http://host:port");
  }
  const decoded = (text) => { try { return decodeURIComponent(text); } catch (_) { return text; } };
  const username = env.AGENT_PROXYUSERNAME || decoded(url.username);
  const password = env.SECRET_AGENT_PROXYPASSWORD || env.AGENT_PROXYPASSWORD || decoded(url.password);
  let bypass = [];
  if ((env.AGENT_PROXYBYPASSLIST || '').trim()) {
    try {
      bypass = JSON.parse(env.AGENT_PROXYBYPASSLIST);
    } catch (_) { bypass = null; }
    if (!Array.isArray(bypass)) {
      throw new ProxySettingError('variable `Agent.ProxyBypassList`: is not a JSON array of regular expressions');
    }
  }
  return {
    host: url.hostname,
    port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
    secure: url.protocol === 'https:',
    authorization: username ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : null,
    // As the agent: patterns that are not regular expressions are skipped.
    bypass: bypass.flatMap((pattern) => { try { return [new RegExp(String(pattern), 'i')]; } catch (_) { return []; } }),
  };
}

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
 * spec: { method, url, headers: [[name, value]...], body: Uint8Array | null, timeoutMs, maxBytes }.
 * The promise resolves to { status, headers: [[name, value]...], body: Uint8Array }.
 * After `abort()` (the core dropped the request) it never settles.
 */
function createRequest(proxy) {
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
      start(spec, proxy, sockets, finish, failed);
    } catch (error) {
      failed(kindOf(error), describe(error));
    }
    return { promise, abort };
  };
}

// Node's modules are loaded on first use: a step that only talks plain HTTP never loads tls.
function start(spec, proxy, sockets, finish, failed) {
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
  const direct = !proxy || proxy.bypass.some((pattern) => pattern.test(target.href));
  const path = `${target.pathname}${target.search}`;
  if (direct) {
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

module.exports = { agentProxy, createRequest, ProxySettingError };
