/**
 * Addresses a node may not have even inside its subnet: the subnet's network
 * and broadcast addresses, a head's address and the router's. DHCP would hand
 * any of them to the node and break the subnet for everyone.
 */
import { broadcastOf, intToIp, type Cidr } from '../net/ipv4.ts';

export interface ReservedAddresses {
  /** This head and every head of `heads:`. */
  readonly heads: readonly number[];
  readonly router?: number;
}

/** Why `ip` (inside `net`) cannot be a node's address, or undefined when it can. */
export function nodeAddressProblem(ip: number, net: Cidr, reserved: ReservedAddresses): string | undefined {
  // /31 and /32 have no network or broadcast address (RFC 3021).
  if (net.prefix <= 30 && ip === net.network) return `${intToIp(ip)} is the network address of ${net.text}; pick a host address inside it`;
  if (net.prefix <= 30 && ip === broadcastOf(net)) return `${intToIp(ip)} is the broadcast address of ${net.text}; pick a host address inside it`;
  if (reserved.heads.includes(ip)) return `${intToIp(ip)} is a head's address (head.address or heads[]); pick another`;
  if (reserved.router === ip) return `${intToIp(ip)} is the subnet's router (subnets[].router); pick another`;
  return undefined;
}
