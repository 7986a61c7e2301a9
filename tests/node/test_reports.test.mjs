// Notebooks that hand back their own test report, through the task folders as the agent runs
// them (wasm, and native through index.js): each case in the published JUnit, the counts as
// output variables, failOnFailedTests, a report not read whole failing its notebook, a report file in the
// workspace, and the README's pipeline (a glob of pytest and unittest notebooks testing the
// wheel the pipeline built).
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// A JUnit reader we did not write (npm `junit2json`, a dev dependency): the Tests tab's view.
const { parse: parseJUnit } = await import(path.join(ROOT, 'scripts/node_modules/junit2json/dist/esm/index.js'));

import {
  BINARY_DIR, CLUSTER, PASSING, ROOT, makeProject, outputVariable, parseCommand, pipelineEnv, runTask, startEmulator,
} from './harness.mjs';

const EXAMPLE = path.join(ROOT, 'examples/income-model');
const example = (file) => readFileSync(path.join(EXAMPLE, file), 'utf8');
const UNITTEST = example('tests/test_features_unittest.py');
const JUNIT_REPORT = example('tests/junit_report.py');
const JSON_REPORT = example('tests/test_report_json.py');
const PYTEST = example('tests/test_rules_pytest.py');
const PYTEST_TESTS = example('tests/rules/test_yearly.py');
// Fails on its first attempt, passes on the next (a mark in a volume survives between them).
const FLAKY = `# Databricks notebook source
import os
mark = "/Volumes/main/ci/state/" + dbutils.widgets.get("mark")
os.makedirs(os.path.dirname(mark), exist_ok=True)
if not os.path.exists(mark):
    open(mark, "w").write("attempt 1")
    raise ConnectionResetError("warehouse connection reset by peer")
dbutils.notebook.exit("passed on a retry")
`;
const DRIFT = `# Databricks notebook source
dbutils.notebook.exit('<testsuite name="model"><testcase classname="model.Drift" name="test_stable" time="0.5"/><testcase classname="model.Drift" name="test_small_drift" time="1.25"><failure message="drift too large">Traceback</failure></testcase></testsuite>')
`;
const LAUGHS = `# Databricks notebook source
dbutils.notebook.exit('<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><testsuite><testcase name="&b;"/></testsuite>')
`;

// Reports that cannot be read whole: cut at Databricks' 5 MB, a key that could say a case
// failed, a report file that is not UTF-8. And Python's NaN durations, which can be read.
const CUT = `# Databricks notebook source
dbutils.notebook.exit('<testsuite>' + '<testcase name="ok"/>' * 300000 + '<testcase name="x"><failure/></testcase></testsuite>')
`;
const UNKNOWN_KEY = `# Databricks notebook source
dbutils.notebook.exit('{"suites": [{"name": "s", "cases": [{"name": "x", "status": "passed", "outcome": "failed"}]}]}')
`;
const LATIN1 = `# Databricks notebook source
import os, uuid
path = "/Volumes/main/ci/reports/" + uuid.uuid4().hex + ".xml"
os.makedirs(os.path.dirname(path), exist_ok=True)
open(path, "wb").write(b'<testsuite name="caf\\xe9"><testcase name="x"/></testsuite>')
dbutils.notebook.exit('{"junit": "%s"}' % path)
`;
const NAN = `# Databricks notebook source
import json
dbutils.notebook.exit(json.dumps({"suites": [{"name": "s", "cases": [
    {"name": "a", "status": "passed", "duration": float("nan")},
    {"name": "b", "status": "failed", "duration": float("inf"), "message": "off"}]}]}))
`;

// Writes its JUnit report to a workspace file, as a notebook does through /Workspace/...
const WORKSPACE_REPORT = `# Databricks notebook source
import json, os, uuid
report = "/Workspace/Shared/reports/" + uuid.uuid4().hex + ".xml"
os.makedirs(os.path.dirname(report), exist_ok=True)
with open(report, "w") as handle:
    handle.write('<testsuite name="ws"><testcase classname="ws.Report" name="test_read"/><testcase classname="ws.Report" name="test_failed"><failure message="read from the workspace">trace</failure></testcase></testsuite>')
dbutils.notebook.exit(json.dumps({"junit": report}))
`;

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

let emulator;
let project;
let dist;
before(async () => {
  emulator = await startEmulator();
  project = makeProject({
    test_features_unittest: UNITTEST, junit_report: JUNIT_REPORT, report: JSON_REPORT, drift: DRIFT, plain: PASSING,
    laughs: LAUGHS, test_rules_pytest: PYTEST, 'rules/test_yearly': PYTEST_TESTS, flaky: FLAKY,
    workspace_report: WORKSPACE_REPORT, cut: CUT, unknown_key: UNKNOWN_KEY, latin1: LATIN1, nan: NAN,
  });
  // The pipeline's build step: the example's wheel, which the example notebooks import.
  dist = mkdtempSync(path.join(tmpdir(), 'azdo-dist-'));
  execFileSync('python3', [path.join(EXAMPLE, 'build_wheel.py'), '--out', dist]);
});
after(async () => {
  await emulator.stop();
  project.cleanup();
  rmSync(dist, { recursive: true, force: true });
});

async function runNotebooks(runtimeEnv, notebookPaths, inputs = {}) {
  const reports = mkdtempSync(path.join(tmpdir(), 'azdo-reports-'));
  const env = pipelineEnv(emulator, project, {
    source: 'git',
    notebookPaths,
    existingClusterId: CLUSTER,
    libraries: `${dist}/*.whl`,
    libraryUploadPath: '/Volumes/main/ci/artifacts',
    AGENT_TEMPDIRECTORY: reports,
    ...runtimeEnv,
    ...inputs,
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
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/test_features_unittest\ntest/report\ntest/drift\ntest/plain');
    assert.equal(result.code, 1, result.stdout);
    assert.deepEqual(testcases(junit), [
      'test/test_features_unittest.BucketIncome test_brackets_2027',
      'test/test_features_unittest.BucketIncome test_high',
      'test/test_features_unittest.BucketIncome test_low',
      'test/test_features_unittest.BucketIncome test_negative_is_refused',
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
      'test/test_features_unittest | test/test_features_unittest.BucketIncome | test_brackets_2027 | skipped',
      'test/test_features_unittest | test/test_features_unittest.BucketIncome | test_high | passed',
      'test/test_features_unittest | test/test_features_unittest.BucketIncome | test_low | passed',
      'test/test_features_unittest | test/test_features_unittest.BucketIncome | test_negative_is_refused | passed',
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
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/test_rules_pytest');
    assert.equal(result.code, 0, result.stdout);
    const cases = testcases(junit);
    assert.equal(cases.length, 5, junit);
    assert.ok(cases.every((c) => c.startsWith('test/test_rules_pytest.')), junit);
    assert.ok(cases.some((c) => c.endsWith(' test_yearly_is_twelve_months[2500]')), junit);
    assert.equal(outputVariable(result, 'testsPassed'), '5');
  });

  test(`${runtime}: a report written to a workspace file is read with the workspace export API`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/workspace_report');
    assert.equal(result.code, 1, result.stdout);
    assert.deepEqual(testcases(junit), [
      'test/workspace_report.ws.Report test_read',
      'test/workspace_report.ws.Report test_failed',
    ]);
    const read = await parseJUnit(junit);
    assert.equal(read.testsuite[0].testcase[1].failure[0].message, 'read from the workspace');
    assert.equal(outputVariable(result, 'testsPassed'), '1');
    assert.equal(outputVariable(result, 'testsFailed'), '1');
    assert.ok(!result.lines.some((l) => l.startsWith('##vso[task.logissue type=warning]')), result.stdout);
  });

  test(`${runtime}: failOnFailedTests false reports the counts and succeeds with issues`, async () => {
    const { result } = await runNotebooks(runtimeEnv, 'test/drift', { failOnFailedTests: 'false' });
    assert.equal(result.code, 0, result.stdout);
    const complete = parseCommand(result.lines.at(-1));
    assert.equal(complete.properties.result, 'SucceededWithIssues');
    assert.equal(outputVariable(result, 'testsFailed'), '1');
  });

  test(`${runtime}: git globs are matched in the agent's checkout`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/test_*\n!test/test_rules_pytest', { BUILD_SOURCESDIRECTORY: project.dir });
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /notebookPaths: 1 notebook matched\n  test\/test_features_unittest\n/);
    assert.equal(testcases(junit).length, 4, junit);
    const nothing = await runNotebooks(runtimeEnv, 'spec/*', { BUILD_SOURCESDIRECTORY: project.dir });
    assert.equal(nothing.result.code, 2, nothing.result.stdout);
    assert.match(nothing.result.stdout, /line 1 \(`spec\/\*`\) matches no notebook under spec/);
  });

  test(`${runtime}: a report not read whole fails its notebook, in each shape`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/laughs\ntest/cut\ntest/unknown_key\ntest/latin1');
    assert.equal(result.code, 1, result.stdout);
    const errors = result.lines.filter((l) => l.startsWith('##vso[task.logissue type=error]')).map((l) => parseCommand(l).message);
    for (const [notebook, why] of [
      ['laughs', /its test report cannot be read: it declares a DTD/],
      ['cut', /cut by Databricks, which keeps at most 5 MB/],
      ['unknown_key', /its test report cannot be read: .*outcome/],
      ['latin1', /is not UTF-8 text/],
    ]) {
      const error = errors.find((e) => e.startsWith(`test/${notebook} ended SUCCESS, but does not pass: what it handed back could not be read whole`));
      assert.ok(error, `${notebook}: ${result.stdout.slice(0, 4000)}`);
      assert.match(error, why, notebook);
    }
    assert.deepEqual(testcases(junit), ['databricks test/laughs', 'databricks test/cut', 'databricks test/unknown_key', 'databricks test/latin1']);
    assert.equal(outputVariable(result, 'testsFailed'), '4');
    assert.equal(outputVariable(result, 'testsPassed'), '0');
  });

  test(`${runtime}: a notebook whose output cannot be fetched does not pass`, async () => {
    const refusing = await startEmulator(['GET /api/2.2/jobs/runs/get-output=403']);
    try {
      const result = await runTask('DatabricksRunNotebookTest', pipelineEnv(refusing, project, {
        source: 'git', notebookPaths: 'test/plain', existingClusterId: CLUSTER, ...runtimeEnv,
      }));
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stdout, /test\/plain ended SUCCESS, but does not pass: what it handed back could not be read whole \(its output could not be read/);
    } finally {
      await refusing.stop();
    }
  });

  test(`${runtime}: NaN durations from Python's json.dumps are read, and a failed case fails the step`, async () => {
    const { result } = await runNotebooks(runtimeEnv, 'test/nan');
    assert.equal(result.code, 1, result.stdout);
    assert.equal(outputVariable(result, 'testsPassed'), '1');
    assert.equal(outputVariable(result, 'testsFailed'), '1');
  });

  test(`${runtime}: the README's pipeline tests the wheel it built with a glob of pytest and unittest notebooks`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/**/test_*', {
      BUILD_SOURCESDIRECTORY: project.dir, retries: '1', retryIntervalSeconds: '0', maxParallel: '2',
    });
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /notebookPaths: 2 notebooks matched\n  test\/test_features_unittest\n  test\/test_rules_pytest\n/);
    assert.match(result.stdout, /Uploaded .*income_model-1\.0\.0-py3-none-any\.whl \([0-9.]+ KB\) to \/Volumes\/main\/ci\/artifacts\/azdo-[0-9a-f]{32}\//);
    // Read back by junit2json: each case the notebooks ran against the wheel.
    const read = await parseJUnit(junit);
    const seen = read.testsuite.flatMap((suite) => suite.testcase.map((c) => `${suite.name} | ${c.name} | ${c.skipped ? 'skipped' : c.failure || c.error ? 'failed' : 'passed'}`));
    assert.deepEqual(seen, [
      'test/test_features_unittest | test_brackets_2027 | skipped',
      'test/test_features_unittest | test_high | passed',
      'test/test_features_unittest | test_low | passed',
      'test/test_features_unittest | test_negative_is_refused | passed',
      'test/test_rules_pytest | test_yearly | passed',
      'test/test_rules_pytest | test_negative_income_is_refused | passed',
      'test/test_rules_pytest | test_yearly_is_twelve_months[0] | passed',
      'test/test_rules_pytest | test_yearly_is_twelve_months[1] | passed',
      'test/test_rules_pytest | test_yearly_is_twelve_months[2500] | passed',
    ]);
    assert.equal(outputVariable(result, 'testsPassed'), '8');
    assert.equal(outputVariable(result, 'testsSkipped'), '1');
  });

  test(`${runtime}: a notebook that passes on a retry is flaky in the Tests tab, never silently`, async () => {
    const { result, junit } = await runNotebooks(runtimeEnv, 'test/flaky', {
      retries: '2', retryIntervalSeconds: '0', parameters: `mark=${runtime}-${Date.now()}`,
    });
    assert.equal(result.code, 0, result.stdout);
    const complete = parseCommand(result.lines.at(-1));
    assert.equal(complete.properties.result, 'SucceededWithIssues');
    assert.match(complete.message, /1 passed only on a retry \(flaky\)/);
    const read = await parseJUnit(junit);
    const flaky = read.testsuite[0].testcase[0];
    assert.equal(flaky.failure, undefined);
    assert.match(flaky.flakyFailure[0].message, /^passed on attempt 2 \(flaky\); attempt 1 failed: ConnectionResetError: warehouse connection reset by peer/);
  });
}
