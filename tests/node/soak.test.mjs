// The fault soak at small size; `node scripts/soak.mjs 200` runs it large.
import { test } from './runner.mjs';
import assert from 'node:assert/strict';

import { soak } from './soak.mjs';

test('pipelines survive faults on every endpoint and leave nothing behind', async () => {
  const { retries, requests } = await soak({ count: 20, concurrency: 4, retryAfterSeconds: 0 });
  assert.ok(retries > 20, `faults were injected and retried (${retries} retries in ${requests} requests)`);
});
