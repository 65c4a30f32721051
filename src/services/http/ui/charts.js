// bootherd UI: the cluster page's pictures, drawn by Chart.js (window.Chart,
// served by the head from its npm package) from GET /api/v1/cluster.
'use strict';

// The boot stages grouped as an admin reads a boot: DHCP, loader, script, kernel, booted.
const BOOT_GROUPS = [
  { key: 'dhcp', label: 'DHCP', stages: ['dhcp-offer', 'dhcp-ack'], color: '#8fb8e8' },
  { key: 'loader', label: 'loader', stages: ['tftp-loader'], color: '#b39ddb' },
  { key: 'script', label: 'script', stages: ['ipxe-script'], color: '#f0c05a' },
  { key: 'kernel', label: 'kernel', stages: ['kernel', 'initrd'], color: '#f08a5d' },
  { key: 'booted', label: 'booted', stages: ['booted'], color: '#3fae5a' },
];
const GROUP_OF = Object.fromEntries(BOOT_GROUPS.flatMap((g) => g.stages.map((s) => [s, g])));
const PROTOCOL_COLORS = { dhcp: '#0b6bcb', tftp: '#8e44ad', dns: '#16a085', ntp: '#7f8c8d', http: '#e67e22', telemetry: '#c0392b' };
/** A boot belongs to the storm when it started within this long before the latest one. */
const STORM_WINDOW_MS = 3600_000;
/** A stage still running is drawn up to now, but no further than this past its start. */
const OPEN_STAGE_MAX_MS = 15 * 60_000;

const charts = {};

function chartOn(id, config) {
  if (charts[id]) {
    charts[id].data = config.data;
    if (config.options) charts[id].options = config.options;
    charts[id].update('none');
    return charts[id];
  }
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", sans-serif';
  charts[id] = new Chart(document.getElementById(id), config);
  return charts[id];
}

const baseOptions = () => ({ animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } } });

/**
 * Each node's boot as one row of segments, one per stage group, from the
 * stage's first time to the next group's; x is seconds since the storm's first start.
 */
function bootSegments(boots, now) {
  if (!boots.length) return { t0: now, rows: [] };
  const latest = Math.max(...boots.map((b) => b.startedAt));
  const storm = boots.filter((b) => b.startedAt >= latest - STORM_WINDOW_MS).sort((a, b) => a.startedAt - b.startedAt || a.node.localeCompare(b.node));
  const t0 = storm[0].startedAt;
  const rows = storm.map((b) => {
    const marks = [];
    for (const s of b.stages) {
      const g = GROUP_OF[s.stage];
      if (g && (!marks.length || marks[marks.length - 1].group !== g)) marks.push({ group: g, at: s.at });
    }
    const segs = marks.map((m, i) => {
      const next = marks[i + 1];
      const open = !next && m.group.key !== 'booted';
      const to = next ? next.at : open ? Math.min(now, m.at + OPEN_STAGE_MAX_MS) : m.at;
      return { group: m.group, from: m.at, to, open };
    });
    return { node: b.node, segs };
  });
  return { t0, rows };
}

function drawBoots(view) {
  const { t0, rows } = bootSegments(view.boots, view.now);
  const end = Math.max(t0 + 1000, ...rows.flatMap((r) => r.segs.map((s) => s.to)));
  // A zero-length stage (booted, or two stages in one millisecond) still shows as a sliver.
  const minWidth = (end - t0) / 1000 / 150;
  const datasets = BOOT_GROUPS.map((g) => ({
    label: g.label, backgroundColor: g.color, borderWidth: 0,
    data: rows.flatMap((r) => r.segs.filter((s) => s.group === g).map((s) => {
      const a = (s.from - t0) / 1000;
      return { y: r.node, x: [a, Math.max((s.to - t0) / 1000, a + minWidth)], open: s.open };
    })),
  }));
  document.getElementById('boots-box').style.height = `${Math.max(140, rows.length * 18 + 70)}px`;
  const note = document.getElementById('boots-note');
  note.textContent = rows.length
    ? `${rows.length} node${rows.length === 1 ? '' : 's'}${view.bootsTotal > rows.length ? ` of ${view.bootsTotal}` : ''} · seconds since ${new Date(t0).toLocaleTimeString()}`
    : 'no boot recorded yet';
  const options = baseOptions();
  Object.assign(options, {
    indexAxis: 'y',
    datasets: { bar: { grouped: false, barPercentage: 0.8, categoryPercentage: 1 } },
    scales: { x: { type: 'linear', min: 0, title: { display: true, text: 'seconds' } }, y: { type: 'category', labels: rows.map((r) => r.node) } },
  });
  options.plugins.tooltip = { callbacks: { label: (c) => `${c.dataset.label}: +${c.raw.x[0].toFixed(1)} s → ${c.raw.open ? 'now' : `+${c.raw.x[1].toFixed(1)} s`}` } };
  chartOn('c-boots', { type: 'bar', data: { labels: rows.map((r) => r.node), datasets }, options });
}

function drawRates(view) {
  const points = view.rates.points;
  const protocols = Object.keys(PROTOCOL_COLORS);
  const datasets = protocols.map((p) => ({
    label: p, borderColor: PROTOCOL_COLORS[p], backgroundColor: PROTOCOL_COLORS[p], pointRadius: 1.5, borderWidth: 2, tension: 0.2,
    data: points.map((pt) => Math.round(pt.perSecond[p] * 100) / 100),
  }));
  const options = baseOptions();
  options.scales = { y: { beginAtZero: true, title: { display: true, text: 'requests/s' } }, x: { ticks: { maxTicksLimit: 6 } } };
  chartOn('c-rates', { type: 'line', data: { labels: points.map((pt) => new Date(pt.at).toLocaleTimeString()), datasets }, options });
}

function drawPools(view) {
  const pools = view.pools;
  document.getElementById('pools-note').textContent = pools.length ? '' : 'no pool: DHCP is off, or no subnet has a pool';
  const parts = [['bound', '#0b6bcb'], ['declined', '#d64545'], ['reserved', '#b8c2cc'], ['free', '#dafbe1']];
  const datasets = parts.map(([k, color]) => ({ label: k, backgroundColor: color, borderColor: '#9aa5b1', borderWidth: k === 'free' ? 1 : 0, maxBarThickness: 36, data: pools.map((p) => p[k]) }));
  const options = baseOptions();
  Object.assign(options, { indexAxis: 'y', scales: { x: { stacked: true, beginAtZero: true, title: { display: true, text: 'addresses' } }, y: { stacked: true } } });
  chartOn('c-pools', { type: 'bar', data: { labels: pools.map((p) => `${p.subnet} (${p.size})`), datasets }, options });
}

/** The busiest nodes first, at most this many bars. */
const USAGE_SHOWN = 60;

function drawUsage(view) {
  const note = document.getElementById('usage-note');
  const u = view.usage;
  const nodes = u ? [...u.nodes].sort((a, b) => (b.cpu ?? -1) - (a.cpu ?? -1)).slice(0, USAGE_SHOWN) : [];
  if (!u) note.textContent = 'telemetry is off on this head';
  else if (u.error) note.textContent = u.error;
  else if (!u.nodes.length) note.textContent = `no telegraf cpu/mem data in the last 10 minutes (${u.database} at ${u.influxdb})`;
  else note.textContent = `last values from telegraf, ${u.nodes.length} host${u.nodes.length === 1 ? '' : 's'}${u.nodes.length > nodes.length ? `, busiest ${nodes.length} shown` : ''}`;
  const options = baseOptions();
  options.scales = { y: { beginAtZero: true, max: 100, title: { display: true, text: '% used' } } };
  chartOn('c-usage', {
    type: 'bar',
    data: {
      labels: nodes.map((n) => n.node || n.host),
      datasets: [
        { label: 'CPU %', backgroundColor: '#f08a5d', maxBarThickness: 28, data: nodes.map((n) => n.cpu) },
        { label: 'memory %', backgroundColor: '#0b6bcb', maxBarThickness: 28, data: nodes.map((n) => n.mem) },
      ],
    },
    options,
  });
}

/** Draws (or redraws in place) every picture of the cluster page. */
function drawCluster(view) {
  drawBoots(view);
  drawRates(view);
  drawPools(view);
  drawUsage(view);
}
