/**
 * Issue 19, the pictures: the UI's cluster, leases, services and heads pages
 * in a real headless Chromium against a real `bootherd serve` in a lab
 * namespace, with real data: ISC dhclient speaking as iPXE gets n001 and n002
 * their leases and DHCP stages, curl from n001's namespace fetches its script,
 * kernel and initrd and calls back booted (n002 stops after its script), a
 * third dhclient takes a pool address, and telegraf-shaped cpu/mem points
 * posted to the head's /write reach a real influxd, which the head queries.
 * Chromium runs in the head's namespace. The charts must hold the data and
 * have drawn pixels; the tables must show it. Screenshots go to
 * test/artifacts/; with BOOTHERD_DOC_IMAGES=1, two also to docs/img/ (the
 * pictures in docs/http.md), so a plain run leaves the tracked files alone.
 * Then three heads on etcd: the heads page names the one the election
 * chose, and when that head stops, the new leader and the stopped head.
 */
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.ts';
import { startHeads, type HeadProc } from '../helpers/heads.ts';
import { createInfluxd, type Influxd } from '../helpers/influxd.ts';
import { startLabServer } from '../helpers/lab-server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ARTIFACTS = path.join(ROOT, 'test/artifacts');
const DOC_IMAGES = process.env['BOOTHERD_DOC_IMAGES'] === '1' ? path.join(ROOT, 'docs/img') : undefined;
const WAIT = { timeout: 20_000 };
const HEAD = 'http://198.18.0.1';
const MACS = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:99'] as const;

const config = (state: string) => `
cluster: { name: lab, domain: lab.test }
head: { name: head1, address: 198.18.0.1 }
state: ${state}
files: ${path.join(path.dirname(state), 'files')}
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: 198.18.0.100-198.18.0.150
profiles:
  compute: { kernel: vmlinuz, initrd: initrd.img }
nodes:
  - { name: n001, macs: [${MACS[0]}], ip: 198.18.0.11, profile: compute }
  - { name: n002, macs: [${MACS[1]}], ip: 198.18.0.12, profile: compute }
tftp: { enabled: false }
ntp: { enabled: false }
dns: { enabled: false }
http: { readOpenTo: none }
telemetry: { selfInterval: 0, maxBackoff: 1 }
`;

// What the page functions below use of the browser's globals (the project's lib has no DOM).
interface Canvas { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } }
declare const document: { getElementById(id: string): Canvas };

/** Pixels of a canvas that are not transparent: Chart.js drew something. */
const drawnPixels = (page: Page, id: string) => page.evaluate((id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
  return n;
}, id);

interface ChartData { labels: string[]; datasets: Array<{ label: string; data: unknown[] }> }
declare const Chart: { getChart(id: string): { data: ChartData } | undefined };
const chartData = (page: Page, id: string) => page.evaluate((id) => {
  const d = Chart.getChart(id)!.data;
  return { labels: d.labels, datasets: d.datasets.map((s) => ({ label: s.label, data: s.data })) } as ChartData;
}, id);

t.test('UI pictures: cluster, leases, services and heads pages with real data', async (t) => {
  let influx: Influxd | undefined;
  const s = await startLabServer(t, {
    tag: 'bhu', clients: 3, clientMac: (i) => MACS[i]!, config,
    before: async (lab, dir) => {
      mkdirSync(path.join(dir, 'files'));
      writeFileSync(path.join(dir, 'files', 'vmlinuz'), Buffer.alloc(64 << 10, 1));
      writeFileSync(path.join(dir, 'files', 'initrd.img'), Buffer.alloc(128 << 10, 2));
      influx = createInfluxd(lab, lab.head.ns, '127.0.0.1', path.join(dir, 'influxdb'));
      await influx.start();
    },
  });
  const [n1, n2, pool] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const token = readFileSync(path.join(s.dir, 'state', 'api-token'), 'utf8').trim();
  const ingest = readFileSync(path.join(s.dir, 'state', 'ingest-token'), 'utf8').trim();
  const curl = (ns: string, ...args: string[]) => s.lab.run(ns, 'curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}', ...args], 30_000).stdout;

  // Two nodes boot as iPXE does: DHCP (vendor class PXEClient, user class iPXE), then HTTP.
  const conf = path.join(s.dir, 'ipxe-dhclient.conf');
  writeFileSync(conf, ['option pxe-arch code 93 = unsigned integer 16;', 'send pxe-arch 0;', 'send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";', 'send user-class "iPXE";'].join('\n') + '\n');
  const dhclient = (ns: string, ...extra: string[]) => s.lab.exec(ns, 'dhclient', ['-1', '-lf', path.join(s.dir, `${ns}.leases`), '-pf', path.join(s.dir, `${ns}.pid`), '-sf', '/bin/true', ...extra, 'eth0'], 30_000);
  dhclient(n1.ns, '-cf', conf);
  dhclient(n2.ns, '-cf', conf);
  dhclient(pool.ns);
  t.match(readFileSync(path.join(s.dir, `${pool.ns}.leases`), 'utf8'), /fixed-address 198\.18\.0\.100;/, 'the third client has a pool address');
  // dhclient ran with no script: the address goes on the interface by hand, as its script would.
  s.lab.exec(n1.ns, 'ip', ['addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
  s.lab.exec(n2.ns, 'ip', ['addr', 'add', '198.18.0.12/24', 'dev', 'eth0']);
  t.equal(curl(n1.ns, `${HEAD}/boot/52-54-00-00-00-01.ipxe`), '200', 'n001 fetches its script');
  t.equal(curl(n1.ns, `${HEAD}/files/vmlinuz`), '200', 'its kernel');
  t.equal(curl(n1.ns, `${HEAD}/files/initrd.img`), '200', 'its initrd');
  t.equal(curl(n1.ns, '-X', 'POST', `${HEAD}/boot/52-54-00-00-00-01/booted`), '200', 'and calls back booted');
  t.equal(curl(n2.ns, `${HEAD}/boot/52-54-00-00-00-02.ipxe`), '200', 'n002 gets as far as its script');
  // The pool client (a MAC of no node) asks for its script: the discovery script, a stage kept in the head's memory.
  t.equal(curl(n2.ns, `${HEAD}/boot/52-54-00-00-00-99.ipxe`), '200', 'the pool client gets the discovery script');

  // Telegraf's cpu and mem inputs, as outputs.influxdb posts them with the ingest token.
  const now = Math.floor(Date.now() / 1000);
  const lines = [
    `cpu,cpu=cpu-total,host=n001 usage_idle=37.5,usage_user=55,usage_system=7.5 ${now}`,
    `cpu,cpu=cpu0,host=n001 usage_idle=1,usage_user=99,usage_system=0 ${now}`,
    `mem,host=n001 used_percent=71.5,total=8589934592i,used=6141803479i ${now}`,
    `cpu,cpu=cpu-total,host=n002.lab.test usage_idle=90,usage_user=8,usage_system=2 ${now}`,
    `mem,host=n002.lab.test used_percent=22.25,total=8589934592i,used=1911260446i ${now}`,
  ];
  const batch = path.join(s.dir, 'telegraf.lp');
  writeFileSync(batch, lines.join('\n') + '\n');
  t.equal(curl(n1.ns, '--data-binary', `@${batch}`, '-H', `Authorization: Token ${ingest}`, `${HEAD}/write?db=telegraf&precision=s`), '204', 'telegraf points accepted by /write');
  const stored = (): number => { try { return influx!.rows('SELECT count("usage_idle") FROM "cpu"', 'telegraf').length ? Number(influx!.rows('SELECT count("usage_idle") FROM "cpu"', 'telegraf')[0]![1]) : 0; } catch { return 0; } };
  // The relay delivers asynchronously: ask influxd until the points are there (bounded, not timed).
  for (let i = 0; i < 120 && stored() < 3; i++) await new Promise((r) => setTimeout(r, 250));
  t.equal(stored(), 3, 'the points are in the head\'s InfluxDB');

  // The JSON behind the pictures needs the API's read access like the rest of the API.
  t.equal(curl(s.lab.head.ns, `${HEAD}/api/v1/cluster`), '401', '/api/v1/cluster without the token: 401');
  t.equal(curl(s.lab.head.ns, `${HEAD}/api/v1/services`), '401', '/api/v1/services without the token: 401');
  t.equal(curl(s.lab.head.ns, '-H', `Authorization: Bearer ${token}`, `${HEAD}/api/v1/cluster`), '200', 'and 200 with it');
  t.equal(curl(s.lab.head.ns, `${HEAD}/ui/chart.umd.min.js`), '200', 'Chart.js is served by the head (no CDN)');

  mkdirSync(ARTIFACTS, { recursive: true });
  const { page, cspViolations } = await launchChromium(t, { ns: s.lab.head.ns, viewport: { width: 1100, height: 760 } });
  await page.goto(`${HEAD}/`);
  await page.locator('#login').waitFor({ state: 'visible', ...WAIT });
  await page.fill('#token', token);
  await page.click('#login-form button');

  // ---- cluster ----
  await page.locator('#overview').waitFor({ state: 'visible', ...WAIT });
  await page.waitForFunction(() => (Chart.getChart('c-usage')?.data.labels?.length ?? 0) >= 2, undefined, WAIT);
  const boots = await chartData(page, 'c-boots');
  t.same([...boots.labels].sort(), ['n001', 'n002'], 'the boot storm has a row per node that booted');
  const rowsOf = (label: string) => (boots.datasets.find((d) => d.label === label)?.data as Array<{ y: string }>).map((p) => p.y).sort();
  t.same(rowsOf('DHCP'), ['n001', 'n002'], 'both had their DHCP stage');
  t.same(rowsOf('script'), ['n001', 'n002'], 'both fetched a script');
  t.same(rowsOf('kernel'), ['n001'], 'n001 loaded its kernel');
  t.same(rowsOf('booted'), ['n001'], 'n001 booted; n002 is still at its script');
  const rates = await chartData(page, 'c-rates');
  t.ok(rates.labels.length >= 1, 'the request rates have sampled points');
  t.ok((rates.datasets.find((d) => d.label === 'dhcp')!.data as number[]).some((v) => v > 0), 'DHCP requests show in the rates');
  t.ok((rates.datasets.find((d) => d.label === 'http')!.data as number[]).some((v) => v > 0), 'HTTP requests too');
  const pools = await chartData(page, 'c-pools');
  t.same(pools.labels, ['198.18.0.0/24 (51)'], 'one pool of 51 addresses');
  t.same(pools.datasets.find((d) => d.label === 'bound')!.data, [1], 'one pool address bound (the pool client)');
  t.same(pools.datasets.find((d) => d.label === 'free')!.data, [50], 'fifty free');
  const usage = await chartData(page, 'c-usage');
  t.same(usage.labels, ['n001', 'n002'], 'CPU/memory per node, busiest first, the domain taken off the host tag');
  t.same(usage.datasets.map((d) => d.data), [[62.5, 10], [71.5, 22.3]], 'CPU (100 - usage_idle of cpu-total) and memory (used_percent) from InfluxDB');
  for (const id of ['c-boots', 'c-rates', 'c-pools', 'c-usage']) t.ok(await drawnPixels(page, id) > 500, `${id}: the canvas has pixels drawn`);
  t.match(await page.locator('[data-tile="booted"]').innerText(), /^1 booted/, 'the booted tile counts n001');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-cluster.png'), fullPage: true });
  if (DOC_IMAGES) await page.screenshot({ path: path.join(DOC_IMAGES, 'ui-cluster.png'), fullPage: true });

  // ---- leases ----
  await page.click('#nav a[data-page="leases"]');
  await page.locator('tr[data-lease="198.18.0.100"]').waitFor(WAIT);
  t.match(await page.locator('tr[data-lease="198.18.0.11"]').innerText(), /198\.18\.0\.11\s+52:54:00:00:00:01\s+n001\s+bound[\s\S]*booted/, 'n001\'s lease, with its boot stage');
  t.match(await page.locator('tr[data-lease="198.18.0.12"]').innerText(), /n002\s+bound[\s\S]*iPXE script/, 'n002\'s, at its script');
  t.match(await page.locator('tr[data-lease="198.18.0.100"]').innerText(), /198\.18\.0\.100\s+52:54:00:00:00:99\s+pool\b[^\t]*\s+bound[\s\S]*iPXE script/, 'the pool client, with its last boot stage (its discovery script)');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-leases.png'), fullPage: true });
  if (DOC_IMAGES) await page.locator('#leases').screenshot({ path: path.join(DOC_IMAGES, 'ui-leases.png') });

  // ---- services ----
  await page.click('#nav a[data-page="services"]');
  await page.locator('[data-service="dhcp"] tr[data-metric="bootherd_dhcp_received_total"]').first().waitFor(WAIT);
  t.equal(await page.locator('[data-service="dhcp"] [data-state]').getAttribute('data-state'), 'running', 'DHCP is running');
  t.equal(await page.locator('[data-service="telemetry"] [data-state]').getAttribute('data-state'), 'running', 'telemetry is running');
  t.equal(await page.locator('[data-service="tftp"]').count(), 0, 'TFTP is off in the cluster file: not built, not listed');
  t.match(await page.locator('[data-service="telemetry"]').innerText(), /telemetry_accepted_points_total\s+5\b/, 'the telemetry counters: the 5 points accepted');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-services.png'), fullPage: true });

  // ---- heads ----
  await page.click('#nav a[data-page="heads"]');
  await page.locator('tr[data-head="head1"]').waitFor(WAIT);
  t.match(await page.locator('tr[data-head="head1"]').innerText(), /head1 \(this head\)\s+198\.18\.0\.1\s+alive\s+leader/, 'one head, alive, leading');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-heads.png'), fullPage: true });

  t.same(cspViolations, [], 'every page runs under the Content-Security-Policy, Chart.js included');
});

t.test('UI heads page: three heads on etcd, the leader, and a new one when it stops', async (t) => {
  const config = () => 'subnets:\n  - network: 198.18.0.0/24\ntftp: { enabled: false }\ndns: { enabled: false }\ndhcp: { enabled: false }\ntelemetry: { enabled: false }\n';
  const h = await startHeads(t, { tag: 'bhuh', config });
  const statusOf = (head: HeadProc) => {
    const r = h.api(head.host, head, 'GET', '/api/v1/status');
    return r.status === 200 ? JSON.parse(r.body) as { services: { ntpLeader?: { leader?: string }; heads?: { heads: Array<{ alive: boolean }> } } } : undefined;
  };
  // The registry and the election settle once the heads' etcd sessions exist: ask until every
  // head sees the three alive and names the same leader (bounded).
  let leader: string | undefined;
  for (let i = 0; i < 150 && !leader; i++) {
    const all = h.heads.map((x) => statusOf(x)?.services);
    const named = all.map((x) => x?.ntpLeader?.leader);
    if (named[0] && named.every((n) => n === named[0]) && all.every((x) => x?.heads?.heads.every((y) => y.alive))) leader = named[0];
    else await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(leader, `every head sees the three alive and names the same leader (${leader})`);
  const viewer = h.heads.find((x) => x.name !== leader)!;
  const { page, cspViolations } = await launchChromium(t, { ns: viewer.host.ns, viewport: { width: 1000, height: 420 } });
  // Reads are open to the cluster networks here (http.readOpenTo's default): no token prompt.
  await page.goto(`http://${viewer.address}/#/heads`);
  await page.locator('tr[data-head="hc"]').waitFor(WAIT);
  const leads = () => page.locator('td[data-leads="true"]').evaluateAll((tds) => tds.map((td) => (td.parentNode as unknown as { dataset: { head: string } }).dataset.head));
  t.same(await leads(), [leader], 'the heads page marks the elected head, and only it');
  for (const x of h.heads) t.match(await page.locator(`tr[data-head="${x.name}"]`).innerText(), new RegExp(`${x.name}${x === viewer ? ' \\(this head\\)' : ''}\\s+${x.address.replace(/\./g, '\\.')}\\s+alive`), `${x.name} is alive`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-heads-etcd.png'), fullPage: true });

  // The leader stops: its etcd session is revoked, another head is elected, and the page follows (it polls).
  await h.heads.find((x) => x.name === leader)!.stop();
  await page.locator(`tr[data-head="${leader}"] .state.bad`).waitFor(WAIT);
  t.match(await page.locator(`tr[data-head="${leader}"]`).innerText(), /\bdown\b/, 'the stopped head shows as down');
  await page.waitForFunction((old) => {
    const td = (globalThis as unknown as { document: { querySelector(s: string): { parentNode: { dataset: { head: string } } } | null } }).document.querySelector('td[data-leads="true"]');
    return td !== null && td.parentNode.dataset.head !== old;
  }, leader, WAIT);
  const next = await leads();
  t.equal(next.length, 1, 'one head leads');
  t.not(next[0], leader, `a live head leads now (${next[0]})`);
  t.equal(statusOf(viewer)?.services.ntpLeader?.leader, next[0], 'the one the election names');
  await page.screenshot({ path: path.join(ARTIFACTS, 'ui-heads-failover.png'), fullPage: true });
  t.same(cspViolations, []);
});
