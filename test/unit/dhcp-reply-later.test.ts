/**
 * Replies changed after the store answered (a NAK for a lost claim, a short
 * ACK while etcd is unreachable) are made from the reply already built, not
 * from the request: by then the request's datagram buffer is a receive slot
 * holding later datagrams. A three-head storm found ACKs going out with
 * another client's hardware address when the reply was rebuilt from the
 * request; this reproduces that with one overwritten buffer.
 */
import t from 'tap';
import { decode, encode } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, readU32, readU8, u8 } from '../../protocols/dhcp/options.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { ipToInt } from '../../src/net/ipv4.ts';
import { buildReply, nakInsteadOf, withLeaseTime } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const config = parseConfig(`
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/24, pool: 198.18.0.100-198.18.0.103, leaseTime: 1h }
`, '<test>');

function request(mac: number, xid: number): Buffer {
  const chaddr = Buffer.alloc(16);
  chaddr.writeUInt32BE(0x02000000 + mac, 2);
  return encode({
    op: 1, htype: 1, hlen: 6, hops: 1, xid, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: ipToInt('198.18.0.9'), chaddr, sname: '', file: '',
    options: new Map([[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)], [Opt.REQUESTED_IP, ipList([ipToInt('198.18.0.100')])], [Opt.SERVER_ID, ipList([ipToInt('198.18.0.1')])], [Opt.RELAY_AGENT, Buffer.from([1, 2, 0x0a, 0x0b])]]),
  }).bytes;
}

t.test('a NAK or a shorter ACK made after the datagram buffer was reused keeps its own client', async (t) => {
  const store = new MemoryStore({ shared: true });
  const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1' });
  const slot = request(0x11, 0x1111);
  const ctx = dhcp.handle(slot, undefined, Date.now(), false)!;
  t.equal(ctx.replyType, MessageType.ACK);
  const ack = buildReply(ctx).bytes;
  // The receive slot now holds another client's request.
  request(0x22, 0x2222).copy(slot);
  t.not(decode(buildReply(ctx).bytes).chaddr.readUInt32BE(2), 0x02000011, 'rebuilt from the request, the reply names the other client (the hazard)');

  const nak = decode(nakInsteadOf(ack, 'taken'));
  t.equal(readU8(nak.options.get(Opt.MESSAGE_TYPE)), MessageType.NAK);
  t.equal(nak.chaddr.readUInt32BE(2), 0x02000011, 'the NAK names its own client');
  t.equal(nak.xid, 0x1111, 'and answers its own transaction');
  t.equal(nak.yiaddr, 0, 'with no address');
  t.equal(nak.flags & 0x8000, 0x8000, 'relayed: the relay is asked to broadcast it');
  t.same(nak.options.get(Opt.RELAY_AGENT), Buffer.from([1, 2, 0x0a, 0x0b]), 'option 82 echoed');
  t.equal(nak.options.get(Opt.MESSAGE)?.toString(), 'taken');
  t.notOk(nak.options.has(Opt.LEASE_TIME), 'no lease options');

  const short = decode(withLeaseTime(ack, 600));
  t.equal(short.chaddr.readUInt32BE(2), 0x02000011, 'the shorter ACK names its own client');
  t.equal(short.yiaddr, ipToInt('198.18.0.100'));
  t.equal(readU32(short.options.get(Opt.LEASE_TIME)), 600);
  t.equal(readU32(short.options.get(Opt.RENEWAL_TIME)), 300);
  t.equal(readU32(short.options.get(Opt.REBINDING_TIME)), 525);
});
