/**
 * The UI's pictures as JSON, with the API's read access: the cluster view
 * (boot storm, request rates, pools, node CPU/memory from InfluxDB) and each
 * service's status with its counters.
 */
import type { Metrics } from '../../../metrics.ts';
import { clusterView, servicesView } from '../api-schemas.ts';
import type { ClusterViews } from '../cluster-view.ts';
import type { HttpServiceDeps } from '../context.ts';
import type { HttpApp } from '../schema.ts';

const READ = { access: 'read' as const, kind: 'api' as const };

/** A counter or gauge family with its series, as the services page lists it. */
type Family = ReturnType<Metrics['snapshot']>[number];

/** Families by service: bootherd_<service>_... (dhcp, tftp, dns, ntp, http, iscsi, telemetry, store). */
export function familiesByService(metrics: Metrics): Record<string, Family[]> {
  const out: Record<string, Family[]> = {};
  for (const f of metrics.snapshot()) {
    const m = /^bootherd_([a-z0-9]+)_/.exec(f.name);
    if (m) (out[m[1]!] ??= []).push(f);
  }
  return out;
}

export function clusterRoutes(app: HttpApp, deps: HttpServiceDeps, views: ClusterViews): void {
  app.get('/api/v1/cluster', { config: READ, schema: { summary: 'the UI\'s cluster page: boots, request rates, pools, node CPU/memory', response: { 200: clusterView } } }, async () => views.view());
  app.get('/api/v1/services', { config: READ, schema: { summary: 'each service\'s status and counters', response: { 200: servicesView } } }, async () => ({ status: deps.serviceStatus(), counters: familiesByService(deps.metrics) }));
}
