// bootherd UI: a node list and a node's boot timeline, kept live by the API's
// event stream (/api/v1/events). Plain DOM, no framework, no build step.
'use strict';

const STAGES = { 'dhcp-offer': 'DHCP offer', 'dhcp-ack': 'DHCP ack', 'tftp-loader': 'loader sent', 'ipxe-script': 'iPXE script', 'kernel': 'kernel', 'initrd': 'initrd', 'booted': 'booted' };
const nodes = new Map();
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

function route() {
  const m = /^#\/node\/(.+)$/.exec(location.hash);
  $('list').hidden = !!m;
  $('detail').hidden = !m;
  if (m) renderDetail(decodeURIComponent(m[1])); else renderList();
}

function refresh() {
  const m = /^#\/node\/(.+)$/.exec(location.hash);
  if (m) renderDetail(decodeURIComponent(m[1])); else renderList();
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
    const [status, list] = await Promise.all([api('/api/v1/status'), api('/api/v1/nodes')]);
    $('cluster').textContent = `${status.name} · ${status.domain} · head ${status.head.address}`;
    for (const n of list) nodes.set(n.name, n);
  } catch (e) {
    if (e.status === 401) { $('login').hidden = false; return; }
    throw e;
  }
  window.addEventListener('hashchange', route);
  $('filter').addEventListener('input', renderList);
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
