// The README's pipeline, as the file it is (examples/income-model/azure-pipelines.yml), run on
// the example repository against the emulator, through the task folder as the agent runs it
// (the wasm core, and the native binary through index.js): the build step makes the wheel, the
// test step signs in through the Azure service connection the file names (workload identity
// federation, played by the emulator), uploads the wheel, runs every notebook its glob
// matches, and the Tests tab shows each case, read back by a JUnit reader we did not write.
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  BINARY_DIR, CLUSTER, ROOT, outputVariable, parseCommand, pipelineEnv, runTask, startEmulator,
} from './harness.mjs';
import { agentEnv, identities } from './identities.mjs';

// Readers we did not write (dev dependencies): the YAML of the pipeline, and the Tests tab's view.
const { parse: parseYaml } = (await import(path.join(ROOT, 'scripts/node_modules/yaml/dist/index.js'))).default;
const { parse: parseJUnit } = await import(path.join(ROOT, 'scripts/node_modules/junit2json/dist/esm/index.js'));

const EXAMPLE = path.join(ROOT, 'examples/income-model');
const PIPELINE = parseYaml(readFileSync(path.join(EXAMPLE, 'azure-pipelines.yml'), 'utf8'));
const TEST_STEP = PIPELINE.steps.find((step) => step.task === 'DatabricksRunNotebookTest@1');

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

function git(dir, ...args) {
  return execFileSync('git', ['-c', 'user.name=CI', '-c', 'user.email=ci@example.com', '-c', 'commit.gpgsign=false', ...args], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  }).trim();
}

let emulator;
let repository;
before(async () => {
  emulator = await startEmulator([], { identities: identities() });
  // The example repository, committed as a team would have it (no build output).
  const dir = mkdtempSync(path.join(tmpdir(), 'azdo-income-model-'));
  cpSync(EXAMPLE, dir, { recursive: true, filter: (source) => !/[\\/](dist|__pycache__)$/.test(source) });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'income model');
  repository = { dir, head: git(dir, 'rev-parse', 'HEAD') };
});
after(async () => {
  await emulator.stop();
  rmSync(repository.dir, { recursive: true, force: true });
});

/**
 * The test step's inputs as the agent hands them over: macros expanded, and the service
 * connection's name turned into its id, with the connection's variables.
 */
function stepInputs(variables) {
  const connections = identities().devops.serviceConnections;
  const inputs = {};
  for (const [name, value] of Object.entries(TEST_STEP.inputs)) {
    inputs[name] = String(value).replace(/\$\(([^)]+)\)/g, (macro, variable) => {
      assert.ok(variable in variables, `the pipeline uses $(${variable})`);
      return variables[variable];
    }).trim();
  }
  const connection = connections.find((c) => c.name === inputs.azureSubscription);
  assert.ok(connection, `the emulator plays the service connection ${inputs.azureSubscription}`);
  return { ...inputs, azureSubscription: connection.id };
}

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: the README's pipeline tests the wheel it built, each case in the Tests tab`, async () => {
    const staging = mkdtempSync(path.join(tmpdir(), 'azdo-staging-'));
    const agentTemp = mkdtempSync(path.join(tmpdir(), 'azdo-agent-temp-'));
    try {
      // The build step: `python -m build` in the file; the example's standard-library builder
      // makes the same wheel offline.
      execFileSync('python3', [path.join(repository.dir, 'build_wheel.py'), '--out', path.join(staging, 'dist')]);
      const inputs = stepInputs({ 'Build.ArtifactStagingDirectory': staging, DATABRICKS_CLUSTER_ID: CLUSTER });
      assert.equal(inputs.authMethod, 'azureServiceConnection');
      const env = pipelineEnv(emulator, repository, {
        SECRET_DATABRICKS_TOKEN: undefined, INPUT_DATABRICKSTOKEN: undefined,
        ...agentEnv('federation', emulator.url),
        ...inputs,
        BUILD_SOURCESDIRECTORY: repository.dir,
        AGENT_TEMPDIRECTORY: agentTemp,
        ...runtimeEnv,
      });
      const result = await runTask('DatabricksRunNotebookTest', env);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /Signed in with/);
      assert.match(result.stdout, /notebookPaths: 3 notebooks matched\n {2}tests\/test_features_unittest\n {2}tests\/test_report_json\n {2}tests\/test_rules_pytest\n/);
      assert.match(result.stdout, /Uploaded .*income_model-1\.0\.0-py3-none-any\.whl \([0-9.]+ KB\) to \/Volumes\/main\/ci\/artifacts\/azdo-[0-9a-f]{32}\/income_model-1\.0\.0-py3-none-any\.whl/);
      const publish = result.lines.find((l) => l.startsWith('##vso[results.publish'));
      const junit = readFileSync(parseCommand(publish).properties.resultFiles, 'utf8');
      const read = await parseJUnit(junit);
      const outcome = (c) => (c.skipped ? 'skipped' : c.failure || c.error ? 'failed' : 'passed');
      const seen = read.testsuite.flatMap((suite) => suite.testcase.map((c) => `${suite.name} | ${c.classname} | ${c.name} | ${outcome(c)}`));
      assert.deepEqual(seen, [
        'tests/test_features_unittest | tests/test_features_unittest.BucketIncome | test_brackets_2027 | skipped',
        'tests/test_features_unittest | tests/test_features_unittest.BucketIncome | test_high | passed',
        'tests/test_features_unittest | tests/test_features_unittest.BucketIncome | test_low | passed',
        'tests/test_features_unittest | tests/test_features_unittest.BucketIncome | test_negative_is_refused | passed',
        'tests/test_report_json | tests/test_report_json.income.yearly | test_monthly_to_yearly | passed',
        'tests/test_report_json | tests/test_report_json.income.yearly | test_zero_income | passed',
        'tests/test_rules_pytest | tests/test_rules_pytest.tests.rules.test_yearly | test_yearly | passed',
        'tests/test_rules_pytest | tests/test_rules_pytest.tests.rules.test_yearly | test_negative_income_is_refused | passed',
        'tests/test_rules_pytest | tests/test_rules_pytest.tests.rules.test_yearly | test_yearly_is_twelve_months[0] | passed',
        'tests/test_rules_pytest | tests/test_rules_pytest.tests.rules.test_yearly | test_yearly_is_twelve_months[1] | passed',
        'tests/test_rules_pytest | tests/test_rules_pytest.tests.rules.test_yearly | test_yearly_is_twelve_months[2500] | passed',
      ]);
      assert.equal(outputVariable(result, 'testsPassed'), '10');
      assert.equal(outputVariable(result, 'testsSkipped'), '1');
      // The notebooks imported the package from the wheel, which is gone from the volume now.
      const runs = await emulator.runs();
      const installed = runs.at(-1).tasks.map((t) => t.libraries.map((l) => `${l.library.split('/').pop()} ${l.installed}`).join(', '));
      assert.deepEqual([...new Set(installed)], ['income_model-1.0.0-py3-none-any.whl true, pypi: pytest==8.3.4 false']);
    } finally {
      rmSync(staging, { recursive: true, force: true });
      rmSync(agentTemp, { recursive: true, force: true });
    }
  });
}
