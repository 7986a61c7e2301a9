// Notebooks that hand back their own test report, through the task folders as the agent runs
// them (wasm, and native through index.js): each case in the published JUnit, the counts as
// output variables, failOnFailedTests, and a hostile report as a warning.
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// A JUnit reader we did not write (npm `junit2json`, a dev dependency): the Tests tab's view.
const { parse: parseJUnit } = await import(path.join(ROOT, 'scripts/node_modules/junit2json/dist/esm/index.js'));

import {
  BINARY_DIR, CLUSTER, PASSING, ROOT, makeProject, outputVariable, parseCommand, pipelineEnv, runTask, startEmulator,
} from './harness.mjs';

const UNITTEST = readFileSync(path.join(ROOT, 'examples/notebooks/test_income_unittest.py'), 'utf8');
const JSON_REPORT = readFileSync(path.join(ROOT, 'examples/notebooks/test_income_report.py'), 'utf8');
const PYTEST = readFileSync(path.join(ROOT, 'examples/notebooks/test_income_pytest.py'), 'utf8');
const PYTEST_TESTS = readFileSync(path.join(ROOT, 'examples/notebooks/income_rules/test_rules.py'), 'utf8');
const DRIFT = `# Databricks notebook source
dbutils.notebook.exit('<testsuite name="model"><testcase classname="model.Drift" name="test_stable" time="0.5"/><testcase classname="model.Drift" name="test_small_drift" time="1.25"><failure message="drift too large">Traceback</failure></testcase></testsuite>')
`;
const LAUGHS = `# Databricks notebook source
dbutils.notebook.exit('<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><testsuite><testcase name="&b;"/></testsuite>')
`;

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

let emulator;
let project;
before(async () => {
  emulator = await startEmulator();
  project = makeProject({
    test_income_unittest: UNITTEST, report: JSON_REPORT, drift: DRIFT, plain: PASSING, laughs: LAUGHS,
    test_income_pytest: PYTEST, 'income_rules/test_rules': PYTEST_TESTS,
  });
});
after(async () => {
  await emulator.stop();
  project.cleanup();
});

async function runNotebooks(runtimeEnv, notebookPaths, inputs = {}) {
  const reports = mkdtempSync(path.join(tmpdir(), 'azdo-reports-'));
  const env = pipelineEnv(emulator, project, {
    source: 'git', notebookPaths, existingClusterId: CLUSTER, AGENT_TEMPDIRECTORY: reports, ...runtimeEnv, ...inputs,
  });
  const result = await runTask('DatabricksRunNotebookTest', env);
  const publish = result.lines.find((l) => l.startsWith('##vso[results.publish'));
  const junit = publish ? readFileSync(parseCommand(publish).properties.resultFiles, 'utf8') : '';
  rmSync(reports, { recursive: true, force: true });
  return { result, junit };
}

/** `<testcase classname="…" name="…">` pairs of a JUnit document, in order. */
function testcases(junit) {
  return [...junit.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`);
}

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: each case a notebook reports reaches the Tests tab, and a failed one fails the step`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/test_income_unittest\ntest/report\ntest/drift\ntest/plain');
    assert.equal(result.code, 1, result.stdout);
    assert.deepEqual(testcases(junit), [
      'test/test_income_unittest.BucketIncome test_brackets_2027',
      'test/test_income_unittest.BucketIncome test_high',
      'test/test_income_unittest.BucketIncome test_low',
      'test/test_income_unittest.BucketIncome test_negative_is_refused',
      'test/report.income.yearly test_monthly_to_yearly',
      'test/report.income.yearly test_zero_income',
      'test/drift.model.Drift test_stable',
      'test/drift.model.Drift test_small_drift',
      'databricks test/plain',
    ]);
    assert.match(junit, /<testsuite name="test\/drift" tests="2" failures="1"/);
    // Read back by junit2json: every case the notebooks ran, with its outcome and counts.
    const read = await parseJUnit(junit);
    const outcome = (c) => (c.failure ? 'failed' : c.error ? 'error' : c.skipped ? 'skipped' : 'passed');
    const seen = read.testsuite.flatMap((suite) => suite.testcase.map((c) => `${suite.name} | ${c.classname} | ${c.name} | ${outcome(c)}`));
    assert.deepEqual(seen, [
      'test/test_income_unittest | test/test_income_unittest.BucketIncome | test_brackets_2027 | skipped',
      'test/test_income_unittest | test/test_income_unittest.BucketIncome | test_high | passed',
      'test/test_income_unittest | test/test_income_unittest.BucketIncome | test_low | passed',
      'test/test_income_unittest | test/test_income_unittest.BucketIncome | test_negative_is_refused | passed',
      'test/report | test/report.income.yearly | test_monthly_to_yearly | passed',
      'test/report | test/report.income.yearly | test_zero_income | passed',
      'test/drift | test/drift.model.Drift | test_stable | passed',
      'test/drift | test/drift.model.Drift | test_small_drift | failed',
      'test/plain | databricks | test/plain | passed',
    ]);
    const drift = read.testsuite.find((suite) => suite.name === 'test/drift');
    assert.equal(drift.tests, 2);
    assert.equal(drift.failures, 1);
    assert.equal(drift.testcase[1].failure[0].message, 'drift too large');
    assert.equal(drift.testcase[1].time, 1.25);
    assert.equal(outputVariable(result, 'testsPassed'), '7');
    assert.equal(outputVariable(result, 'testsFailed'), '1');
    assert.equal(outputVariable(result, 'testsSkipped'), '1');
    assert.match(result.stdout, /##\[group\]test\/drift: model\.Drift\.test_small_drift failed/);
  });

  test(`${runtime}: a pytest report written to a volume is read with the Files API`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/test_income_pytest');
    assert.equal(result.code, 0, result.stdout);
    const cases = testcases(junit);
    assert.equal(cases.length, 5, junit);
    assert.ok(cases.every((c) => c.startsWith('test/test_income_pytest.')), junit);
    assert.ok(cases.some((c) => c.endsWith(' test_yearly_is_twelve_months[2500]')), junit);
    assert.equal(outputVariable(result, 'testsPassed'), '5');
  });

  test(`${runtime}: failOnFailedTests false reports the counts and succeeds with issues`, async () => {
    const { result } = await runNotebooks(runtimeEnv, 'test/drift', { failOnFailedTests: 'false' });
    assert.equal(result.code, 0, result.stdout);
    const complete = parseCommand(result.lines.at(-1));
    assert.equal(complete.properties.result, 'SucceededWithIssues');
    assert.equal(outputVariable(result, 'testsFailed'), '1');
  });

  test(`${runtime}: git globs are matched in the agent's checkout`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/test_income_*\n!test/test_income_pytest', { BUILD_SOURCESDIRECTORY: project.dir });
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /notebookPaths: 1 notebook matched\n  test\/test_income_unittest\n/);
    assert.equal(testcases(junit).length, 4, junit);
    const nothing = await runNotebooks(runtimeEnv, 'spec/*', { BUILD_SOURCESDIRECTORY: project.dir });
    assert.equal(nothing.result.code, 2, nothing.result.stdout);
    assert.match(nothing.result.stdout, /line 1 \(`spec\/\*`\) matches no notebook under spec/);
  });

  test(`${runtime}: a hostile report is a warning and the notebook stays one case`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/laughs');
    assert.equal(result.code, 0, result.stdout);
    const warning = result.lines.find((l) => l.startsWith('##vso[task.logissue type=warning]'));
    assert.match(parseCommand(warning).message, /test\/laughs: its test report cannot be read: it declares a DTD/);
    assert.deepEqual(testcases(junit), ['databricks test/laughs']);
  });
}
