// Verdicts through the wasm core (`node index.js`): an answer that does not match the
// submission never passes, a step that gives up cancels its run, inputs read two ways are
// refused, parameters arrive as written, and the idempotency token is the specified one.
import { test } from './runner.mjs';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  BINARY_DIR, PASSING, REPO_PATH, SLOW,
  issues, parseCommand, pipelineEnv, repoWorkspace, request, runTask,
} from './harness.mjs';

const RUNS_GET = 'GET /api/2.2/jobs/runs/get';
const WITH_PARAM = '# Databricks notebook source\ndbutils.widgets.text("env", "dev")\ndbutils.notebook.exit("env=" + dbutils.widgets.get("env"))\n';

const repo = repoWorkspace({ unit: PASSING, other: PASSING, slow: SLOW, params: WITH_PARAM });
const notebookEnv = repo.notebookEnv;
const errors = (result) => issues(result, 'error');

/** The emulator's latest run, once it has ended (a cancel takes a moment to land), or as it is after 5 s. */
async function lastRunOnceOver() {
  let run;
  for (let i = 0; i < 100; i++) {
    run = (await repo.emulator.runs()).at(-1);
    if (run.life_cycle_state === 'TERMINATED') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return run;
}
const warnings = (result) => issues(result, 'warning');

test('an answer that does not match the submission never passes', async () => {
  const unit = `${REPO_PATH}/test/unit`;
  const other = `${REPO_PATH}/test/other`;
  const cases = [
    // rewrite of runs/get, notebooks, the notebook named, what is said about it
    ['drop-task', 'test/unit\ntest/other', other, 'does not list its task (other)'],
    ['drop-task', 'test/unit', unit, 'does not list its task (unit)'],
    ['rename-task', 'test/unit\ntest/other', other, 'does not list its task (other)'],
    ['duplicate-task', 'test/unit\ntest/other', other, 'lists its task (other) 2 times'],
    ['no-task-key', 'test/unit\ntest/other', other, 'was not submitted by this step (no task key)'],
    ['no-result', 'test/unit', unit, 'Databricks reported no result_state'],
  ];
  try {
    for (const [rewrite, notebookPaths, named, said] of cases) {
      const label = `${rewrite} with ${JSON.stringify(notebookPaths)}`;
      await repo.emulator.setFaults([`${RUNS_GET}=rewrite:${rewrite}`]);
      const reports = mkdtempSync(path.join(tmpdir(), 'azdo-verdicts-'));
      const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths, AGENT_TEMPDIRECTORY: reports }));
      const junitFile = readdirSync(reports).find((f) => f.endsWith('.xml'));
      const junit = junitFile ? readFileSync(path.join(reports, junitFile), 'utf8') : '';
      rmSync(reports, { recursive: true, force: true });
      assert.equal(result.code, 1, `${label}: ${result.stdout}`);
      assert.ok(errors(result).some((e) => e.startsWith(named) && e.includes(said)), `${label}: ${result.stdout}`);
      assert.equal(parseCommand(result.lines.at(-1)).properties.result, 'Failed', label);
      // The case's own element, up to its end (suites now sit between cases).
      const testCase = junit.split('<testcase ').slice(1).map((c) => c.split('</testcase>')[0]).find((c) => c.includes(`name="${named}"`));
      assert.ok(testCase?.includes('<failure'), `${label}: a failed test case for ${named}: ${junit}`);
    }
  } finally {
    await repo.emulator.setFaults([]);
  }
});

test('a step that gives up on its run cancels it', async () => {
  const cases = [
    ['400*1', 'INVALID_PARAMETER_VALUE'],
    ['403*1', 'PERMISSION_DENIED'],
    ['rewrite:not-json*1', 'reading the state of run'],
  ];
  try {
    for (const [fault, said] of cases) {
      await repo.emulator.setFaults([`${RUNS_GET}=${fault}`]);
      const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/slow' }));
      assert.equal(result.code, 3, `${fault}: ${result.stdout}`);
      assert.ok(warnings(result).some((w) => w.startsWith('Could not follow run') && w.includes('cancelling it')), `${fault}: ${result.stdout}`);
      const last = errors(result).at(-1);
      assert.ok(last.includes(said) && last.includes(' was cancelled'), `${fault}: ${last}`);
      const run = await lastRunOnceOver();
      assert.equal(run.result_state, 'CANCELED', `${fault}: ${JSON.stringify(run)}`);
    }
  } finally {
    await repo.emulator.setFaults([]);
  }
});

test('a submit without a clear answer leaves no run behind', async () => {
  const cases = [
    // The run starts, and the answer is a sign-in page: it is found and cancelled.
    ['rewrite:not-json*1', 1, 'was cancelled'],
    // A clear refusal: nothing started, nothing to look for.
    ['400*1', 0, 'INVALID_PARAMETER_VALUE'],
  ];
  try {
    for (const [fault, started, said] of cases) {
      const before = (await repo.emulator.runs()).length;
      await repo.emulator.setFaults([`POST /api/2.2/jobs/runs/submit=${fault}`]);
      const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/slow' }));
      assert.equal(result.code, 3, `${fault}: ${result.stdout}`);
      assert.ok(errors(result).at(-1).includes(said), `${fault}: ${result.stdout}`);
      const runs = await repo.emulator.runs();
      assert.equal(runs.length - before, started, `${fault}: ${JSON.stringify(runs)}`);
      if (started) {
        const run = await lastRunOnceOver();
        assert.equal(run.result_state, 'CANCELED', `${fault}: ${JSON.stringify(run)}`);
      }
    }
  } finally {
    await repo.emulator.setFaults([]);
  }
});

test('inputs read two ways are refused before any request', async () => {
  const cases = [
    [{ notebookPaths: '/' }, 'notebookPaths', 'workspace root'],
    [{ notebookPaths: 'test/unit\ntest/a\rb' }, 'notebookPaths', 'carriage return'],
    [{ parameters: 'env=ci\rdebug=1' }, 'parameters', 'carriage return'],
    [{ parameters: '{"env": "ci", "env": "prod"}' }, 'parameters', '`env` is set twice'],
    [{ clusterMode: 'new', newClusterJson: '{"spark_version": "s", "node_type_id": "n", "num_workers": 1, "spark_conf": {"a": "1", "a": "2"}}' }, 'newClusterJson', 'the key `a` twice'],
  ];
  for (const [inputs, input, needle] of cases) {
    const label = JSON.stringify(inputs);
    const before = await repo.emulator.requests();
    const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/unit', ...inputs }));
    assert.equal(result.code, 2, `${label}: ${result.stdout}`);
    const [error, ...more] = errors(result);
    assert.equal(more.length, 0, `${label}: one error: ${result.stdout}`);
    assert.ok(error.includes(`input \`${input}\``) && error.includes(needle), `${label}: ${error}`);
    assert.equal(await repo.emulator.requests(), before, `${label}: no request`);
  }
});

test('ignored inputs are warned about before any request', async () => {
  const cases = [
    [{ source: 'git' }, 'input `repoPath` is ignored with `source: git`'],
    [{ clusterMode: 'serverless' }, 'input `existingClusterId` is ignored with `clusterMode: serverless`'],
  ];
  const repoCases = [
    [{ mode: 'delete', branch: 'main' }, 'input `branch` is ignored with `mode: delete`'],
    [{ branch: 'main', onCommitMismatch: 'fail' }, 'input `onCommitMismatch` is ignored: there is no commit'],
  ];
  for (const [inputs, warning] of repoCases) {
    const result = await runTask('DatabricksRepoUpdate', pipelineEnv(repo.emulator, repo.project, { repoPath: `${REPO_PATH}-warned`, ...inputs }));
    assert.equal(result.code, 0, result.stdout);
    const warned = result.lines.findIndex((l) => l.startsWith('##vso[task.logissue type=warning]') && l.includes(warning));
    const first = result.lines.findIndex((l) => l.includes('Databricks workspace:'));
    assert.ok(warned >= 0 && warned < first, `${warning}: ${result.stdout}`);
  }
  for (const [inputs, warning] of cases) {
    const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/unit', ...inputs }));
    assert.equal(result.code, 0, result.stdout);
    const warned = result.lines.findIndex((l) => l.startsWith('##vso[task.logissue type=warning]') && l.includes(warning));
    const first = result.lines.findIndex((l) => l.includes('Databricks workspace:'));
    assert.ok(warned >= 0 && warned < first, `${warning}: ${result.stdout}`);
  }
});

test('parameters reach the notebook as written', async () => {
  for (const [parameters, seen] of [
    ['{"env": 1e20}', 'env=1e20'],
    ['{"env": 123456789012345678901234567890}', 'env=123456789012345678901234567890'],
    ['{"env": -0.50}', 'env=-0.50'],
  ]) {
    const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: 'test/params', parameters }));
    assert.equal(result.code, 0, result.stdout);
    const output = result.lines.find((l) => l.startsWith('##vso[task.setvariable variable=notebookOutput'));
    assert.deepEqual(JSON.parse(parseCommand(output).message), { [`${REPO_PATH}/test/params`]: seen }, parameters);
  }
});

// The same identity and value as tests/it/verdicts.rs (the native runtime) and the unit test in
// src/tasks/run_notebook_test/settings.rs. The step is then retried on the native runtime, as
// the fallback would: it gets the first run back instead of starting a second one.
test('the idempotency token is the specified one on both runtimes', async () => {
  const before = (await repo.emulator.runs()).length;
  const env = notebookEnv({
    SYSTEM_PLANID: 'plan-7', SYSTEM_JOBID: 'job-7', SYSTEM_JOBATTEMPT: '1', SYSTEM_TASKINSTANCEID: 'step-7',
    runName: 'ci 42', notebookPaths: '/Shared/pinned/ünïcode\n/Shared/pinned/unit',
  });
  const wasm = await runTask('DatabricksRunNotebookTest', env);
  const runs = await repo.emulator.runs();
  assert.equal(runs.length, before + 1);
  assert.equal(runs.at(-1).idempotency_token, 'azdo-60a930a1f41dcc65e27234baed567805');
  const native = await runTask('DatabricksRunNotebookTest', {
    ...env, DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${env.PATH}`,
  });
  assert.equal((await repo.emulator.runs()).length, before + 1, `no second run: ${native.stdout}`);
  const runId = (result) => result.lines.find((l) => l.startsWith('##vso[task.setvariable variable=runId;'));
  assert.equal(runId(native), runId(wasm));
});

test('the control routes need the token', async () => {
  for (const [method, route] of [['GET', '/emulator/runs'], ['GET', '/emulator/requests'], ['POST', '/emulator/requests/reset'], ['PUT', '/emulator/faults']]) {
    const anonymous = await request(repo.emulator.url + route, { method, body: method === 'PUT' ? '[]' : undefined });
    assert.equal(anonymous.status, 401, `${method} ${route}`);
    const guessed = await request(repo.emulator.url + route, { method, headers: { authorization: 'Bearer dapi-guess' }, body: method === 'PUT' ? '[]' : undefined });
    assert.equal(guessed.status, 403, `${method} ${route}`);
  }
  assert.ok(Array.isArray(await repo.emulator.runs()), 'with the token they answer');
});
