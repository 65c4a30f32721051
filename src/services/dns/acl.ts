/**
 * Who may use the server as a resolver: the cluster's subnets, loopback and
 * the networks in dns.allowRecursion. Everyone else is answered for the
 * cluster's own names only, so the head is never an open resolver (the
 * classic amplification reflector).
 */
import { cidrContains, ipToInt, isIpv4, parseCidr, type Cidr } from '../../net/ipv4.ts';

const LOOPBACK = parseCidr('127.0.0.0/8');
/** Decisions remembered per address; cleared when this many, so a spoofed-source flood cannot grow it without bound. */
const MEMO_LIMIT = 65536;

export class RecursionAcl {
  private readonly networks: readonly Cidr[];
  private readonly memo = new Map<string, boolean>();

  constructor(networks: readonly Cidr[]) {
    this.networks = [LOOPBACK, ...networks];
  }

  allows(address: string): boolean {
    let ok = this.memo.get(address);
    if (ok === undefined) {
      const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
      ok = isIpv4(v4) && this.networks.some((n) => cidrContains(n, ipToInt(v4)));
      if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
      this.memo.set(address, ok);
    }
    return ok;
  }
}
