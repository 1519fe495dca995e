// Browser tests of the stateseal console (/ui) in Debian's headless Chromium, driven by
// playwright-core, against a live `stateseal serve` that tests/browser/run.sh starts (auth:
// users admin and viewer; encryption at rest with pbkdf2) and real Terraform applies through
// scripts/peers/tf.py. The flows: sign in, see the states, diff two versions written by
// Terraform, force-unlock a lock a killed Terraform left behind (then Terraform applies again),
// roll back (then `terraform plan` sees the rolled-back outputs), and a viewer without admin who
// sees no unlock or rollback control and whose direct POSTs are refused. Screenshots go to
// $STATESEAL_UI_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this through tests/browser/run.sh`);
  return v;
};
const URL = env('STATESEAL_UI_URL');
const ADMIN_PW = env('STATESEAL_UI_ADMIN_PASSWORD');
const VIEWER_PW = env('STATESEAL_UI_VIEWER_PASSWORD');
const SERVER_LOG = env('STATESEAL_UI_SERVER_LOG');
const ART = env('STATESEAL_UI_ARTIFACTS');
const PY = env('STATESEAL_TEST_PYTHON');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TF_PY = join(ROOT, 'scripts', 'peers', 'tf.py');
const STATE = 'team/app';
const BASIC = 'Basic ' + Buffer.from(`admin:${ADMIN_PW}`).toString('base64');

// Chromium as this machine runs it: no sandbox (root), no network beyond loopback.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const MAIN_TF = `
variable "greeting" {
  type = string
}
variable "hold_until" {
  type    = string
  default = ""
}
resource "terraform_data" "app" {
  input = { greeting = var.greeting, token = sensitive("tok-\${var.greeting}") }
}
# Only when hold_until is set: an apply that holds the lock until that file exists.
resource "terraform_data" "slow" {
  count            = var.hold_until == "" ? 0 : 1
  triggers_replace = [timestamp()]
  provisioner "local-exec" {
    command = "f='\${var.hold_until}'; n=0; while [ ! -e \\"$f\\" ] && [ $n -lt 3000 ]; do sleep 0.1; n=$((n+1)); done"
  }
}
output "greeting" {
  value = var.greeting
}
output "secret" {
  value     = "s3cret-\${var.greeting}"
  sensitive = true
}
`;

let work;
const dirs = [];
const contexts = [];

function tf(args) {
  const r = spawnSync(PY, [TF_PY, '--chdir', work, '--', ...args], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

function tfOk(args) {
  const r = tf(args);
  assert.equal(r.status, 0, `terraform ${args.join(' ')}:\n${r.out}`);
  return r.out;
}

async function api(method, path, body) {
  const r = await fetch(URL + path, {
    method,
    headers: { authorization: BASIC, 'content-type': 'application/json' },
    body,
  });
  return { status: r.status, text: await r.text() };
}

async function versionCount() {
  const r = await api('GET', `/v1/versions/${STATE}`);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text).versions.length;
}

async function waitFor(what, check) {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const v = await check();
    if (v) return v;
    assert.ok(Date.now() < deadline, `gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fresh browser profile (its own --user-data-dir), signed in as `user`. */
async function signedIn(user, password) {
  const dir = mkdtempSync(join(tmpdir(), 'stateseal-chromium-'));
  dirs.push(dir);
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ARGS,
  });
  contexts.push(ctx);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  await page.goto(`${URL}/ui/states`);
  assert.match(page.url(), /\/ui\/login$/, 'an anonymous visitor is sent to sign in');
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([
    page.waitForURL('**/ui/states'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return page;
}

let admin;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'stateseal-ui-tf-'));
  dirs.push(work);
  writeFileSync(join(work, 'main.tf'), MAIN_TF);
  const addr = `${URL}/state/${STATE}`;
  writeFileSync(join(work, 'backend.tf'), `terraform {
  backend "http" {
    address        = "${addr}"
    lock_address   = "${addr}"
    unlock_address = "${addr}"
    username       = "admin"
    password       = "${ADMIN_PW}"
  }
}
`);
  tfOk(['init', '-no-color', '-input=false']);
  tfOk(['apply', '-auto-approve', '-no-color', '-var', 'greeting=one']);
  tfOk(['apply', '-auto-approve', '-no-color', '-var', 'greeting=two']);
});

after(async () => {
  for (const c of contexts) await c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('sign in and see the states, also on a phone in dark mode', async () => {
  admin = await signedIn('admin', ADMIN_PW);
  const table = await admin.locator('table.states').innerText();
  assert.match(table, /team\/app/);
  assert.match(table, /yes \(server\)/, 'encrypted at rest by the server');
  assert.match(table, /key_provider\.pbkdf2\.server/, 'the key provider from the envelope');
  assert.match(table, /admin/, 'last write by the signed-in Terraform user');
  await admin.screenshot({ path: join(ART, 'states.png'), fullPage: true });

  // Filter by prefix and sort by serial, without any script.
  await admin.fill('input[name=prefix]', 'nothing-here/');
  await admin.getByRole('button', { name: 'Filter' }).click();
  assert.match(await admin.locator('p.count').innerText(), /^0 state/);
  await admin.goto(`${URL}/ui/states`);
  await admin.getByRole('link', { name: 'Serial' }).click();
  assert.match(admin.url(), /sort=serial/);

  await admin.setViewportSize({ width: 390, height: 844 });
  await admin.emulateMedia({ colorScheme: 'dark' });
  const overflow = await admin.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  const bg = await admin.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(17, 20, 24)', 'dark mode');
  await admin.screenshot({ path: join(ART, 'states-phone-dark.png'), fullPage: true });
  await admin.setViewportSize({ width: 1280, height: 900 });
  await admin.emulateMedia({ colorScheme: 'light' });
});

test('open a state and diff two versions written by Terraform', async () => {
  await admin.goto(`${URL}/ui/states`);
  await admin.getByRole('link', { name: STATE }).click();
  assert.match(await admin.locator('table.outputs').innerText(), /greeting\s+two/);
  assert.doesNotMatch(await admin.content(), /s3cret/, 'sensitive output masked');
  await admin.selectOption('select[name=from]', '1');
  await admin.selectOption('select[name=to]', '2');
  await Promise.all([
    admin.waitForURL('**#diff'),
    admin.getByRole('button', { name: 'Compare' }).click(),
  ]);
  const diff = await admin.locator('div.diff').innerText();
  assert.match(diff, /changed\s+terraform_data\.app/i);
  // A structured diff, as `terraform plan` shows one: the changed leaf with both values
  // (terraform_data keeps `input` as a dynamic value, {"value":…,"type":…}).
  assert.match(diff, /changed\s+input\.value\.greeting: one → two/i);
  assert.match(diff, /changed\s+output\.value\.greeting: one → two/i);
  // The sensitive leaf inside the same attribute: only "changed".
  assert.match(diff, /changed\s+input\.value\.token: \(sensitive value changed\)/i);
  const inputLines = diff.split('\n').filter((l) => l.includes('input.value'));
  assert.ok(inputLines.every((l) => !l.includes('tok-')), inputLines.join('\n'));
  // (Terraform marks only `input.token` sensitive in the state, not terraform_data's mirrored
  // `output`, so `output.value.token` is shown: the console follows the state's own marks.)
  assert.doesNotMatch(diff, /"type"/, 'no whole JSON blobs');
  assert.match(diff, /changed\s+greeting: one → two/i);
  assert.match(diff, /changed\s+secret: \(sensitive value changed\)/i);
  assert.doesNotMatch(diff, /s3cret/);
  // The page lands on the diff: at 1280×900 it starts inside the window, scrolled down to it.
  const box = await admin.locator('#diff').boundingBox();
  const scrolled = await admin.evaluate(() => window.scrollY);
  assert.ok(scrolled > 0 && box.y >= 0 && box.y < 900, `diff at y=${box.y}, scrollY=${scrolled}`);
  await admin.screenshot({ path: join(ART, 'diff.png') });
  await admin.screenshot({ path: join(ART, 'diff-full.png'), fullPage: true });

  // An admin reveals the sensitive output; the server logs the reveal, not the value.
  await admin.getByRole('button', { name: 'Reveal' }).click();
  assert.match(await admin.locator('table.outputs').innerText(), /s3cret-two/);
  const log = readFileSync(SERVER_LOG, 'utf8');
  assert.match(log, /sensitive output was revealed/);
  assert.doesNotMatch(log, /s3cret/);
});

test('force-unlock a lock a killed Terraform left behind, then Terraform applies again', async () => {
  const before = await versionCount();
  const held = spawn(PY, [TF_PY, '--chdir', work, '--', 'apply', '-auto-approve', '-no-color',
    '-var', 'greeting=held', '-var', `hold_until=${join(work, 'never')}`],
  { detached: true, stdio: 'ignore' });
  const exited = new Promise((r) => held.on('exit', r));
  const lock = await waitFor('Terraform to take the lock', async () => {
    const r = await api('GET', `/state/${STATE}/lock`);
    return r.status === 200 ? JSON.parse(r.text) : null;
  });
  // kill -9 Terraform and its local-exec: the lock stays behind.
  process.kill(-held.pid, 'SIGKILL');
  await exited;
  assert.equal((await api('GET', `/state/${STATE}/lock`)).status, 200, 'the lock is left behind');
  const refused = tf(['apply', '-auto-approve', '-no-color', '-lock-timeout=0s', '-var', 'greeting=three']);
  assert.notEqual(refused.status, 0);
  assert.match(refused.out, /Error acquiring the state lock/);

  await admin.goto(`${URL}/ui/locks`);
  const row = await admin.locator('table.locks').innerText();
  assert.ok(row.includes(lock.Who), `${row} names ${lock.Who}`);
  assert.match(row, /OperationTypeApply/);
  await admin.getByRole('link', { name: 'Force unlock…' }).click();
  const confirm = await admin.locator('table.holder').innerText();
  assert.ok(confirm.includes(lock.Who) && confirm.includes(lock.ID), confirm);
  await Promise.all([
    admin.waitForURL('**/ui/locks'),
    admin.getByRole('button', { name: 'Force unlock' }).click(),
  ]);
  assert.match(await admin.locator('main').innerText(), /No state is locked/);
  assert.equal((await api('GET', `/state/${STATE}/lock`)).status, 404);
  assert.equal(await versionCount(), before, 'the killed apply wrote nothing');

  tfOk(['apply', '-auto-approve', '-no-color', '-lock-timeout=0s', '-var', 'greeting=three']);
  assert.equal(await versionCount(), before + 1);
});

test('roll back, after which terraform plan sees the rolled-back outputs', async () => {
  const before = await versionCount();
  await admin.goto(`${URL}/ui/state/${STATE}`);
  await admin.locator('a[href$="/ui/rollback/team/app?seq=1"]').click();
  await Promise.all([
    admin.waitForURL(`**/ui/state/${STATE}`),
    admin.getByRole('button', { name: 'Roll back to version 1' }).click(),
  ]);
  assert.equal(await versionCount(), before + 1, 'a new version');
  assert.match(await admin.locator('table.outputs').innerText(), /greeting\s+one/);
  const plan = tfOk(['plan', '-no-color', '-var', 'greeting=three']);
  assert.match(plan, /greeting\s+=\s+"one" -> "three"/, plan);
});

test('a viewer without admin sees no unlock or rollback control, and direct POSTs are refused', async () => {
  const id = 'bbbbbbbb-0000-4000-8000-000000000001';
  const info = JSON.stringify({ ID: id, Operation: 'OperationTypeApply', Info: '', Who: 'someone@elsewhere',
    Version: '1.15.5', Created: new Date().toISOString(), Path: '' });
  assert.equal((await api('POST', `/state/${STATE}/lock`, info)).status, 200);
  const viewer = await signedIn('viewer', VIEWER_PW);
  assert.match(await viewer.locator('table.states').innerText(), /team\/app/);
  await viewer.goto(`${URL}/ui/locks`);
  assert.match(await viewer.locator('table.locks').innerText(), /someone@elsewhere/);
  await viewer.goto(`${URL}/ui/state/${STATE}`);
  const html = await viewer.content();
  for (const control of ['Force unlock', 'Roll back', 'Reveal', '/ui/unlock/', '/ui/rollback/']) {
    assert.ok(!html.includes(control), `${control} shown to the viewer`);
  }
  const before = await versionCount();
  const csrf = await viewer.inputValue('form.signout input[name=csrf]');
  for (const [path, form] of [
    [`/ui/rollback/${STATE}`, { seq: '1', csrf }],
    [`/ui/unlock/${STATE}`, { id, csrf }],
  ]) {
    const r = await viewer.request.post(URL + path, { form, maxRedirects: 0 });
    assert.equal(r.status(), 403, `${path}: ${await r.text()}`);
  }
  const page = await viewer.request.get(`${URL}/ui/unlock/${STATE}`, { maxRedirects: 0 });
  assert.equal(page.status(), 403);
  assert.equal(await versionCount(), before, 'nothing written');
  assert.equal((await api('GET', `/state/${STATE}/lock`)).status, 200, 'still locked');
  assert.equal((await api('DELETE', `/state/${STATE}/lock`, JSON.stringify({ ID: id }))).status, 200);
});
