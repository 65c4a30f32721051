/**
 * CPU cost of the DHCP handler chain per message, in process (no sockets):
 * DISCOVER->OFFER and REQUEST->ACK for 50,000 new clients.
 * Shows where a load test's time goes before the network adds its part.
 *
 *   node --import tsx bench/dhcp/pipeline.ts
 *
 * Two passes:
 * - the chain alone, on an in-memory store (µs per message, wall clock);
 * - full DORA on the embedded store in a temporary directory, in rounds of 32
 *   clients that each wait for their group commit (every lease fdatasync'd,
 *   as under load), reported as process CPU per lease, user and system: the
 *   part of a perfdhcp trial's server CPU that is bootherd's own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encode } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, u8 } from '../../protocols/dhcp/options.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { buildReply } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { Store } from '../../src/store/store.ts';

const config = parseConfig(`
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/16, interface: eth0, pool: 198.18.1.0-198.18.250.255 }
`, '<bench>');
const N = 50_000;
const ROUND = 32;

function service(store: Store): DhcpService {
  return new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1' });
}

function message(i: number, type: number, options: Array<[number, Buffer]>): Buffer {
  const chaddr = Buffer.alloc(16);
  chaddr.writeUInt32BE(i, 2);
  return encode({ op: 1, htype: 1, hlen: 6, hops: 1, xid: i, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0xc6120009, chaddr, sname: '', file: '',
    options: new Map([[Opt.MESSAGE_TYPE, u8(type)], ...options]) }).bytes;
}

const discover = (i: number) => message(i, MessageType.DISCOVER, [[Opt.PARAMETER_LIST, Buffer.from([1, 3, 6, 15, 51, 54])]]);
const request = (i: number, ip: number) => message(i, MessageType.REQUEST, [[Opt.REQUESTED_IP, ipList([ip])], [Opt.SERVER_ID, ipList([0xc6120001])]]);

// Pass 1: the chain alone.
{
  const dhcp = service(new MemoryStore());
  const discovers = Array.from({ length: N }, (_, i) => discover(i));
  let t0 = performance.now();
  const offered: number[] = [];
  for (const d of discovers) {
    const ctx = dhcp.handle(d, undefined, Date.now(), false)!;
    offered.push(ctx.yiaddr);
    buildReply(ctx);
  }
  const discoverUs = ((performance.now() - t0) * 1000) / N;
  const requests = offered.map((ip, i) => request(i, ip));
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
  console.log(`REQUEST -> ACK:    ${requestUs.toFixed(1)} µs/message (${Math.round(1e6 / requestUs)}/s), in-memory store`);
}

// Pass 2: full DORA, durable, in rounds.
{
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-dhcp-pipeline-'));
  const store = new EmbeddedStore(path.join(dir, 'state'));
  await store.open();
  const dhcp = service(store);
  const discovers = Array.from({ length: N }, (_, i) => discover(N + i));
  // Each REQUEST is made before the clock starts and given its offered address in place.
  const requests = Array.from({ length: N }, (_, i) => request(N + i, 0));
  const option50 = requests[0]!.indexOf(Buffer.from([Opt.REQUESTED_IP, 4]), 240);
  if (option50 < 0) throw new Error('the REQUEST template has no option 50 to fill in');
  const requestedAt = option50 + 2;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let start = 0; start < N; start += ROUND) {
    const commits: Array<Promise<void>> = [];
    for (let i = start; i < Math.min(N, start + ROUND); i++) {
      const offer = dhcp.handle(discovers[i]!, undefined, Date.now(), false)!;
      buildReply(offer);
      const req = requests[i]!;
      req.writeUInt32BE(offer.yiaddr, requestedAt);
      const ack = dhcp.handle(req, undefined, Date.now(), false)!;
      commits.push(ack.commit!());
      buildReply(ack);
    }
    await Promise.all(commits);
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`DORA, embedded store, rounds of ${ROUND}: ${(cpu.user / N).toFixed(1)} µs user + ${(cpu.system / N).toFixed(1)} µs system CPU a lease, ${store.flushes} fdatasyncs, ${((wall * 1000) / N).toFixed(1)} µs wall a lease`);
}
