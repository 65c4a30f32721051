/**
 * `bootherd explain`: a dry run of the DHCP decision for a described client.
 * It builds the DISCOVER such a client would send, runs it through the same
 * handler chain as the server (against an in-memory store) and prints the
 * matched node, profile, reply and the reasons.
 */
import { encode, type DhcpMessage } from '../../../protocols/dhcp/codec.ts';
import { ipList, MESSAGE_TYPE_NAMES, MessageType, Opt, text, u16, u8 } from '../../../protocols/dhcp/options.ts';
import { ClusterModel } from '../../cluster/model.ts';
import { httpBaseOf } from '../../cluster/urls.ts';
import type { Config } from '../../config/load.ts';
import { silentLogger } from '../../log.ts';
import { Metrics } from '../../metrics.ts';
import { intToIp, ipToInt } from '../../net/ipv4.ts';
import { macToBytes, normalizeMac } from '../../net/mac.ts';
import { MemoryStore } from '../../store/memory.ts';
import type { DhcpContext } from './context.ts';
import { ANSWER_ALL_AFTER_SECS, answerOrder } from './heads.ts';
import { orderOptions } from './reply.ts';
import { DhcpService } from './service.ts';

export interface ExplainInput {
  readonly mac: string;
  readonly arch?: number;
  readonly userClass?: string;
  readonly vendorClass?: string;
  readonly giaddr?: string;
  /** Interface the request arrives on; default: the first subnet's interface. */
  readonly iface?: string;
  /** Heads of `heads:` to take as down when saying which head answers. */
  readonly down?: readonly string[];
  /** Take every subnet as `mode: proxy` (what bootherd would answer beside a site DHCP server). */
  readonly proxy?: boolean;
  /** Proxy: the address the site's server gave the client, for its REQUEST to port 4011 (default: the subnet's first host address). */
  readonly ciaddr?: string;
}

/** Several heads: which one answers this client, and why. */
export interface AnsweringHead {
  readonly head: string | undefined;
  /** Every head of `heads:` in the order the client's key ranks them. */
  readonly order: readonly string[];
  readonly why: string;
}

export interface Explanation {
  readonly node: string | undefined;
  readonly profile: string | undefined;
  readonly subnet: string | undefined;
  readonly reply: string;
  readonly yiaddr?: string;
  readonly siaddr?: string;
  readonly file?: string;
  readonly options: Array<{ code: number; name: string; value: string }>;
  readonly why: string[];
  readonly answering?: AnsweringHead;
  /** Proxy subnet: the firmware's REQUEST to the PXE boot server (port 4011) that follows the site's ACK, and its answer. */
  readonly bootServer?: Omit<Explanation, 'answering' | 'bootServer'>;
}

const OPTION_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Opt).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, '-')]));
const IP_OPTIONS = new Set<number>([Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS_SERVERS, Opt.BROADCAST, Opt.NTP_SERVERS, Opt.SERVER_ID]);
const U32_OPTIONS = new Set<number>([Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME]);

function showOption(code: number, v: Buffer): string {
  if (IP_OPTIONS.has(code) && v.length % 4 === 0) return Array.from({ length: v.length / 4 }, (_, i) => intToIp(v.readUInt32BE(i * 4))).join(', ');
  if (U32_OPTIONS.has(code) && v.length === 4) return `${v.readUInt32BE(0)}s`;
  if (code === Opt.MESSAGE_TYPE) return MESSAGE_TYPE_NAMES[v[0]!] ?? String(v[0]);
  if (/^[\x20-\x7e]*$/.test(v.toString('latin1'))) return v.toString('latin1');
  return v.toString('hex');
}

export function explainDiscover(given: Config, input: ExplainInput): Explanation {
  const config: Config = input.proxy ? { ...given, subnets: given.subnets.map((s) => ({ ...s, mode: 'proxy' as const, pool: undefined })) } : given;
  const names = config.heads.map((h) => h.name);
  for (const d of input.down ?? []) if (!names.includes(d)) throw new Error(`--down: no head named "${d}" in the cluster file's heads: (${names.join(', ') || 'none'}); give names from heads:`);
  const store = new MemoryStore();
  const model = new ClusterModel(config, store);
  const dhcp = new DhcpService({ config, model, store, log: silentLogger, metrics: new Metrics(), httpBase: httpBaseOf(config) });
  const chaddr = Buffer.alloc(16);
  macToBytes(normalizeMac(input.mac)).copy(chaddr);
  const options = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, u8(MessageType.DISCOVER)]]);
  if (input.vendorClass !== undefined || input.arch !== undefined) options.set(Opt.VENDOR_CLASS, text(input.vendorClass ?? `PXEClient:Arch:${String(input.arch).padStart(5, '0')}:UNDI:003016`));
  if (input.arch !== undefined) options.set(Opt.CLIENT_ARCH, u16(input.arch));
  if (input.userClass) options.set(Opt.USER_CLASS, text(input.userClass));
  const msg: DhcpMessage = {
    op: 1, htype: 1, hlen: 6, hops: input.giaddr ? 1 : 0, xid: 0x4242, secs: 0, flags: 0,
    ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: input.giaddr ? ipToInt(input.giaddr) : 0,
    chaddr, sname: '', file: '', options,
  };
  const iface = input.iface ?? (input.giaddr ? undefined : model.subnets.find((s) => s.interface)?.interface);
  const ctx = dhcp.handle(encode(msg).bytes, iface, Date.now(), true);
  if (!ctx) return { node: undefined, profile: undefined, subnet: undefined, reply: 'dropped', options: [], why: ['the request could not be decoded'] };
  let bootServer: Explanation['bootServer'];
  if (ctx.subnet?.mode === 'proxy' && ctx.replyType !== undefined) {
    // The firmware asks the boot server from the address the site's server gave it (EDK2 puts it in ciaddr too).
    const client = input.ciaddr ? ipToInt(input.ciaddr) : ctx.subnet.cidr.network + 1;
    options.set(Opt.MESSAGE_TYPE, u8(MessageType.REQUEST));
    options.set(Opt.SERVER_ID, ipList([ctx.serverId]));
    const follow = dhcp.handle(encode({ ...msg, hops: 0, giaddr: 0, ciaddr: client }).bytes, undefined, Date.now(), true, { address: client, port: 68 });
    if (follow) { const { answering: _a, ...rest } = describe(follow); bootServer = rest; }
  }
  return {
    ...describe(ctx), ...(bootServer ? { bootServer } : {}),
    ...(config.heads.length > 1 ? { answering: answeringOf(ctx.clientKey, config.heads.map((h) => h.name), input.down ?? []) } : {}),
  };
}

function describe(ctx: DhcpContext): Explanation {
  const reply = ctx.replyType === undefined ? 'none' : MESSAGE_TYPE_NAMES[ctx.replyType]!;
  return {
    node: ctx.node?.name,
    profile: ctx.node ? ctx.node.profile : 'default',
    subnet: ctx.subnet?.cidr.text,
    reply,
    ...(ctx.replyType !== undefined ? {
      yiaddr: intToIp(ctx.yiaddr),
      siaddr: intToIp(ctx.siaddr),
      file: ctx.file,
    } : {}),
    options: ctx.replyType === undefined ? [] : [...orderOptions(ctx)].map(([code, v]) => ({ code, name: OPTION_NAMES[code] ?? `option-${code}`, value: showOption(code, v) })),
    why: ctx.trace ?? [],
  };
}

function answeringOf(clientKey: string, heads: readonly string[], down: readonly string[]): AnsweringHead {
  const order = answerOrder(clientKey, heads);
  const head = order.find((h) => !down.includes(h));
  const skipped = order.slice(0, head === undefined ? order.length : order.indexOf(head));
  const why = head === undefined
    ? 'every head is down'
    : `${head} ranks ${skipped.length ? `first of the live heads (${skipped.join(', ')} down)` : 'first'} by the hash of ${clientKey} with each head's name; `
      + `the others stay silent to a DISCOVER unless its secs reaches ${ANSWER_ALL_AFTER_SECS} (then every live head answers, and the store's claim decides the address)`;
  return { head, order, why };
}
