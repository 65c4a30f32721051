/**
 * CPU cost of the DHCP handler chain per message, in process (no sockets, an
 * in-memory store): DISCOVER->OFFER and REQUEST->ACK for 50,000 new clients.
 * Shows where a load test's time goes before the network and fsync add theirs.
 *   node --import tsx bench/dhcp/pipeline.ts
 */
import { encode } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, u8 } from '../../protocols/dhcp/options.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { buildReply } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const config = parseConfig(`
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/16, interface: eth0, pool: 198.18.1.0-198.18.250.255 }
`, '<bench>');
const store = new MemoryStore();
const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1' });
const N = 50_000;

function message(i: number, type: number, options: Array<[number, Buffer]>): Buffer {
  const chaddr = Buffer.alloc(16);
  chaddr.writeUInt32BE(i, 2);
  return encode({ op: 1, htype: 1, hlen: 6, hops: 1, xid: i, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0xc6120009, chaddr, sname: '', file: '',
    options: new Map([[Opt.MESSAGE_TYPE, u8(type)], ...options]) }).bytes;
}

const discovers = Array.from({ length: N }, (_, i) => message(i, MessageType.DISCOVER, [[Opt.PARAMETER_LIST, Buffer.from([1, 3, 6, 15, 51, 54])]]));
let t0 = performance.now();
const offered: number[] = [];
for (const d of discovers) {
  const ctx = dhcp.handle(d, undefined, Date.now(), false)!;
  offered.push(ctx.yiaddr);
  buildReply(ctx);
}
const discoverUs = ((performance.now() - t0) * 1000) / N;

const requests = offered.map((ip, i) => message(i, MessageType.REQUEST, [[Opt.REQUESTED_IP, ipList([ip])], [Opt.SERVER_ID, ipList([0xc6120001])]]));
t0 = performance.now();
const commits: Array<Promise<void>> = [];
for (const r of requests) {
  const ctx = dhcp.handle(r, undefined, Date.now(), false)!;
  commits.push(ctx.commit!());
  buildReply(ctx);
}
const requestUs = ((performance.now() - t0) * 1000) / N;
await Promise.all(commits);
console.log(`DISCOVER -> OFFER: ${discoverUs.toFixed(1)} µs/message (${Math.round(1e6 / discoverUs)}/s)`);
console.log(`REQUEST -> ACK:    ${requestUs.toFixed(1)} µs/message (${Math.round(1e6 / requestUs)}/s), store writes not included`);
