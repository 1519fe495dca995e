// Browser test of the states page on `storage "s3"` (issue 24), in Debian's headless Chromium
// driven by playwright-core, against a second live `stateseal serve` that tests/browser/run.sh
// starts on a versioned bucket and lock table on moto (encryption at rest with pbkdf2, no auth
// block: loopback only). States written through the server are envelopes, so the page must show
// their key providers, as on the data directory; a held lock shows its holder and age. The
// table must fit a 1280 px screen (no column cut, times on one line) and the page must not
// scroll sideways at phone width. Screenshots go to $STATESEAL_UI_ARTIFACTS.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this through tests/browser/run.sh`);
  return v;
};
const URL = env('STATESEAL_UI_S3_URL');
const ART = env('STATESEAL_UI_ARTIFACTS');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Long names on purpose: they must wrap in their cells, not widen the table.
const STATES = [
  'platform/networking/eu-west-1/production/core-vpc-and-transit-gateway-attachments',
  'team-a/app',
  'team-b/services/payments-api',
];
const LOCKED = 'team-a/app';
const HOLDER = 'release-pipeline-runner-0042@ci-builder-eu-west-1.internal.example.com';

function tfState(serial, lineage, greeting) {
  return JSON.stringify({
    version: 4, terraform_version: '1.15.5', serial, lineage,
    outputs: { greeting: { value: greeting, type: 'string' } }, resources: [], check_results: null,
  });
}

async function api(method, path, body) {
  const r = await fetch(URL + path, {
    method, headers: { 'content-type': 'application/json' }, body,
  });
  return { status: r.status, text: await r.text() };
}

const dirs = [];
let ctx;
after(async () => {
  if (ctx) await ctx.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Document wider than the window, and tables wider than their scroll box (a cut column). */
async function overflows(page) {
  return page.evaluate(() => ({
    page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    table: Math.max(...[...document.querySelectorAll('div.scroll')].map(
      (d) => d.scrollWidth - d.clientWidth)),
    // The "Last write" cells that take more than one line.
    wrappedTimes: [...document.querySelectorAll('table.states td.when')].filter((td) => {
      const r = document.createRange();
      r.selectNodeContents(td);
      return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size > 1;
    }).length,
  }));
}

test('the states page on S3 shows key providers and the lock, and fits 1280 px and a phone', async () => {
  for (const [i, path] of STATES.entries()) {
    const w = await api('POST', `/state/${path}`, tfState(1, `lineage-${i}`, `hello ${i}`));
    assert.equal(w.status, 200, w.text);
  }
  const lock = JSON.stringify({
    ID: 'b0b0b0b0-2424-4000-8000-000000000024', Operation: 'OperationTypeApply', Info: '',
    Who: HOLDER, Version: '1.15.5', Created: new Date(Date.now() - 90_000).toISOString(), Path: '',
  });
  const l = await api('LOCK', `/state/${LOCKED}`, lock);
  assert.equal(l.status, 200, l.text);

  const dir = mkdtempSync(join(tmpdir(), 'stateseal-chromium-s3-'));
  dirs.push(dir);
  ctx = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium', headless: true, args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  await page.goto(`${URL}/ui/states`);
  const rows = page.locator('table.states tbody tr');
  assert.equal(await rows.count(), STATES.length);
  for (const path of STATES) {
    const row = await rows.filter({ hasText: path }).innerText();
    assert.match(row, /yes \(server\)/, `${path}: encrypted by the server`);
    assert.match(row, /key_provider\.pbkdf2\.server/, `${path}: its key provider, read on S3`);
  }
  const locked = await rows.filter({ hasText: LOCKED }).innerText();
  assert.ok(locked.includes(HOLDER), `the lock holder: ${locked}`);
  assert.match(locked, /\b1m \d+s\b/, `the lock's age: ${locked}`);

  const wide = await overflows(page);
  await page.screenshot({ path: join(ART, 'states-s3-1280.png'), fullPage: true });
  assert.ok(wide.page <= 0, `at 1280 px the page is ${wide.page}px too wide`);
  assert.ok(wide.table <= 0, `at 1280 px the states table is ${wide.table}px wider than its box`);
  assert.equal(wide.wrappedTimes, 0, 'at 1280 px every "Last write" time is on one line');

  await page.setViewportSize({ width: 390, height: 844 });
  const phone = await overflows(page);
  await page.screenshot({ path: join(ART, 'states-s3-phone.png'), fullPage: true });
  assert.ok(phone.page <= 0, `at phone width the page is ${phone.page}px too wide`);
});
