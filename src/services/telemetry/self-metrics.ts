/**
 * bootherd's own counters and gauges as line protocol, in the shape
 * telegraf's prometheus input gives them (metric_version 2): one measurement
 * `prometheus`, the labels as tags plus `host`, the metric name as the field
 * (names keep Prometheus conventions: base units, `_total` counters).
 */
import type { Metrics } from '../../metrics.ts';

const escTag = (v: string): string => v.replace(/[,= \\]/g, (c) => `\\${c}`).replace(/\n/g, ' ');

/** The Prometheus text of `metrics` as line protocol at `nowNs`; series with no finite value are left out. */
export function metricsAsLineProtocol(metrics: Metrics, host: string, nowNs: bigint): { body: string; points: number } {
  const lines: string[] = [];
  for (const line of metrics.render().split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const tags = [`host=${escTag(host) || 'head'}`];
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) if (v) tags.push(`${k}=${escTag(v)}`);
    tags.sort();
    lines.push(`prometheus,${tags.join(',')} ${m[1]}=${value} ${nowNs}`);
  }
  return { body: lines.join('\n') + '\n', points: lines.length };
}
