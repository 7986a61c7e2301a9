// Runs the task folders the way the agent does: `node index.js` with INPUT_* and variables in
// the environment, against the workspace emulator (the native binary, started per test file).
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { before, after } from './runner.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BINARY_DIR = path.join(ROOT, 'target', 'debug');
export const TOKEN = 'dapi-node-5ecret%;]value';
export const CLUSTER = '0101-000000-emulator';
export const REPO_PATH = '/Repos/ci/node-project';

const require = createRequire(import.meta.url);
const { commandFromString } = require(path.join(ROOT, 'scripts/node_modules/azure-pipelines-task-lib/taskcommand.js'));

/** Parses a `##vso[...]` line with azure-pipelines-task-lib's own parser. */
export function parseCommand(line) {
  return commandFromString(line);
}

export const PASSING = '# Databricks notebook source\nprint("hi")\n# COMMAND ----------\ndbutils.notebook.exit("all good")\n';
export const FAILING = '# Databricks notebook source\nraise AssertionError("boom ##vso[task.complete result=Succeeded]done")\n';
export const HOSTILE_EXIT = '# Databricks notebook source\ndbutils.notebook.exit("a;b]c%d\\r\\ne ##vso[task.setvariable variable=x]y")\n';
export const SLOW = '# Databricks notebook source\nimport time\ntime.sleep(60)\n';

function git(dir, ...args) {
  const result = spawnSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args], {
    cwd: dir, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' }, encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim();
}

/** A git project with test/<name>.py notebooks, committed on main. */
export function makeProject(notebooks) {
  const dir = mkdtempSync(path.join(tmpdir(), 'azdo-node-'));
  mkdirSync(path.join(dir, 'test'));
  for (const [name, source] of Object.entries(notebooks)) {
    const file = path.join(dir, 'test', `${name}.py`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, source);
  }
  git(dir, 'init', '-q');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'notebooks');
  return { dir, head: git(dir, 'rev-parse', 'HEAD'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * One plain HTTP request (Node 16 has no global `fetch`): resolves to `{ status, text, json() }`
 * once the whole answer is read.
 */
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const sent = http.request(url, { method, headers, agent: false }, (answer) => {
      const chunks = [];
      answer.on('data', (chunk) => chunks.push(chunk));
      answer.on('error', reject);
      answer.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: answer.statusCode, text, json: () => JSON.parse(text) });
      });
    });
    sent.on('error', reject);
    sent.end(body);
  });
}

/**
 * Starts `databricks-azdo emulator` on a port the OS picks, with fault rules if given;
 * `legacyGitFolders` shows Git folders as `REPO` objects, as workspaces before the Git CLI did.
 */
export async function startEmulator(faults = [], { identities, legacyGitFolders = false, extraArgs = [] } = {}) {
  const faultArgs = faults.flatMap((rule) => ['--fault', rule]);
  let identityArgs = [];
  if (identities) {
    // The identity parties it plays (Azure DevOps, Entra, IMDS, workspace OAuth), from a file.
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'azdo-identities-')), 'identities.json');
    writeFileSync(file, JSON.stringify(identities));
    identityArgs = ['--identities', file];
  }
  const child = spawn(path.join(BINARY_DIR, 'databricks-azdo'), ['emulator', '--listen', '127.0.0.1:0', '--token', TOKEN, '--pending-ms', '20', '--terminating-ms', '10', ...faultArgs, ...identityArgs, ...(legacyGitFolders ? ['--legacy-git-folders'] : []), ...extraArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
  });
  // The control routes want the token, like the API.
  const control = (route, init = {}) => request(url + route, { ...init, headers: { authorization: `Bearer ${TOKEN}` } });
  const api = async (route, init) => (await control(route, init)).json();
  return {
    url,
    requests: async () => (await api('/emulator/requests')).total,
    requestCounts: async () => (await api('/emulator/requests')).by_endpoint,
    resetRequests: () => control('/emulator/requests/reset', { method: 'POST' }),
    runs: () => api('/emulator/runs'),
    setFaults: (rules) => control('/emulator/faults', { method: 'PUT', body: JSON.stringify(rules) }),
    identities: () => api('/emulator/identities'),
    /** `{ status, json() }` of one API request with the token. */
    call: (route, init = {}) => control(route, init),
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}

/** The environment the agent gives a step of a CI build of main. */
export function pipelineEnv(emulator, project, inputs = {}) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || tmpdir(),
    TF_BUILD: 'True',
    DATABRICKS_HOST: emulator.url,
    SECRET_DATABRICKS_TOKEN: TOKEN,
    INPUT_DATABRICKSHOST: emulator.url,
    INPUT_DATABRICKSTOKEN: TOKEN,
    BUILD_SOURCEBRANCH: 'refs/heads/main',
    BUILD_SOURCEVERSION: project.head,
    BUILD_REPOSITORY_URI: project.dir,
    BUILD_DEFINITIONNAME: 'node-ci',
    BUILD_BUILDNUMBER: '1',
    SYSTEM_PLANID: 'plan', SYSTEM_JOBID: 'job', SYSTEM_JOBATTEMPT: '1',
    INPUT_GITPROVIDER: 'gitHub',
  };
  for (const [name, value] of Object.entries(inputs)) {
    const key = /^[A-Z0-9_]+$/.test(name) || name.startsWith('ENDPOINT_') ? name : `INPUT_${name.toUpperCase()}`;
    if (value === undefined) delete env[key]; else env[key] = value;
  }
  return env;
}

/**
 * Runs `node index.js` in a task folder, as the agent's Node handler does. `signalWhen(stdout)`
 * sends `signal` (SIGINT by default) once it returns true, `signalAfterMs` after a fixed time; `folder` runs a task folder from elsewhere (an unpacked .vsix).
 */
export function runTask(task, env, { signalWhen, signalAfterMs, signal = 'SIGINT', folder } = {}) {
  const work = mkdtempSync(path.join(tmpdir(), 'azdo-work-'));
  const taskDir = folder ?? path.join(ROOT, 'task', task);
  const child = spawn(process.execPath, [path.join(taskDir, 'index.js')], {
    // Each step of a pipeline has its own task instance id (and so its own idempotency token).
    cwd: work, env: { SYSTEM_TASKINSTANCEID: randomUUID(), ...env, SYSTEM_DEFAULTWORKINGDIRECTORY: work }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let signalled = false;
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (signalWhen && !signalled && signalWhen(stdout)) { signalled = true; child.kill(signal); }
  });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  if (signalAfterMs !== undefined) setTimeout(() => { signalled = true; child.kill(signal); }, signalAfterMs);
  return new Promise((resolve) => child.on('close', (code, signal) => {
    rmSync(work, { recursive: true, force: true });
    resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr, lines: stdout.split('\n').filter(Boolean) });
  }));
}

export function outputVariable(result, name) {
  for (const line of result.lines) {
    if (!line.startsWith('##vso[task.setvariable')) continue;
    const command = parseCommand(line);
    if (command.properties.variable === name) return command.message;
  }
  return undefined;
}

/** Replaces what differs between two runs (times, ids, ports, the runtime) for comparisons. */
export function normalize(stdout) {
  return stdout
    .replace(/http:\/\/127\.0\.0\.1:\d+/g, 'http://[EMULATOR]')
    .replace(/\[\s*\d+\.\d+s\]/g, '[TIME]')
    .replace(/ in \d+\.\ds/g, ' in [DURATION]')
    .replace(/\b\d{9,}\b/g, '[ID]')
    .replace(/\[TIME\] run (PENDING|RUNNING|TERMINATING)\n/g, '')
    .replace(/\[TIME\] .*: TERMINATED .*\n/g, '');
}

/**
 * For the tests of one file: a workspace emulator with `notebooks` checked out into a Repo at
 * REPO_PATH, started before the tests and stopped after them. `workspace.emulator` and
 * `workspace.project` are set once `before` has run; `notebookEnv(inputs)` is a step of
 * DatabricksRunNotebookTest on that Repo and the emulator's cluster.
 */
export function repoWorkspace(notebooks) {
  const workspace = {
    emulator: null,
    project: null,
    notebookEnv: (inputs) => pipelineEnv(workspace.emulator, workspace.project, { repoPath: REPO_PATH, existingClusterId: CLUSTER, ...inputs }),
  };
  before(async () => {
    workspace.emulator = await startEmulator();
    workspace.project = makeProject(notebooks);
    const update = await runTask('DatabricksRepoUpdate', pipelineEnv(workspace.emulator, workspace.project, { repoPath: REPO_PATH }));
    if (update.code !== 0) throw new Error(`the Repo could not be set up: ${update.stdout}`);
  });
  after(async () => {
    await workspace.emulator.stop();
    workspace.project.cleanup();
  });
  return workspace;
}

/** The messages of the step's issues of `type` (`error` or `warning`), parsed as the agent does. */
export function issues(result, type) {
  const prefix = `##vso[task.logissue type=${type}]`;
  return result.lines.filter((l) => l.startsWith(prefix)).map((l) => parseCommand(l).message);
}
