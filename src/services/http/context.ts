import type { BootTimelines } from '../../cluster/timeline.ts';
import type { RootDiskProvider } from '../../boot/ipxe-script.ts';
import type { LeaseTable } from '../dhcp/leases.ts';
import type { ServiceDeps } from '../service.ts';
import type { TelemetryService } from '../telemetry/service.ts';
import type { Access } from './auth.ts';

export interface HttpServiceDeps extends ServiceDeps {
  /** Required here: the API serves the timelines. */
  readonly timelines: BootTimelines;
  /** Base URL nodes reach this service at (scripts and file URLs are built from it). */
  readonly httpBase: string;
  /** The DHCP lease table, when DHCP runs (lease release). */
  readonly leases: LeaseTable | undefined;
  /** Status of every service of the server, by name (GET /api/v1/status, /api/v1/ntp). */
  readonly serviceStatus: () => Record<string, object>;
  /** How nodes with a `root:` reach their root disk (the iSCSI service), for their iPXE scripts. */
  readonly rootDisk?: RootDiskProvider;
  /** The telemetry relay, when telemetry is enabled (the InfluxDB write endpoints). */
  readonly telemetry?: TelemetryService;
}

/** What kind of thing a route serves: labels the request metrics. */
export type RouteKind = 'api' | 'boot' | 'files' | 'loaders' | 'ui' | 'metrics' | 'events' | 'telemetry';

/** Per-route settings, in fastify's route `config`. */
export interface RouteSettings {
  readonly access: Access;
  readonly kind: RouteKind;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    kind?: RouteKind;
  }
}
