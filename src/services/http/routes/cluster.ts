/**
 * The UI's pictures as JSON, with the API's read access: the cluster view
 * (boot storm, request rates, pools, node CPU/memory from InfluxDB) and each
 * service's status with its counters.
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../../metrics.ts';
import type { ClusterViews } from '../cluster-view.ts';
import type { HttpServiceDeps } from '../context.ts';

const READ = { config: { access: 'read' as const, kind: 'api' as const } };

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

export function clusterRoutes(app: FastifyInstance, deps: HttpServiceDeps, views: ClusterViews): void {
  app.get('/api/v1/cluster', READ, async () => views.view());
  app.get('/api/v1/services', READ, async () => ({ status: deps.serviceStatus(), counters: familiesByService(deps.metrics) }));
}
