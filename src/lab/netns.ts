/**
 * Lab networks made of Linux network namespaces: a "switch" namespace with a
 * bridge, a head namespace and client namespaces each wired to the bridge by
 * a veth pair. Interfaces are created directly inside their namespaces, so
 * nothing appears in the host's namespace; no namespace gets a default route,
 * and the host gets a blackhole route for 198.18.0.0/15 so that a client
 * started there by mistake cannot send lab traffic anywhere.
 *
 * Used by the tests, the benchmarks and `bootherd demo`/`lab`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';

export const LAB_NETWORK = '198.18.0.0/15';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function namespaceExists(ns: string): boolean {
  return ip('netns', 'list').split('\n').some((l) => l.split(' ')[0] === ns);
}

/** Adds the host blackhole route for the lab range (idempotent). */
export function guardHost(): void {
  ip('route', 'replace', 'blackhole', LAB_NETWORK);
}

export interface LabHost {
  readonly ns: string;
  readonly iface: string;
  readonly mac: string;
  /** Address with prefix, like 198.18.0.1/24, or undefined for a host left unconfigured (a DHCP client). */
  readonly cidr: string | undefined;
  readonly address: string | undefined;
}

/** What a lab is made of, enough to find it again from another process (`bootherd lab` keeps it in a state file). */
export interface LabDescription {
  readonly prefix: string;
  readonly switchNs: string;
  readonly head: LabHost;
  readonly clients: readonly LabHost[];
  /** Every namespace the lab created, in creation order. */
  readonly namespaces: readonly string[];
}

export interface LabOptions {
  /** Namespace name prefix; keep it unique per concurrent lab (tests run in parallel). */
  readonly prefix: string;
  /** The head's address with prefix length; default 198.18.0.1/24. */
  readonly headCidr?: string;
  readonly clients?: number;
  /** MAC of client i (default 52:54:00:b0:00:<i+1>). */
  readonly clientMac?: (i: number) => string;
  /** Addresses for clients (with prefix), or undefined to leave them for DHCP. */
  readonly clientCidr?: (i: number) => string | undefined;
}

export class Lab {
  readonly switchNs: string;
  readonly head: LabHost;
  readonly clients: LabHost[] = [];
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly prefix: string, headCidr: string) {
    this.switchNs = `${prefix}-sw`;
    this.head = { ns: `${prefix}-head`, iface: 'eth0', mac: '52:54:00:a0:00:01', cidr: headCidr, address: headCidr.split('/')[0] };
  }

  static create(opts: LabOptions): Lab {
    guardHost();
    const lab = new Lab(opts.prefix, opts.headCidr ?? '198.18.0.1/24');
    try {
      lab.addNamespace(lab.switchNs);
      ip('-n', lab.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
      // No STP/forward delay: ports forward at once, as a lab switch should.
      ip('-n', lab.switchNs, 'link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
      ip('-n', lab.switchNs, 'link', 'set', 'br0', 'up');
      lab.attach(lab.head, 'ph');
      for (let i = 0; i < (opts.clients ?? 0); i++) lab.addClient(opts.clientMac?.(i) ?? defaultMac(i), opts.clientCidr?.(i));
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  /**
   * The lab another process created and described (`bootherd lab up` left it
   * running): destroy() removes it, addTap() adds to it, spawn() runs in it.
   */
  static adopt(d: LabDescription): Lab {
    const lab = new Lab(d.prefix, d.head.cidr ?? '198.18.0.1/24');
    lab.clients.push(...d.clients);
    lab.namespaces.push(...d.namespaces);
    return lab;
  }

  describe(): LabDescription {
    return { prefix: this.prefix, switchNs: this.switchNs, head: this.head, clients: [...this.clients], namespaces: [...this.namespaces] };
  }

  /** Adds one more client namespace on the bridge. */
  addClient(mac: string, cidr?: string): LabHost {
    const i = this.clients.length;
    const host: LabHost = { ns: `${this.prefix}-c${i}`, iface: 'eth0', mac, cidr, address: cidr?.split('/')[0] };
    this.attach(host, `pc${i}`);
    this.clients.push(host);
    return host;
  }

  /**
   * A tap device on the bridge, for a QEMU VM (`-netdev tap,ifname=NAME`);
   * QEMU must run in the switch namespace to open it.
   */
  addTap(name: string): string {
    ip('-n', this.switchNs, 'tuntap', 'add', name, 'mode', 'tap');
    ip('-n', this.switchNs, 'link', 'set', name, 'master', 'br0');
    ip('-n', this.switchNs, 'link', 'set', name, 'up');
    return name;
  }

  /** Removes a tap addTap() made (a VM that is gone); absent taps are fine. */
  removeTap(name: string): void {
    try { ip('-n', this.switchNs, 'link', 'del', name); } catch { /* already gone */ }
  }

  private addNamespace(ns: string): void {
    if (namespaceExists(ns)) ip('netns', 'del', ns);
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /** Another bridge (network segment) in the switch namespace, e.g. behind a relay. */
  addBridge(bridge: string): void {
    ip('-n', this.switchNs, 'link', 'add', bridge, 'type', 'bridge');
    ip('-n', this.switchNs, 'link', 'set', bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
    ip('-n', this.switchNs, 'link', 'set', bridge, 'up');
  }

  /** A host namespace on a given bridge (a relay, a second head, a client on another segment). */
  addHost(name: string, opts: { bridge?: string; mac: string; cidr?: string; iface?: string }): LabHost {
    const host: LabHost = { ns: `${this.prefix}-${name}`, iface: opts.iface ?? 'eth0', mac: opts.mac, cidr: opts.cidr, address: opts.cidr?.split('/')[0] };
    this.attach(host, `p${name}`.slice(0, 15), opts.bridge);
    return host;
  }

  /** A further interface for an existing host, on a given bridge (a router or relay has two). */
  addInterface(host: LabHost, opts: { bridge: string; iface: string; mac: string; cidr?: string }): LabHost {
    const extra: LabHost = { ns: host.ns, iface: opts.iface, mac: opts.mac, cidr: opts.cidr, address: opts.cidr?.split('/')[0] };
    this.link(extra, `p${host.ns.slice(this.prefix.length + 1)}${opts.iface}`.slice(0, 15), opts.bridge);
    return extra;
  }

  private attach(host: LabHost, port: string, bridge = 'br0'): void {
    this.addNamespace(host.ns);
    this.link(host, port, bridge);
  }

  private link(host: LabHost, port: string, bridge = 'br0'): void {
    ip('link', 'add', host.iface, 'netns', host.ns, 'address', host.mac, 'type', 'veth', 'peer', 'name', port, 'netns', this.switchNs);
    ip('-n', this.switchNs, 'link', 'set', port, 'master', bridge);
    ip('-n', this.switchNs, 'link', 'set', port, 'up');
    if (host.cidr) ip('-n', host.ns, 'addr', 'add', host.cidr, 'dev', host.iface);
    ip('-n', host.ns, 'link', 'set', host.iface, 'up');
  }

  /** Runs a command inside a namespace and returns its stdout; throws with stderr on failure. */
  exec(ns: string, cmd: string, args: string[], timeoutMs = 30_000): string {
    return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs a command inside a namespace and returns its exit status and both outputs; never throws for a failing command. */
  run(ns: string, cmd: string, args: string[], timeoutMs = 30_000): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Starts a long-running command inside a namespace; it is killed by destroy(). */
  spawn(ns: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  destroy(): void {
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of this.namespaces.reverse()) {
      // Kill anything still running in the namespace, then delete it.
      try {
        const pids = ip('netns', 'pids', ns).split('\n').filter(Boolean);
        for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      } catch { /* namespace already gone */ }
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    }
    this.namespaces.length = 0;
  }
}

function defaultMac(i: number): string {
  const n = i + 1;
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  return `52:54:00:b0:${hex((n >> 8) & 255)}:${hex(n & 255)}`;
}
