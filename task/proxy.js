'use strict';
// The agent's web proxy (`config.sh --proxyurl`), for the wasm core. Node's fetch has no proxy
// support, so on an agent with a proxy the core's requests go through `proxiedFetch`: plain
// HTTP in absolute form, HTTPS through a CONNECT tunnel, with the agent's proxy credentials;
// URLs matching the bypass list go direct. The native binary reads the same variables itself
// (src/databricks/proxy.rs). scripts/build.sh copies this file next to index.js.

/** Largest answer read; the core refuses anything above 16 MB anyway. */
const MAX_ANSWER_BYTES = 17 * 1024 * 1024;

class ProxySettingError extends Error {}

/** The proxy the agent hands to tasks (`Agent.ProxyUrl` and friends), or null. */
function agentProxy(env) {
  const raw = (env.AGENT_PROXYURL || '').trim();
  if (!raw) return null;
  let url = null;
  try { url = new URL(raw); } catch (_) { /* reported below */ }
  if (!url || !['http:', 'https:'].includes(url.protocol) || !url.hostname) {
    // A value with credentials in it is not repeated: they may not be masked.
    const value = raw.includes('@') ? 'the value' : `\`${raw}\``;
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
  // Loaded here, not at start-up: most agents have no proxy.
  const https = require('https');
  return {
    host: url.hostname,
    port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
    transport: url.protocol === 'https:' ? https : require('http'),
    https,
    tls: require('tls'),
    authorization: username ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : null,
    // As the agent: patterns that are not regular expressions are skipped.
    bypass: bypass.flatMap((pattern) => { try { return [new RegExp(String(pattern), 'i')]; } catch (_) { return []; } }),
  };
}

/** A fetch for the core that goes through `proxy`, and straight to `direct` for bypassed URLs. */
function proxiedFetch(proxy, direct) {
  return async (input, init) => {
    const request = new Request(input, init);
    if (proxy.bypass.some((pattern) => pattern.test(request.url))) return direct(request);
    const body = ['GET', 'HEAD'].includes(request.method) ? null : Buffer.from(await request.arrayBuffer());
    const headers = {};
    request.headers.forEach((value, name) => { headers[name] = value; });
    if (body) headers['content-length'] = String(body.length);
    const answer = await send(proxy, new URL(request.url), request.method, headers, body, request.signal);
    const nullBody = [204, 205, 304].includes(answer.status);
    const response = new Response(nullBody ? null : answer.body, {
      status: answer.status, statusText: answer.statusText, headers: answer.headers,
    });
    Object.defineProperty(response, 'url', { value: request.url });
    return response;
  };
}

function send(proxy, target, method, headers, body, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    let current = null;
    // The tunnel's socket outlives its request: it is closed here, or it keeps Node running.
    let tunnelSocket = null;
    const done = () => { if (tunnelSocket) tunnelSocket.destroy(); };
    const fail = (reason) => { if (current) current.destroy(); done(); reject(reason); };
    signal.addEventListener('abort', () => fail(signal.reason), { once: true });
    const auth = proxy.authorization ? { 'proxy-authorization': proxy.authorization } : {};
    const collect = (answer) => {
      const chunks = [];
      let size = 0;
      answer.on('data', (chunk) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) fail(`the answer is larger than ${MAX_ANSWER_BYTES >> 20} MB`);
        else chunks.push(chunk);
      });
      answer.on('error', (error) => fail(error.message));
      answer.on('end', () => {
        if (answer.statusCode < 200 || answer.statusCode > 599) {
          return fail(`unexpected HTTP ${answer.statusCode} answer`);
        }
        const answerHeaders = new Headers();
        for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
          try { answerHeaders.append(answer.rawHeaders[i], answer.rawHeaders[i + 1]); } catch (_) { /* not a valid header */ }
        }
        done();
        resolve({ status: answer.statusCode, statusText: answer.statusMessage || '', headers: answerHeaders, body: Buffer.concat(chunks) });
      });
    };
    const viaProxy = { host: proxy.host, port: proxy.port, agent: false };
    const proxyFailed = (error) => fail(`the agent's proxy ${proxy.host}:${proxy.port}: ${error.message}`);
    if (target.protocol === 'http:') {
      current = proxy.transport.request({ ...viaProxy, method, path: target.href, headers: { ...headers, host: target.host, ...auth } }, collect);
      current.on('error', proxyFailed);
      current.end(body || undefined);
      return undefined;
    }
    const port = Number(target.port) || 443;
    const tunnel = proxy.transport.request({ ...viaProxy, method: 'CONNECT', path: `${target.hostname}:${port}`, headers: { host: `${target.hostname}:${port}`, ...auth } });
    current = tunnel;
    tunnel.on('error', proxyFailed);
    tunnel.on('connect', (answer, socket) => {
      tunnelSocket = socket;
      if (answer.statusCode !== 200) {
        socket.destroy();
        return fail(`the proxy refused the tunnel to ${target.hostname}:${port}: HTTP ${answer.statusCode} ${answer.statusMessage || ''}`.trim());
      }
      current = proxy.https.request({
        host: target.hostname, port, method, path: `${target.pathname}${target.search}`, agent: false,
        headers: { ...headers, host: target.host },
        createConnection: () => proxy.tls.connect({ socket, servername: target.hostname }),
      }, collect);
      current.on('error', (error) => fail(error.message));
      current.end(body || undefined);
      return undefined;
    });
    tunnel.end();
    return undefined;
  });
}

module.exports = { agentProxy, proxiedFetch, ProxySettingError };
