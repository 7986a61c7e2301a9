// The wasm core, as the agent runs it (`node index.js`), against text from outside: secrets
// with characters that get escaped or cut, one-character secrets, URLs with credentials,
// notebook output that tries to forge log lines or inject into the build summary, and run
// page links that lead elsewhere.
import { test } from './runner.mjs';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  BINARY_DIR, CLUSTER, REPO_PATH, ROOT, outputVariable, parseCommand, pipelineEnv, repoWorkspace, runTask,
} from './harness.mjs';

const require = createRequire(import.meta.url);
const xml2js = require(path.join(ROOT, 'scripts/node_modules/xml2js'));

const LONG = 'L0NG-S3CRET-abcdefghijklmnopqrstuvwxyz0123456789';
const EXIT_PADDED = "# Databricks notebook source\nv = dbutils.widgets.get('leak')\ndbutils.notebook.exit('x' * int(dbutils.widgets.get('pad_exit')) + v)\n";
const RAISE_PADDED = "# Databricks notebook source\nv = dbutils.widgets.get('leak')\nraise ValueError('y' * int(dbutils.widgets.get('pad_error')) + v)\n";

/** Notebooks <prefix>say<i> (print and exit with texts[i]) and <prefix>shout<i> (raise with it). */
function hostileNotebooks(prefix, texts) {
  const sources = {};
  const paths = [];
  texts.forEach((text, i) => {
    const value = `v = bytes.fromhex('${Buffer.from(text, 'utf8').toString('hex')}').decode('utf-8')`;
    sources[`${prefix}say${i}`] = `# Databricks notebook source\n${value}\nprint(v)\ndbutils.notebook.exit(v)\n`;
    sources[`${prefix}shout${i}`] = `# Databricks notebook source\n${value}\nraise ValueError(v)\n`;
    paths.push(`test/${prefix}say${i}`, `test/${prefix}shout${i}`);
  });
  return { sources, paths: paths.join('\n') };
}

const FORGERIES = [
  'ok\r##[error]FORGED by a bare CR',
  'ok\r\n##[section]FORGED by CRLF',
  'ok\n  ##[group]FORGED after spaces',
  '\u001b[2K\r##[warning]FORGED behind an erase-line',
  '\u001b[31m##[error]FORGED behind a colour\u001b[0m',
  '\ufeff##[error]FORGED behind a BOM',
  '\u200b##[command]FORGED behind a zero-width space',
  'x \u0000##vso[task.complete result=Succeeded]FORGED after NUL',
  'x #\u00ad#vso[task.setvariable variable=x]FORGED through a soft hyphen',
  'x ##VSO[task.complete result=Succeeded]FORGED in capitals',
  '\u001b]0;FORGED terminal title\u0007',
  '\u001b]8;;https://evil.example\u001b\\FORGED hyperlink\u001b]8;;\u001b\\',
  '\u009b2J FORGED by a C1 CSI',
  '\u202eDEGROF by a bidi override',
  '\u2028##[error]FORGED after a line separator',
];

const MARKDOWN = [
  '[click here](https://evil.example/phish)',
  '![pixel](https://evil.example/p.png)',
  '<img src=x onerror=alert(1)>',
  '<script>alert(1)</script>',
  'a | b | c',
  '`code` and ``double`` ticks`',
  '<https://evil.example/auto>',
  '**bold** _em_ # heading',
  '\\| an escaped pipe \\',
  '&lt;entity&gt; &amp; &#124;',
];

const forge = hostileNotebooks('forge_', FORGERIES);
const md = hostileNotebooks('md_', MARKDOWN);

const repo = repoWorkspace({ exit: EXIT_PADDED, raise: RAISE_PADDED, ...forge.sources, ...md.sources });
const notebookEnv = repo.notebookEnv;

/** Runs the padded notebooks with `secret` as a secret variable; returns the run and its report files. */
async function runLeaky(secret, padExit, padError, extra = {}) {
  const reports = mkdtempSync(path.join(tmpdir(), 'azdo-leak-'));
  const parameters = JSON.stringify({ leak: secret, pad_exit: String(padExit), pad_error: String(padError) });
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({
    notebookPaths: 'test/exit\ntest/raise', parameters, SECRET_LEAK: secret, AGENT_TEMPDIRECTORY: reports, ...extra,
  }));
  const files = Object.fromEntries(readdirSync(reports).map((f) => [f, readFileSync(path.join(reports, f), 'utf8')]));
  rmSync(reports, { recursive: true, force: true });
  return { result, files };
}

/** Every way a secret may be spelled once escaped for XML, JSON, Markdown or the agent, or cut. */
function spellings(secret) {
  const xml = secret.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
  const json = JSON.stringify(secret).slice(1, -1);
  const agent = secret.replace(/%/g, '%AZP25');
  const property = agent.replace(/;/g, '%3B').replace(/]/g, '%5D');
  const all = [secret, xml, json, secret.replace(/\|/g, '\\|'), agent, property];
  if (secret.length > 20) all.push(secret.slice(0, 4));
  return [...new Set(all)];
}

test('secrets are masked before they are escaped or shortened', async () => {
  const shapes = [
    ['XML specials', 's3&c<r>e"t\'q', 0, 0],
    ['JSON specials', 's3cr\\et"json/x', 0, 0],
    ['a pipe and a backtick', 'pi|pe`s3cret', 0, 0],
    ['logging command specials', 'pct%AZP;]s3c', 0, 0],
    ["cut at the printed output's limit", LONG, 1995, 0],
    ["cut at the failure message's limit", LONG, 0, 283],
    ["cut at the summary's limit", LONG, 195, 175],
  ];
  for (const [what, secret, padExit, padError] of shapes) {
    const { result, files } = await runLeaky(secret, padExit, padError);
    assert.equal(result.code, 1, `${what}: ${result.stdout}`);
    assert.equal(Object.keys(files).length, 2, `${what}: JUnit and summary`);
    const outputs = { stdout: result.stdout, stderr: result.stderr, ...files };
    for (const [name, text] of Object.entries(outputs)) {
      for (const line of text.split(/\r?\n/)) {
        if (line.startsWith('##vso[task.setsecret]')) continue;
        for (const spelling of spellings(secret)) {
          assert.ok(!line.includes(spelling), `${what}: ${name} shows ${spelling}: ${line}`);
        }
      }
    }
    assert.match(Object.values(outputs).join(''), /\*\*\*/, `${what}: masked`);
  }
});

/** The cells of a GFM table row: split at pipes that no backslash escapes. */
function cells(row) {
  const found = [];
  let current = '';
  for (let i = 0; i < row.length; i++) {
    if (row[i] === '|' && row[i - 1] !== '\\') {
      found.push(current);
      current = '';
    } else {
      current += row[i];
    }
  }
  found.push(current);
  return found.slice(1, -1).map((c) => c.trim());
}

function tableRows(markdown) {
  return markdown.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---')).map(cells);
}

test('masking never breaks a document', async () => {
  for (const secret of ['1', 'a', 'e', 'name', 'testcase', 'failure', '<', '>', '&', '"', "'", '/', ':', '{', '|', '`', '\\']) {
    const { result, files } = await runLeaky(`value-${secret}`, 0, 0, { SECRET_SHORT: secret });
    assert.equal(result.code, 1, `${secret}: ${result.stdout}`);
    const xml = Object.entries(files).find(([name]) => name.endsWith('.xml'))[1];
    const parsed = await xml2js.parseStringPromise(xml, { strict: true })
      .catch((e) => assert.fail(`${secret}: the JUnit file is not XML (${e.message}):\n${xml}`));
    // One suite per notebook: one failure and two cases in all.
    const suites = parsed.testsuites.testsuite;
    assert.equal(suites.reduce((n, s) => n + Number(s.$.failures), 0), 1, `${secret}: ${xml}`);
    const testcases = suites.flatMap((s) => s.testcase);
    assert.equal(testcases.length, 2, `${secret}: ${xml}`);
    for (const testcase of testcases) {
      assert.ok(!testcase.$.name.includes(secret), `${secret}: ${testcase.$.name}`);
    }
    const markdown = Object.entries(files).find(([name]) => name.endsWith('.md'))[1];
    const rows = tableRows(markdown);
    assert.equal(rows.length, 3, `${secret}: header and two rows:\n${markdown}`);
    for (const row of rows) assert.equal(row.length, 5, `${secret}: ${JSON.stringify(row)}\n${markdown}`);
    const output = outputVariable(result, 'notebookOutput');
    let value;
    assert.doesNotThrow(() => { value = JSON.parse(output); }, `${secret}: notebookOutput is not JSON: ${output}`);
    assert.equal(Object.keys(value).length, 2, output);
  }
});

test('URLs with credentials are refused without repeating them', async () => {
  const update = pipelineEnv(repo.emulator, repo.project, { repoPath: REPO_PATH });
  const cases = [
    ['DatabricksRepoUpdate', 'databricksHost', 'https://ci:S3CRET@adb-1.2.azuredatabricks.net'],
    ['DatabricksRepoUpdate', 'databricksHost', 'https://S3CRET@adb-1.2.azuredatabricks.net'],
    ['DatabricksRepoUpdate', 'databricksHost', 'https://adb-1.2.azuredatabricks.net/?token=S3CRET'],
    ['DatabricksRepoUpdate', 'databricksHost', 'http://ci:S3CRET@adb-1.2.azuredatabricks.net'],
    ['DatabricksRepoUpdate', 'databricksHost', 'ftp://ci:S3CRET@adb-1.2.azuredatabricks.net'],
    ['DatabricksRepoUpdate', 'databricksHost', 'https://ci:S3CRET@adb-1.2.azuredatabricks.net/api/2.0'],
    ['DatabricksRepoUpdate', 'databricksHost', 'ci:S3#CRET@adb-1.2.azuredatabricks.net'],
    ['DatabricksRunNotebookTest', 'databricksHost', 'https://ci:S3CRET@adb-1.2.azuredatabricks.net'],
    ['DatabricksRepoUpdate', 'repoUrl', 'ftp://ci:S3CRET@github.com/o/r.git'],
    ['DatabricksRepoUpdate', 'repoUrl', 'https://github.com/o/r.git?token=S3CRET'],
    ['DatabricksRepoUpdate', 'repoUrl', 'https://github.com/o/r.git#S3CRET'],
    ['DatabricksRepoUpdate', 'repoUrl', 'S3CRET@github.com:o/r.git'],
    ['DatabricksRunNotebookTest', 'repoUrl', 'https://github.com/o/r.git?token=S3CRET'],
  ];
  const before = await repo.emulator.requests();
  for (const [task, input, value] of cases) {
    const env = task === 'DatabricksRepoUpdate'
      ? { ...update, [`INPUT_${input.toUpperCase()}`]: value }
      : notebookEnv({ source: 'git', notebookPaths: 'test/exit', branch: 'main', repoPath: undefined, [input]: value });
    const result = await runTask(task, env);
    assert.equal(result.code, 2, `${input}=${value}: ${result.stdout}`);
    assert.match(result.stdout, new RegExp(`input \`${input}\``), `${input}=${value}: ${result.stdout}`);
    assert.ok(!`${result.stdout}${result.stderr}`.includes('S3'), `${input}=${value} repeats the secret: ${result.stdout}`);
  }
  assert.equal(await repo.emulator.requests(), before, 'refused before any request');
});

/** What the agent makes of our stdout: lines split at LF and CR, an issue's message unescaped
 * and written to the log line by line. */
function agentLines(stdout) {
  const lines = [];
  for (const line of stdout.split(/[\r\n]/)) {
    if (line.startsWith('##vso[task.logissue')) {
      lines.push(...parseCommand(line).message.split(/[\r\n]/));
    } else {
      lines.push(line);
    }
  }
  return lines;
}

const OUR_COMMANDS = ['task.setsecret', 'task.setvariable', 'task.logissue', 'task.complete', 'task.setprogress', 'task.uploadsummary', 'results.publish'];

function assertNoForgery(stdout) {
  // eslint-disable-next-line no-control-regex
  const control = stdout.match(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  assert.equal(control, null, `a control character ${JSON.stringify(control?.[0])} reaches the log`);
  for (const line of agentLines(stdout)) {
    const seen = line.replace(/[\u00ad\u200b-\u200f\u2060-\u206f\ufeff]/g, '');
    assert.doesNotMatch(seen, /^\s*##\[[a-z]+\]FORGED/i, `a forged formatting line: ${JSON.stringify(line)}`);
    const at = seen.toLowerCase().indexOf('##vso[');
    if (at >= 0) {
      assert.equal(at, 0, `a logging command inside a line: ${JSON.stringify(line)}`);
      const name = seen.slice(6).split(/[ \]]/)[0];
      assert.ok(OUR_COMMANDS.includes(name), `a command we never send: ${JSON.stringify(line)}`);
    }
  }
}

/** The step run by the wasm core, and by the native binary through the same index.js. */
const RUNTIMES = {
  wasm: {},
  native: { DATABRICKS_AZDO_RUNTIME: 'native', PATH: `${BINARY_DIR}${path.delimiter}${process.env.PATH}` },
};

test('notebook text cannot forge log lines (wasm and native)', async () => {
  for (const [runtime, settings] of Object.entries(RUNTIMES)) {
    const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: forge.paths, SYSTEM_DEBUG: 'true', ...settings }));
    assert.equal(result.code, 1, `${runtime}: ${result.stdout}`);
    assertNoForgery(result.stdout);
    for (const text of ['FORGED by a bare CR', 'FORGED hyperlink', 'DEGROF']) assert.ok(result.stdout.includes(text), `${runtime}, ${text}: ${result.stdout}`);
    for (const line of result.lines.filter((l) => l.startsWith('##vso['))) assert.doesNotThrow(() => parseCommand(line), line);
  }
});

/** Links, images and raw HTML outside code spans. */
function markupOutsideCode(markdown, workspace) {
  let outside = markdown.replace(/(`+) .*? \1/g, '');
  // Our own links into the workspace (each notebook's run page) are the one markup allowed.
  if (workspace) outside = outside.split(`](<${workspace}/`).join('').replace(/\[\]/g, '');
  return outside.match(/\]\(|!\[|<[a-z/!]/gi) ?? [];
}

test('notebook text is code in the build summary', async () => {
  const reports = mkdtempSync(path.join(tmpdir(), 'azdo-md-'));
  const result = await runTask('DatabricksRunNotebookTest', notebookEnv({ notebookPaths: md.paths, AGENT_TEMPDIRECTORY: reports }));
  assert.equal(result.code, 1, result.stdout);
  const summary = parseCommand(result.lines.find((l) => l.startsWith('##vso[task.uploadsummary'))).message;
  const markdown = readFileSync(summary, 'utf8');
  rmSync(reports, { recursive: true, force: true });
  const [heading, ...body] = markdown.split('\n');
  assert.match(heading, new RegExp(`\\(\\[run \\d+\\]\\(<${repo.emulator.url}/[^>]*>\\)\\)$`), heading);
  assert.deepEqual(markupOutsideCode(body.join('\n'), repo.emulator.url), [], markdown);
  const rows = tableRows(markdown);
  assert.equal(rows.length, 1 + 2 * MARKDOWN.length, markdown);
  const code = (cell) => {
    const match = cell.match(/^(`+) (.*) \1$/);
    assert.ok(match, `not a code span: ${cell}`);
    return match[2].replace(/\\\|/g, '|');
  };
  MARKDOWN.forEach((text, i) => {
    const [say, shout] = [rows[1 + 2 * i], rows[2 + 2 * i]];
    assert.equal(say.length, 5, JSON.stringify(say));
    const linked = say[1].match(/^\[(.*)\]\(<[^>]*>\)$/);
    assert.ok(linked, `the notebook links to its run page: ${say[1]}`);
    assert.equal(code(linked[1]), `${REPO_PATH}/test/md_say${i}`);
    assert.equal(code(say[4]), text, `the output, whole: ${say[4]}`);
    assert.equal(code(shout[4]), `failed: ValueError: ${text}`, `the error, whole: ${shout[4]}`);
  });
});

/** A stand-in workspace whose runs have `runPageUrl(origin)` as their run page. */
async function fakeWorkspace(runPageUrl) {
  let taskKeys = [];
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const origin = `http://127.0.0.1:${server.address().port}`;
    const url = runPageUrl(origin);
    const state = { life_cycle_state: 'TERMINATED', result_state: 'FAILED' };
    let answer;
    if (req.url.startsWith('/api/2.2/jobs/runs/submit')) {
      taskKeys = JSON.parse(body).tasks.map((t) => t.task_key);
      answer = { run_id: 7 };
    } else if (req.url.startsWith('/api/2.2/jobs/runs/get-output')) {
      answer = { error: 'boom' };
    } else if (req.url.startsWith('/api/2.2/jobs/runs/get')) {
      const tasks = taskKeys.map((key, i) => ({ task_key: key, run_id: 100 + i, state, run_page_url: url }));
      answer = { run_id: 7, state, tasks, run_page_url: url };
    } else {
      res.writeHead(404).end('{}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

async function runAgainst(workspace) {
  const reports = mkdtempSync(path.join(tmpdir(), 'azdo-link-'));
  const env = { ...pipelineEnv(repo.emulator, repo.project, { notebookPaths: '/Shared/unit', existingClusterId: CLUSTER, AGENT_TEMPDIRECTORY: reports }) };
  env.INPUT_DATABRICKSHOST = workspace.url;
  env.DATABRICKS_HOST = workspace.url;
  const result = await runTask('DatabricksRunNotebookTest', env);
  const summary = result.lines.find((l) => l.startsWith('##vso[task.uploadsummary'));
  const markdown = summary ? readFileSync(parseCommand(summary).message, 'utf8') : '';
  rmSync(reports, { recursive: true, force: true });
  return { result, markdown };
}

test('only run page links into the workspace are shown', async () => {
  for (const foreign of [
    'https://evil.example/?o=1#job/1/run/7',
    'javascript:alert(document.cookie)',
    'https://127.0.0.1.evil.example/',
    '//evil.example/run/7',
    'data:text/html,<script>alert(1)</script>',
    'https://evil.example/)![pixel](https://evil.example/p.png',
  ]) {
    const workspace = await fakeWorkspace(() => foreign);
    const { result, markdown } = await runAgainst(workspace);
    workspace.close();
    assert.equal(result.code, 1, `${foreign}: ${result.stdout}`);
    for (const line of result.lines) {
      assert.doesNotMatch(line, /https:\/\/evil|\/\/evil|javascript:|data:/, `${foreign}: the log shows the link: ${line}`);
    }
    assert.equal(outputVariable(result, 'runPageUrl'), '', foreign);
    assert.deepEqual(markupOutsideCode(markdown), [], `${foreign}: a link or markup in the summary:\n${markdown}`);
  }
  for (const path of ['/?o=1#job/1/run/7', '/x)![pixel](https://evil.example/p.png', '/x>[a](https://evil.example)<']) {
    const workspace = await fakeWorkspace((origin) => `${origin}${path}`);
    const { result, markdown } = await runAgainst(workspace);
    workspace.close();
    assert.equal(result.code, 1, result.stdout);
    assert.ok(outputVariable(result, 'runPageUrl').startsWith(`${workspace.url}/`), result.stdout);
    // The run page and the notebook's own task page.
    const links = markdown.match(/\]\(<([^>]*)>\)/g) ?? [];
    assert.equal(links.length, 2, markdown);
    assert.ok(links.every((link) => link.startsWith(`](<${workspace.url}/`)), links.join(' '));
    assert.doesNotMatch(links.reduce((text, link) => text.replace(link, ''), markdown), /\]\(|!\[/, markdown);
  }
});
