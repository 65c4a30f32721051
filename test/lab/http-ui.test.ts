/**
 * The browser UI in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): the token prompt, the node list, a node added through the
 * API appearing without a reload, a boot stage change followed live in the
 * list and in the node's timeline. Screenshots go to test/artifacts/.
 * The server listens on 127.0.0.1 only.
 */
import t from 'tap';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../helpers/chromium.ts';
import { startHttpServer } from '../helpers/http-server.ts';

const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../artifacts');
const WAIT = { timeout: 15_000 };
/** Chart.js in the page (window.Chart). */
declare const Chart: { getChart(id: string): { data: { labels?: string[] } } | undefined };

t.test('UI: list, live node, live boot stage, timeline', async (t) => {
  const s = await startHttpServer(t, {
    extra: `
profiles:
  compute: { kernel: vmlinuz, initrd: initrd.img }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: compute }
`,
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  const { page, cspViolations } = await launchChromium(t);

  await page.goto(s.base + '/#/nodes');
  await page.locator('#login').waitFor({ state: 'visible', ...WAIT });
  t.pass('without the token, the page asks for it');
  await page.fill('#token', s.token);
  await page.click('#login-form button');
  await page.locator('tr[data-node="n001"]').waitFor(WAIT);
  t.match(await page.locator('tr[data-node="n001"]').innerText(), /n001\s+198\.18\.0\.11\s+52:54:00:00:00:01\s+compute\s+-\s+never booted/, 'the node list');
  await page.locator('#live.on').waitFor(WAIT);
  t.pass('the event stream is connected');
  t.equal(await page.evaluate('document.cookie'), '', 'the token cookie is HttpOnly: the page\'s script cannot read it');

  const res = await s.authed('/api/v1/nodes', { method: 'POST', json: { name: 'n002', macs: '52:54:00:00:00:02', ip: '198.18.0.12', profile: 'compute' } });
  t.equal(res.status, 201);
  await page.locator('tr[data-node="n002"]').waitFor(WAIT);
  t.pass('a node added through the API appears without a reload');

  await fetch(`${s.base}/boot/52-54-00-00-00-02.ipxe`);
  await page.locator('tr[data-node="n002"] [data-stage="ipxe-script"]').waitFor(WAIT);
  t.pass('its boot stage follows: iPXE script');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-nodes.png'), fullPage: true });

  await page.click('tr[data-node="n002"] a');
  await page.locator('#d-timeline li[data-stage="ipxe-script"]').waitFor(WAIT);
  t.match(await page.locator('#d-facts').innerText(), /198\.18\.0\.12/, 'the detail page');
  await s.authed('/boot/52-54-00-00-00-02/booted', { method: 'POST' });
  await page.locator('#d-timeline li[data-stage="booted"]').waitFor(WAIT);
  t.same(await page.locator('#d-timeline li').evaluateAll((els) => els.map((e) => e.getAttribute('data-stage'))), ['ipxe-script', 'booted'], 'the timeline grows live');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-node.png'), fullPage: true });

  // A phone: the list becomes cards and stays readable.
  await page.setViewportSize({ width: 390, height: 760 });
  await page.goto(s.base + '/#/nodes');
  await page.locator('tr[data-node="n002"] [data-stage="booted"]').waitFor(WAIT);
  t.equal(await page.locator('#nodes thead').isVisible(), false, 'no table header on a phone');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-phone.png'), fullPage: true });
  // The cluster page on a phone: the pictures stack in one column; n002's boot is in the storm.
  await page.goto(s.base + '/#/');
  // A function, not a string: the page's CSP forbids eval.
  await page.waitForFunction(() => (Chart.getChart('c-boots')?.data.labels ?? []).includes('n002'), undefined, WAIT);
  t.pass('the cluster page draws on a phone');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-phone-cluster.png'), fullPage: true });
  await page.goto(s.base + '/#/nodes');

  await s.authed('/api/v1/nodes/n002', { method: 'DELETE' });
  await page.locator('tr[data-node="n002"]').waitFor({ state: 'detached', ...WAIT });
  t.pass('a removed node disappears');

  // The interactive API page: its files from this server only, the document read with the UI's cookie.
  const outside: string[] = [];
  page.on('request', (r) => { if (!r.url().startsWith(s.base)) outside.push(r.url()); });
  await page.setViewportSize({ width: 1000, height: 640 });
  await page.goto(s.base + '/api/docs/');
  await page.locator('.opblock-summary-path[data-path="/api/v1/nodes/{name}"]').first().waitFor(WAIT);
  t.pass('the API page shows the routes of the generated document');
  t.match(await page.locator('.info .title').innerText(), /bootherd/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-api-docs.png') });
  t.same(outside, [], 'the API page loads nothing from outside the head');
  t.same(cspViolations, [], 'the pages run under their Content-Security-Policy without a violation');
});
