/**
 * Configuration files for the reference servers the benchmarks (and the DNS
 * vector recorder) run beside bootherd, written in one place so that every
 * comparison meets the same nginx and the same NSD.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface NginxSite {
  /** Directory for nginx.conf, its pid, logs and temp paths (created). */
  readonly dir: string;
  readonly listen: string;
  /** The server block's body after `listen`, e.g. `root /srv;` or a location. */
  readonly site: string;
  readonly workerConnections?: number;
  /** Extra `http {}` directives (timeouts, types). */
  readonly http?: string;
}

/**
 * nginx as a static file server the way an admin would run one for boot
 * files: workers = cores, sendfile, access log on (bootherd logs every
 * request too). Returns the path of nginx.conf, for `nginx -p dir -c conf`.
 */
export function writeNginxConfig(o: NginxSite): string {
  mkdirSync(o.dir, { recursive: true });
  const conf = path.join(o.dir, 'nginx.conf');
  writeFileSync(conf, `
user root;
worker_processes auto;
daemon off;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log warn;
events { worker_connections ${o.workerConnections ?? 1024}; }
http {
  access_log ${o.dir}/access.log;
  client_body_temp_path ${o.dir}/body; proxy_temp_path ${o.dir}/proxy; fastcgi_temp_path ${o.dir}/fastcgi; uwsgi_temp_path ${o.dir}/uwsgi; scgi_temp_path ${o.dir}/scgi;
  sendfile on; tcp_nopush on;
${o.http ?? ''}
  server { listen ${o.listen}; ${o.site} }
}
`);
  return conf;
}

export interface NsdSetup {
  /** Directory holding the zone files (named <zone>.zone); NSD's state goes there too. */
  readonly dir: string;
  readonly address: string;
  readonly zones: readonly string[];
  /** NSD server processes (server-count), all on the port with SO_REUSEPORT. */
  readonly servers?: number;
  readonly file?: string;
}

/**
 * NSD serving the given zones, with no chroot, no database and no response
 * rate limiting (on by default at 200/s per client network: dnsperf is one
 * client). Returns the path of the config file, for `nsd -d -c conf`.
 */
export function writeNsdConfig(o: NsdSetup): string {
  const conf = path.join(o.dir, o.file ?? 'nsd.conf');
  writeFileSync(conf, `server:
  ip-address: ${o.address}
  port: 53
  server-count: ${o.servers ?? 1}
  reuseport: yes
  username: ""
  chroot: ""
  zonesdir: "${o.dir}"
  database: ""
  zonelistfile: "${o.dir}/zone.list"
  xfrdfile: "${o.dir}/xfrd.state"
  pidfile: "${o.dir}/nsd.pid"
  logfile: "${o.dir}/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
${o.zones.map((z) => `zone:\n  name: ${z}\n  zonefile: ${z}.zone\n`).join('')}`);
  return conf;
}
