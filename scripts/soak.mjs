#!/usr/bin/env node
// The fault soak at large size: N whole pipelines against a failing emulator, wasm and native.
// Usage: node scripts/soak.mjs [pipelines=200] [concurrency=4] [retryAfterSeconds=1]
// (after scripts/build.sh and cargo build)
import { soak } from '../tests/node/soak.mjs';

const [count = 200, concurrency = 4, retryAfterSeconds = 1] = process.argv.slice(2).map(Number);
const started = Date.now();
const result = await soak({ count, concurrency, retryAfterSeconds });
console.log(`${result.count} pipelines passed in ${((Date.now() - started) / 1000).toFixed(0)} s: ` +
  `${result.requests} API requests, ${result.retries} retries, one run per test step, nothing left behind`);
