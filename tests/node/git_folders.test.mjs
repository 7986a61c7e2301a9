// Git folders through `node index.js`, on both runtimes (the wasm core, and the native binary
// index.js runs): workspaces with the Git CLI show them as DIRECTORY in get-status, older ones
// as REPO; the repos API by object id decides in both.
import { test, before, after } from './runner.mjs';
import assert from 'node:assert/strict';
import path from 'node:path';

import {
  BINARY_DIR, CLUSTER, PASSING, issues, makeProject, outputVariable, pipelineEnv, runTask, startEmulator,
} from './harness.mjs';

const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

const FORMS = [
  { name: 'DIRECTORY (Git CLI, the default)', legacyGitFolders: false, objectType: 'DIRECTORY' },
  { name: 'REPO (before the Git CLI)', legacyGitFolders: true, objectType: 'REPO' },
];

const workspaces = [];
let project;
before(async () => {
  project = makeProject({ unit: PASSING });
  for (const form of FORMS) workspaces.push({ form, emulator: await startEmulator([], { legacyGitFolders: form.legacyGitFolders }) });
});
after(async () => {
  await Promise.all(workspaces.map((w) => w.emulator.stop()));
  project.cleanup();
});

const repoChanges = (counts) => Object.entries(counts)
  .filter(([endpoint]) => /^(POST \/api\/2\.0\/repos$|PATCH \/api\/2\.0\/repos|DELETE \/api\/2\.0\/repos)/.test(endpoint))
  .reduce((sum, [, n]) => sum + n, 0);

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) for (const [index, form] of FORMS.entries()) {
  test(`${runtime}, ${form.name}: create, update again, run, delete; a plain folder refused`, async () => {
    const { emulator } = workspaces[index];
    for (const repoPath of [`/Repos/ci/node-git-folder-${runtime}`, `/Workspace/Users/emulator@example.com/node-git-folder-${runtime}`]) {
      const env = (inputs) => pipelineEnv(emulator, project, { repoPath, ...runtimeEnv, ...inputs });
      const created = await runTask('DatabricksRepoUpdate', env());
      assert.equal(created.code, 0, created.stdout);
      const status = await emulator.call(`/api/2.0/workspace/get-status?path=${encodeURIComponent(repoPath)}`);
      assert.equal(status.json().object_type, form.objectType);

      const again = await runTask('DatabricksRepoUpdate', env());
      assert.equal(again.code, 0, again.stdout);
      assert.match(again.stdout, /Found repo /);
      assert.equal(outputVariable(again, 'headCommitId'), project.head);

      const tests = await runTask('DatabricksRunNotebookTest', env({ notebookPaths: 'test/*', existingClusterId: CLUSTER }));
      assert.equal(tests.code, 0, tests.stdout);
      assert.equal(outputVariable(tests, 'testsPassed'), '1');

      const deleted = await runTask('DatabricksRepoUpdate', env({ mode: 'delete' }));
      assert.equal(deleted.code, 0, deleted.stdout);
      assert.match(deleted.stdout, /Deleted repo /);
      assert.equal((await emulator.call(`/api/2.0/workspace/get-status?path=${encodeURIComponent(repoPath)}`)).status, 404);
    }

    const plain = `/Repos/ci/node-plain-folder-${runtime}`;
    const made = await emulator.call('/api/2.0/workspace/mkdirs', { method: 'POST', body: JSON.stringify({ path: plain }) });
    assert.equal(made.status, 200, made.text);
    const before = repoChanges(await emulator.requestCounts());
    for (const mode of ['createOrUpdate', 'update', 'delete']) {
      const refused = await runTask('DatabricksRepoUpdate', pipelineEnv(emulator, project, { repoPath: plain, mode, ...runtimeEnv }));
      assert.equal(refused.code, 2, refused.stdout);
      assert.deepEqual(issues(refused, 'error'), [
        `input \`repoPath\`: ${plain} is a folder, not a Git folder (the repos API does not know it); nothing was changed\n`
          + 'hint: choose a path where nothing exists yet, or the path of an existing Git folder',
      ]);
    }
    assert.equal(repoChanges(await emulator.requestCounts()), before, 'nothing was changed');
  });
}

for (const [runtime, runtimeEnv] of Object.entries(RUNTIMES)) {
  test(`${runtime}: sparse checkout set at create, and refused for a Git folder created without it`, async () => {
    const { emulator } = workspaces[0];
    const env = (inputs) => pipelineEnv(emulator, project, { ...runtimeEnv, ...inputs });
    const sparse = await runTask('DatabricksRepoUpdate', env({ repoPath: `/Repos/ci/node-sparse-${runtime}`, sparseCheckout: 'test\r\n' }));
    assert.equal(sparse.code, 0, sparse.stdout);
    assert.match(sparse.stdout, /Sparse checkout: test\n/);

    const full = `/Repos/ci/node-full-${runtime}`;
    assert.equal((await runTask('DatabricksRepoUpdate', env({ repoPath: full }))).code, 0);
    const refused = await runTask('DatabricksRepoUpdate', env({ repoPath: full, sparseCheckout: 'test' }));
    assert.equal(refused.code, 2, refused.stdout);
    assert.match(issues(refused, 'error')[0], new RegExp(`input \`sparseCheckout\`: ${full} was created without sparse checkout`));

    // Lines that are no cone pattern, and Git folder paths Databricks would refuse: before any request.
    await emulator.resetRequests();
    for (const [inputs, said] of [
      [{ repoPath: full, sparseCheckout: 'test\r\nsrc/*' }, /^input `sparseCheckout`: line 2 \(`src\/\*`\) is not a cone pattern/],
      [{ repoPath: full, sparseCheckout: '/abs' }, /^input `sparseCheckout`: line 1 \(`\/abs`\) is absolute/],
      [{ repoPath: '/Repos/ci/too/deep' }, /^input `repoPath`: `\/Repos\/ci\/too\/deep` is not a Git folder path/],
      [{ repoPath: '/Workspace/Shared' }, /^input `repoPath`: `\/Workspace\/Shared` is too short/],
    ]) {
      const result = await runTask('DatabricksRepoUpdate', env(inputs));
      assert.equal(result.code, 2, result.stdout);
      assert.match(issues(result, 'error')[0], said);
    }
    assert.equal(await emulator.requests(), 0, 'no request');
  });
}
