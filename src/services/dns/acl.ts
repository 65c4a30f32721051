/**
 * Who may use the server as a resolver: the cluster's subnets, loopback and
 * the networks in dns.allowRecursion. Everyone else is answered for the
 * cluster's own names only, so the head is never an open resolver (the
 * classic amplification reflector).
 */
import { cidrContains, parseCidr, type Cidr } from '../../net/ipv4.ts';

const LOOPBACK = parseCidr('127.0.0.0/8');

export class RecursionAcl {
  private readonly networks: readonly Cidr[];

  constructor(networks: readonly Cidr[]) {
    this.networks = [LOOPBACK, ...networks];
  }

  /** `address` is an IPv4 address as an integer. */
  allows(address: number): boolean {
    for (const n of this.networks) if (cidrContains(n, address)) return true;
    return false;
  }
}
