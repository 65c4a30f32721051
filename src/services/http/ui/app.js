// bootherd UI: the cluster page (pictures, charts.js), the node list and a
// node's boot timeline (kept live by the event stream /api/v1/events), the
// leases, the services and the heads. Plain DOM, no framework, no build step.
'use strict';

const STAGES = { 'dhcp-offer': 'DHCP offer', 'dhcp-ack': 'DHCP ack', 'tftp-loader': 'loader sent', 'ipxe-script': 'iPXE script', 'kernel': 'kernel', 'initrd': 'initrd', 'booted': 'booted' };
const nodes = new Map();
/** How often the pages that poll (cluster, leases, services, heads) ask again. */
const POLL_MS = 5000;
const PAGES = ['overview', 'list', 'detail', 'leases', 'services', 'heads'];
let pollTimer;
let headStatus;
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function lastStage(n) {
  const st = n.boot && n.boot.stages[n.boot.stages.length - 1];
  return st || null;
}

function stageBadge(st) {
  if (!st) return el('span', { class: 'ago' }, 'never booted');
  return el('span', {}, el('span', { class: `stage ${st.stage}`, 'data-stage': st.stage }, STAGES[st.stage] || st.stage), ' ', el('span', { class: 'ago', 'data-at': st.at }, ago(st.at)));
}

// A node on a proxy subnet has the address the site's DHCP server gave it, once bootherd has seen it.
function addressText(n) {
  if (n.ip === null || n.ip === undefined) return '— (site DHCP)';
  return n.ipFrom && n.ipFrom !== 'reservation' ? `${n.ip} (seen: ${n.ipFrom})` : n.ip;
}

function leaseText(n) {
  if (!n.lease) return '-';
  return n.lease.state === 'bound' && n.lease.expiresAt > Date.now() ? 'bound' : n.lease.state === 'bound' ? 'expired' : n.lease.state;
}

function row(n) {
  const link = el('a', { href: `#/node/${encodeURIComponent(n.name)}` }, n.name);
  const tr = el('tr', { 'data-node': n.name },
    el('td', { 'data-label': 'Name' }, link),
    el('td', { 'data-label': 'Address', class: 'mono' }, addressText(n)),
    el('td', { class: 'mac mono' }, n.macs.join(' ')),
    el('td', { 'data-label': 'Profile' }, n.profile),
    el('td', { 'data-label': 'Lease' }, leaseText(n)),
    el('td', { 'data-label': 'Boot', class: 'boot' }, stageBadge(lastStage(n))));
  tr.addEventListener('click', (ev) => { if (ev.target.tagName !== 'A') location.hash = `#/node/${encodeURIComponent(n.name)}`; });
  return tr;
}

function renderList() {
  const filter = $('filter').value.trim().toLowerCase();
  const body = $('nodes').tBodies[0];
  const shown = [...nodes.values()]
    .filter((n) => !filter || [n.name, n.ip ?? '', n.profile, ...n.macs].some((v) => v.toLowerCase().includes(filter)))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  body.replaceChildren(...shown.map(row));
  $('count').textContent = `(${nodes.size})`;
  $('empty').hidden = nodes.size > 0;
}

function renderDetail(name) {
  const n = nodes.get(name);
  $('d-name').textContent = n ? n.name : `${name} (not found)`;
  const facts = $('d-facts');
  const tl = $('d-timeline');
  if (!n) { facts.replaceChildren(); tl.replaceChildren(); return; }
  const pairs = [['Address', addressText(n)], ['MACs', n.macs.join(', ')], ['Profile', n.profile], ['Lease', leaseText(n) + (n.lease ? ` (until ${new Date(n.lease.expiresAt).toLocaleString()})` : '')], ['Declared in', n.source === 'config' ? 'cluster file' : 'API']];
  facts.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  if (!n.boot) { tl.replaceChildren(el('li', {}, 'No boot recorded yet.')); return; }
  const t0 = n.boot.startedAt;
  tl.replaceChildren(...n.boot.stages.map((s) => el('li', { 'data-stage': s.stage },
    el('strong', {}, STAGES[s.stage] || s.stage), ' ', new Date(s.at).toLocaleTimeString(),
    el('span', { class: 'delta' }, `+${((s.at - t0) / 1000).toFixed(1)} s${s.detail ? ` · ${s.detail}` : ''}`))));
}

function pageOf(hash) {
  const m = /^#\/node\/(.+)$/.exec(hash);
  if (m) return { page: 'detail', name: decodeURIComponent(m[1]) };
  const p = { '#/nodes': 'list', '#/leases': 'leases', '#/services': 'services', '#/heads': 'heads' }[hash];
  return { page: p || 'overview' };
}

function route() {
  const { page } = pageOf(location.hash);
  for (const id of PAGES) $(id).hidden = id !== page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('here', a.dataset.page === page || (page === 'detail' && a.dataset.page === 'list'));
  clearTimeout(pollTimer);
  refresh();
  poll();
}

/** Re-renders the page shown from what is held (the event stream's nodes). */
function refresh() {
  const { page, name } = pageOf(location.hash);
  if (page === 'detail') renderDetail(name);
  else if (page === 'list') renderList();
  else if (page === 'leases') renderLeases();
}

/** The pages drawn from the API rather than the event stream ask again every POLL_MS while shown. */
async function poll() {
  const { page } = pageOf(location.hash);
  const load = { overview: loadCluster, leases: loadLeases, services: loadServices, heads: loadHeads }[page];
  if (!load) return;
  try { await load(); } catch (e) { console.error(e); }
  if (pageOf(location.hash).page === page) { clearTimeout(pollTimer); pollTimer = setTimeout(poll, POLL_MS); }
}

// ---- cluster ----
async function loadCluster() {
  const view = await api('/api/v1/cluster');
  let booted = 0, booting = 0;
  for (const b of view.boots) { if (b.stages[b.stages.length - 1].stage === 'booted') booted++; else booting++; }
  const free = view.pools.reduce((a, p) => a + p.free, 0), size = view.pools.reduce((a, p) => a + p.size, 0);
  $('tiles').replaceChildren(
    el('span', { class: 'tile' }, el('b', {}, String(nodes.size)), ' nodes'),
    el('span', { class: 'tile ok', 'data-tile': 'booted' }, el('b', {}, String(booted)), ' booted'),
    el('span', { class: 'tile warn', 'data-tile': 'booting' }, el('b', {}, String(booting)), ' booting'),
    el('span', { class: 'tile' }, el('b', {}, size ? `${free}/${size}` : '-'), ' pool free'));
  drawCluster(view);
}

// ---- leases ----
let leases = [];
async function loadLeases() {
  leases = await api('/api/v1/leases');
  renderLeases();
}

/** A lease's boot stage: its node's last boot stage; a pool client's last stage this head served, else how far DHCP got. */
function leaseStage(l) {
  const n = l.node && nodes.get(l.node);
  if (n) return stageBadge(lastStage(n));
  if (l.boot) return stageBadge(l.boot);
  const st = l.state === 'offered' ? 'dhcp-offer' : l.state === 'bound' ? 'dhcp-ack' : null;
  if (!st) return el('span', { class: 'ago' }, '-');
  return el('span', {}, el('span', { class: `stage ${st}`, 'data-stage': st }, STAGES[st]), ' ', el('span', { class: 'ago', 'data-at': l.updatedAt }, ago(l.updatedAt)));
}

function leaseState(l) {
  if (l.state === 'bound' && l.expiresAt <= Date.now()) return 'expired';
  return l.state;
}

function renderLeases() {
  const filter = $('l-filter').value.trim().toLowerCase();
  const shown = leases.filter((l) => !filter || [l.ip, l.mac, l.node, l.hostname, l.state, l.subnet].some((v) => v && v.toLowerCase().includes(filter)));
  $('l-table').tBodies[0].replaceChildren(...shown.map((l) => el('tr', { 'data-lease': l.ip },
    el('td', { 'data-label': 'Address', class: 'mono' }, l.ip),
    el('td', { 'data-label': 'MAC', class: 'mono' }, l.mac),
    el('td', { 'data-label': 'Client' }, l.node ? el('a', { href: `#/node/${encodeURIComponent(l.node)}` }, l.node) : el('span', {}, 'pool', l.hostname ? el('span', { class: 'ago' }, ` ${l.hostname}`) : '')),
    el('td', { 'data-label': 'State' }, el('span', { class: `lease ${leaseState(l)}` }, leaseState(l))),
    el('td', { 'data-label': 'Expires' }, new Date(l.expiresAt).toLocaleString()),
    el('td', { 'data-label': 'Where', class: 'mono' }, [l.relay && `relay ${l.relay}`, l.interface, l.server && `by ${l.server}`].filter(Boolean).join(' · ') || '-'),
    el('td', { 'data-label': 'Boot', class: 'boot' }, leaseStage(l)))));
  $('l-count').textContent = `(${leases.length})`;
  $('l-empty').hidden = leases.length > 0;
}

// ---- services ----
/** One word for a service's state, from the fields its status() has. */
function serviceState(st) {
  if (st.running === false) return ['stopped', 'bad'];
  if (st.enabled === false) return ['off', 'muted'];
  if (typeof st.reason === 'string' && st.reason) return ['off', 'bad'];
  if (typeof st.error === 'string' && st.error) return ['error', 'bad'];
  if ('listening' in st && !st.listening) return ['not listening', 'bad'];
  return ['running', 'ok'];
}

function short(v) {
  const t = typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  return t.length > 160 ? `${t.slice(0, 157)}...` : t;
}

async function loadServices() {
  const { status: all, counters } = await api('/api/v1/services');
  // The store's counters have no service of their own in status: it shows as one too.
  const names = [...new Set([...Object.keys(all), ...Object.keys(counters)])];
  $('s-list').replaceChildren(...names.map((name) => {
    const st = all[name] || { running: true };
    const [word, cls] = serviceState(st);
    const facts = Object.entries(st).map(([k, v]) => [el('dt', {}, k), el('dd', { class: 'mono' }, short(v))]).flat();
    const rows = (counters[name] || []).flatMap((f) => (f.series.length ? f.series : [{ labels: {}, value: 0 }]).map((s) => el('tr', { 'data-metric': f.name },
      el('td', { class: 'mono', title: f.help }, f.name.replace(/^bootherd_/, '')),
      el('td', { class: 'mono' }, Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(' ')),
      el('td', { class: 'num' }, Number.isInteger(s.value) ? s.value.toLocaleString('en') : s.value.toFixed(3)))));
    return el('article', { class: 'card', 'data-service': name },
      el('h2', {}, name, ' ', el('span', { class: `state ${cls}`, 'data-state': word }, word)),
      facts.length ? el('dl', {}, ...facts) : '',
      rows.length ? el('table', { class: 'counters' }, el('tbody', {}, ...rows)) : '');
  }));
}

// ---- heads ----
async function loadHeads() {
  const status = await api('/api/v1/status');
  const reg = status.services.heads;
  const election = status.services.ntpLeader;
  const leader = election && election.leader;
  const self = status.head.name;
  // One head without etcd: it is the cluster and leads everything.
  const heads = reg ? reg.heads : [{ name: self, address: status.head.address, self: true, alive: true, configDiffers: [] }];
  $('h-table').tBodies[0].replaceChildren(...heads.map((h) => el('tr', { 'data-head': h.name },
    el('td', {}, h.name, h.self ? el('span', { class: 'ago' }, ' (this head)') : ''),
    el('td', { class: 'mono' }, h.address),
    el('td', {}, el('span', { class: `state ${h.alive ? 'ok' : 'bad'}` }, h.alive ? 'alive' : 'down')),
    el('td', { 'data-leads': String(reg ? h.name === leader : true) }, (reg ? h.name === leader : true) ? el('span', { class: 'state ok' }, 'leader') : ''),
    el('td', {}, h.clockOffsetMs === undefined ? '-' : `${Math.round(h.clockOffsetMs)} ms`),
    el('td', {}, h.configDiffers.length ? el('span', { class: 'state bad' }, `differs: ${h.configDiffers.join(', ')}`) : 'same'))));
  $('h-note').textContent = reg
    ? `etcd ${reg.etcd.reachable ? 'reachable' : 'unreachable'} at ${reg.etcd.endpoints.join(', ')}${election ? `; the NTP election ${leader ? `names ${leader}` : 'names no leader yet'}` : heads.length > 1 ? '; no election runs (NTP is off)' : '; one head: no election'}.`
    : 'One head with its own store (no etcd): it serves and leads alone.';
}

function flash(name) {
  const tr = document.querySelector(`tr[data-node="${CSS.escape(name)}"]`);
  if (tr) tr.classList.add('flash');
}

async function api(path) {
  const res = await fetch(path, { credentials: 'same-origin' });
  if (res.status === 401) throw Object.assign(new Error('unauthorized'), { status: 401 });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

function live() {
  const es = new EventSource('/api/v1/events');
  es.onopen = () => { $('live').textContent = 'live'; $('live').classList.add('on'); };
  es.onerror = () => { $('live').textContent = 'reconnecting'; $('live').classList.remove('on'); };
  es.addEventListener('node', (ev) => {
    const n = JSON.parse(ev.data);
    nodes.set(n.name, n);
    refresh();
    flash(n.name);
  });
  es.addEventListener('node-removed', (ev) => {
    nodes.delete(JSON.parse(ev.data).name);
    refresh();
  });
}

async function main() {
  try {
    let list;
    [headStatus, list] = await Promise.all([api('/api/v1/status'), api('/api/v1/nodes')]);
    $('cluster').textContent = `${headStatus.name} · ${headStatus.domain} · head ${headStatus.head.address}`;
    for (const n of list) nodes.set(n.name, n);
  } catch (e) {
    if (e.status === 401) { $('login').hidden = false; return; }
    throw e;
  }
  $('nav').hidden = false;
  window.addEventListener('hashchange', route);
  $('filter').addEventListener('input', renderList);
  $('l-filter').addEventListener('input', renderLeases);
  route();
  live();
  setInterval(() => { for (const a of document.querySelectorAll('[data-at]')) a.textContent = ago(Number(a.dataset.at)); }, 10_000);
}

// The server checks the token and sets it as an HttpOnly cookie: this script never holds it after sending.
$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const res = await fetch('/ui/session', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: $('token').value.trim() }) });
  if (res.ok) { location.reload(); return; }
  $('login-error').textContent = res.status === 401 ? 'wrong token' : `login failed: ${res.status}`;
});

main();
