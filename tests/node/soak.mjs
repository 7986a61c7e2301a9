// Fault soak: whole pipelines (repo update → notebook test → repo delete) against an emulator
// that fails often, on the wasm and the native runtime. Used by soak.test.mjs (small) and by
// scripts/soak.mjs (large).
import assert from 'node:assert/strict';
import path from 'node:path';

import { BINARY_DIR, CLUSTER, FAILING, PASSING, TOKEN, makeProject, pipelineEnv, request, runTask, startEmulator } from './harness.mjs';

/** Faults on every endpoint: 30% 429 with Retry-After, 5xx, dropped connections, slow answers. */
export function soakFaults(retryAfterSeconds) {
  return [
    `*=429:${retryAfterSeconds}@0.3`,
    '*=503@0.08',
    '*=500@0.04',
    '*=drop-before@0.04',
    '*=drop-after@0.04',
    '*=delay:300@0.04',
  ];
}

async function pipeline(emulator, project, index) {
  const native = index % 2 === 1;
  const failing = index % 3 === 0;
  const repoPath = `/Repos/soak/p${index}`;
  const env = pipelineEnv(emulator, project, {
    repoPath,
    SYSTEM_JOBID: `job-${index}`,
    ...(native ? { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` } : {}),
  });
  const label = `pipeline ${index} (${native ? 'native' : 'wasm'})`;
  const update = await runTask('DatabricksRepoUpdate', env);
  assert.equal(update.code, 0, `${label}: repo update\n${update.stdout}`);
  const tests = await runTask('DatabricksRunNotebookTest', {
    ...env,
    INPUT_NOTEBOOKPATHS: failing ? 'test/unit\ntest/bad' : 'test/unit',
    INPUT_EXISTINGCLUSTERID: CLUSTER,
  });
  assert.equal(tests.code, failing ? 1 : 0, `${label}: notebook test\n${tests.stdout}`);
  const cleanup = await runTask('DatabricksRepoUpdate', { ...env, INPUT_MODE: 'delete' });
  assert.equal(cleanup.code, 0, `${label}: cleanup\n${cleanup.stdout}`);
  return [update, tests, cleanup].reduce((n, step) => n + (step.stdout.match(/retrying in/g) || []).length, 0);
}

/** Runs `count` pipelines, `concurrency` at a time; checks the workspace is left clean. */
export async function soak({ count, concurrency, retryAfterSeconds }) {
  const emulator = await startEmulator(soakFaults(retryAfterSeconds));
  const project = makeProject({ unit: PASSING, bad: FAILING });
  let retries = 0;
  try {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        // Not `retries += await ...`: that reads `retries` before the await, and the workers
        // running meanwhile would have their retries overwritten.
        const seen = await pipeline(emulator, project, next++);
        retries += seen;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await emulator.setFaults([]);
    const runs = await emulator.runs();
    assert.equal(runs.length, count, 'exactly one Databricks run per notebook test step');
    const unfinished = runs.filter((r) => !['TERMINATED', 'SKIPPED', 'INTERNAL_ERROR'].includes(r.life_cycle_state));
    assert.deepEqual(unfinished, [], 'no run left running');
    const repos = (await request(`${emulator.url}/api/2.0/repos?path_prefix=/Repos/soak`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })).json();
    assert.deepEqual(repos.repos ?? [], [], 'no repo left after the delete steps');
    const requests = await emulator.requests();
    return { count, retries, requests };
  } finally {
    await emulator.stop();
    project.cleanup();
  }
}
