// The packaged .vsix, unpacked the way an agent downloads a task: every task folder complete,
// with no node_modules, and runnable on its own against the emulator.
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { CLUSTER, PASSING, ROOT, makeProject, outputVariable, pipelineEnv, runTask, startEmulator } from './harness.mjs';

const version = JSON.parse(readFileSync(path.join(ROOT, 'vss-extension.json'), 'utf8')).version;
let unpacked;
let emulator;
let project;

before(async () => {
  const dist = path.join(ROOT, 'dist');
  const vsix = readdirSync(dist).find((f) => f.endsWith(`-${version}.vsix`));
  assert.ok(vsix, `scripts/package.sh made dist/*-${version}.vsix`);
  const size = statSync(path.join(dist, vsix)).size;
  assert.ok(size <= 1.5 * 1024 * 1024, `the package is ${size} bytes; the budget is 1.5 MB`);
  unpacked = mkdtempSync(path.join(tmpdir(), 'azdo-vsix-'));
  const unzip = spawnSync('python3', ['-m', 'zipfile', '-e', path.join(dist, vsix), unpacked], { encoding: 'utf8' });
  assert.equal(unzip.status, 0, unzip.stderr);
  emulator = await startEmulator();
  project = makeProject({ unit: PASSING });
});

after(async () => {
  await emulator.stop();
  project.cleanup();
  rmSync(unpacked, { recursive: true, force: true });
});

for (const task of ['DatabricksRepoUpdate', 'DatabricksRunNotebookTest']) {
  test(`${task} is complete in the package`, () => {
    const folder = path.join(unpacked, 'task', task);
    for (const file of ['task.json', 'index.js', 'http.js', 'icon.png', 'core/databricks_azdo.js', 'core/databricks_azdo_bg.wasm']) {
      assert.ok(existsSync(path.join(folder, file)), `${task}/${file}`);
    }
    assert.ok(!existsSync(path.join(folder, 'node_modules')), 'no node_modules in a task folder');
    const manifest = JSON.parse(readFileSync(path.join(folder, 'task.json'), 'utf8'));
    assert.equal(manifest.name, task);
    assert.deepEqual(Object.values(manifest.version).join('.'), version);
  });
}

test('the unpacked task folders run the demo scenario', async () => {
  const folder = (task) => path.join(unpacked, 'task', task);
  const env = pipelineEnv(emulator, project, { repoPath: '/Repos/ci/from-vsix' });
  const update = await runTask('DatabricksRepoUpdate', env, { folder: folder('DatabricksRepoUpdate') });
  assert.equal(update.code, 0, update.stdout);
  assert.equal(outputVariable(update, 'headCommitId'), project.head);
  const tests = await runTask('DatabricksRunNotebookTest', { ...env, INPUT_NOTEBOOKPATHS: 'test/unit', INPUT_EXISTINGCLUSTERID: CLUSTER }, {
    folder: folder('DatabricksRunNotebookTest'),
  });
  assert.equal(tests.code, 0, tests.stdout);
  assert.equal(outputVariable(tests, 'resultState'), 'SUCCESS');
});
