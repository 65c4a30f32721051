/**
 * The site's own DHCP server of `lab up --proxy`: dnsmasq in a namespace of
 * its own on the lab bridge, handing out the addresses (a reservation per
 * lab node, the same address as a server-mode lab's, and a pool) with the
 * head as DNS and NTP server, and no boot options: bootherd, in proxy mode,
 * gives those. Detached like the lab's bootherd; `lab down` kills it with
 * its namespace.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { LAB_DOMAIN, LAB_POOL, type LabNode } from './cluster.ts';

export interface LabSiteDhcp {
  readonly ns: string;
  readonly address: string;
  readonly pid: number;
  /** dnsmasq's own log (--log-dhcp): every exchange it answered. */
  readonly log: string;
  readonly leases: string;
}

/** dnsmasq's arguments: DHCP only (no DNS: port 0), the lab's addresses, nothing to boot. */
export function siteDhcpArgs(opts: { head: string; nodes: readonly LabNode[]; log: string; leases: string }): string[] {
  return [
    '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--user=root', '--dhcp-authoritative',
    `--dhcp-range=${LAB_POOL[0]},${LAB_POOL[1]},255.255.255.0,1h`,
    ...opts.nodes.map((n) => `--dhcp-host=${n.mac},${n.ip},${n.name}`),
    // No router in the lab; DNS and NTP are the head's, as a site would point its cluster network at it.
    '--dhcp-option=option:router', `--dhcp-option=option:dns-server,${opts.head}`, `--dhcp-option=option:ntp-server,${opts.head}`,
    `--dhcp-option=option:domain-name,${LAB_DOMAIN}`,
    `--dhcp-leasefile=${opts.leases}`, '--log-dhcp', `--log-facility=${opts.log}`,
  ];
}

export async function startLabSiteDhcp(ns: string, address: string, args: string[], log: string, leases: string): Promise<LabSiteDhcp> {
  if (spawnSync('dnsmasq', ['--version'], { stdio: 'ignore' }).error) throw new Error('dnsmasq is missing: run scripts/setup.sh (Debian package dnsmasq-base)');
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, 'dnsmasq', ...args], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start dnsmasq');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (text.includes('DHCP, IP range')) return { ns, address, pid, log, leases };
    if (!existsSync(`/proc/${pid}`) || Date.now() > deadline) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      throw new Error(`the site DHCP server (dnsmasq) did not start: ${text.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function labSiteDhcpRunning(site: LabSiteDhcp): boolean {
  try { return readFileSync(`/proc/${site.pid}/cmdline`, 'utf8').includes(site.leases); } catch { return false; }
}
