// `test`, `before` and `after` of node:test, the same on every Node the tasks run on (16, 20, 24).
// Node 18 and later: node:test's own. Node 16's runner (16.17+) never runs hooks declared at the
// top of a file: a file's tests would start before its workspace exists, and its emulator would
// keep the file's process alive for ever. There, each test first awaits the file's `before`
// hooks (run once, in order; if one fails, every test fails with its error), and the `after`
// hooks run once every test declared in the file has finished. Node 16 has no --test-timeout
// either: scripts/test.sh sets TEST_TIMEOUT_MS, each test's default timeout here.
import * as nodeTest from 'node:test';

const rootHooks = Number(process.versions.node.split('.')[0]) >= 18;

const befores = [];
const afters = [];
const declared = [];
let ready = null;
let closing = false;

function afterTheTests() {
  if (closing) return;
  closing = true;
  // Runs once the file has been evaluated: every test() call has been made by then.
  setImmediate(async () => {
    await Promise.allSettled(declared);
    for (const hook of afters) await hook();
  });
}

export const before = rootHooks ? nodeTest.before : (hook) => { befores.push(hook); };

export const after = rootHooks ? nodeTest.after : (hook) => { afters.push(hook); afterTheTests(); };

export const test = rootHooks ? nodeTest.test : (name, options, fn) => {
  if (typeof options === 'function') [options, fn] = [{}, options];
  if (process.env.TEST_TIMEOUT_MS) options = { timeout: Number(process.env.TEST_TIMEOUT_MS), ...options };
  const done = nodeTest.test(name, options, async (...args) => {
    ready = ready || (async () => { for (const hook of befores) await hook(); })();
    await ready;
    return fn(...args);
  });
  declared.push(done);
  return done;
};
