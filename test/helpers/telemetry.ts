/**
 * What the telemetry lab tests share (test/helpers only): the cluster file
 * of a head that runs only HTTP and the telemetry relay, and polling a
 * reading (an InfluxDB count, a queue depth) until it reaches what a test
 * waits for.
 */
import type { Influxd } from './influxd.ts';

/** A head with DHCP, DNS, NTP and TFTP off, one subnet, and `telemetry` as the section's flow mapping. */
export function telemetryHeadConfig(o: { name?: string; address: string; state: string; heads?: readonly { name: string; address: string }[]; telemetry: string }): string {
  const heads = o.heads ? `heads:\n${o.heads.map((h) => `  - { name: ${h.name}, address: ${h.address} }`).join('\n')}\n` : '';
  return `
cluster: { domain: lab.test }
head: { name: ${o.name ?? 'head'}, address: ${o.address} }
${heads}state: ${o.state}
subnets:
  - network: 198.18.0.0/24
tftp: { enabled: false }
ntp: { enabled: false }
dns: { enabled: false }
dhcp: { enabled: false }
telemetry: ${o.telemetry}
`;
}

/** Reads until `done` holds, 250 ms apart, at most `tries` times; the last value read. */
export async function readUntil<T>(read: () => T, done: (v: T) => boolean, tries = 200): Promise<T> {
  let v = read();
  for (let i = 0; i < tries && !done(v); i++) {
    await new Promise((r) => setTimeout(r, 250));
    v = read();
  }
  return v;
}

/** How many values of `field` a measurement holds in the telegraf database; 0 while it does not exist. */
export function countPoints(db: Influxd, measurement: string, field: string): number {
  try { return (db.rows(`SELECT count("${field}") FROM "${measurement}"`, 'telegraf')[0]?.[1] as number | undefined) ?? 0; } catch { return 0; }
}
