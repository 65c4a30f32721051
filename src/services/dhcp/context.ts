import type { Subnet } from '../../cluster/model.ts';
import type { NodeRecord } from '../../cluster/types.ts';
import type { DhcpMessage } from '../../../protocols/dhcp/codec.ts';

/** One DHCP request on its way through the handler chain. */
export interface DhcpContext {
  readonly req: DhcpMessage;
  /** Option 53. */
  readonly type: number;
  /** Canonical MAC text of chaddr ('' when hlen is 0). */
  readonly mac: string;
  /** Lease identity: the MAC, or `id:<hex>` for clients without one. */
  readonly clientKey: string;
  /** Interface the request arrived on (the socket's device), if known. */
  readonly iface: string | undefined;
  /**
   * Set for a request to the PXE boot server port (4011): where it came from,
   * which is where the answer goes (the client has its address by then).
   */
  readonly bootServer?: { readonly address: number; readonly port: number };
  readonly now: number;
  subnet?: Subnet;
  /** The node reserved for this MAC on this subnet. */
  node?: NodeRecord;
  /** Address for the reply's server identifier and next-server. */
  serverId: number;
  /** OFFER, ACK or NAK once a handler decided; undefined means no reply. */
  replyType?: number;
  /**
   * Why there is no reply, when the request was not acted on: the `reason`
   * of bootherd_dhcp_dropped_total, counted once the chain ends. (An honoured
   * DECLINE or RELEASE gets no reply and no drop reason.)
   */
  drop?: string;
  yiaddr: number;
  /** Seconds; 0 for INFORM and NAK. */
  leaseTime: number;
  /** Options for the reply, in the order handlers added them. */
  readonly options: Map<number, Buffer>;
  siaddr: number;
  file: string;
  /** Durable write that must complete before the reply leaves (ACK of a lease). */
  commit?: () => Promise<void>;
  /**
   * Shared store: the claim that must win before the OFFER leaves; resolves
   * to the address the store holds for the client (the reply's yiaddr
   * becomes it), undefined for no OFFER.
   */
  claim?: () => Promise<number | undefined>;
  /** Side effects after the reply is sent (boot timeline), or once the request is decided when it gets none (an address learned on a proxy subnet). */
  readonly after: Array<() => void>;
  /** When set (debug logging, `bootherd explain`), handlers record why they decided. */
  readonly trace: string[] | undefined;
}

/** A handler reads the request and adds to the reply; returning false ends the chain. */
export type Handler = (ctx: DhcpContext) => boolean;

/** A handler that only a `mode: server` subnet runs (addresses and their options); a proxy subnet's replies carry none. */
export function serverOnly(h: Handler): Handler {
  return (ctx) => ctx.subnet!.mode === 'proxy' || h(ctx);
}

/** Ends the chain without a reply, with the reason it is counted under. */
export function dropped(ctx: DhcpContext, reason: string, why: string): false {
  ctx.drop = reason;
  ctx.trace?.push(why);
  return false;
}
