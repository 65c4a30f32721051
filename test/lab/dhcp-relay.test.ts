/**
 * A relayed subnet through a real relay agent (ISC dhcrelay with -a, which
 * adds option 82): bootherd picks the subnet by giaddr, answers the relay on
 * port 67, and echoes option 82 unchanged (checked on the wire with tcpdump).
 *
 *   client (198.18.1.0/24, br1) -- relay eth1 198.18.1.1 | relay eth0 198.18.0.2 -- (br0) head 198.18.0.1
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decode } from '../../protocols/dhcp/codec.ts';
import { Opt } from '../../protocols/dhcp/options.ts';
import { readPcapUdp } from '../helpers/pcap.ts';
import { startLabServer } from '../helpers/lab-server.ts';

const REMOTE_NODE = '52:54:00:00:02:01';
const REMOTE_UNKNOWN = '52:54:00:00:02:99';

const config = (state: string) => `
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
state: ${state}
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: 198.18.0.100-198.18.0.150
  - network: 198.18.1.0/24
    router: 198.18.1.1
    pool: 198.18.1.100-198.18.1.150
nodes:
  - { name: r001, macs: [${REMOTE_NODE}], ip: 198.18.1.11 }
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('relayed requests are answered to the relay with option 82 echoed', async (t) => {
  const s = await startLabServer(t, { tag: 'rl', config });
  const { lab } = s;
  lab.addBridge('br1');
  const relay = lab.addHost('relay', { mac: '52:54:00:0e:00:01', cidr: '198.18.0.2/24' });
  lab.addInterface(relay, { bridge: 'br1', iface: 'eth1', mac: '52:54:00:0e:00:02', cidr: '198.18.1.1/24' });
  const known = lab.addHost('rc0', { bridge: 'br1', mac: REMOTE_NODE });
  const unknown = lab.addHost('rc1', { bridge: 'br1', mac: REMOTE_UNKNOWN });
  // The head reaches the relayed subnet through the relay: a route for that subnet only, no default route.
  lab.exec(lab.head.ns, 'ip', ['route', 'add', '198.18.1.0/24', 'via', '198.18.0.2']);

  const pcap = path.join(s.dir, 'relay.pcap');
  const dump = lab.spawn(relay.ns, 'tcpdump', ['-i', 'eth0', '-n', '--immediate-mode', '-U', '-s', '0', '-w', pcap, 'udp port 67']);
  lab.spawn(relay.ns, 'dhcrelay', ['-d', '-4', '-a', '-id', 'eth1', '-iu', 'eth0', '198.18.0.1']);
  await sleep(1000);

  const dhclient = (ns: string) => {
    const leases = path.join(s.dir, `${ns}.leases`);
    const r = lab.run(ns, 'dhclient', ['-1', '-lf', leases, '-pf', path.join(s.dir, `${ns}.pid`), '-sf', '/bin/true', 'eth0'], 30_000);
    t.equal(r.code, 0, `dhclient in ${ns} got a lease through the relay`);
    return readFileSync(leases, 'utf8');
  };
  const k = dhclient(known.ns);
  t.match(k, /fixed-address 198\.18\.1\.11;/, 'a node on the relayed subnet gets its reservation');
  t.match(k, /option routers 198\.18\.1\.1;/, 'with the relayed subnet\'s router');
  t.match(k, /option host-name "r001";/);
  t.match(dhclient(unknown.ns), /fixed-address 198\.18\.1\.100;/, 'an unknown machine gets an address from the relayed pool');

  await sleep(300);
  dump.kill('SIGINT');
  await new Promise((r) => dump.once('exit', r));
  const packets = readPcapUdp(pcap).map((d) => ({ d, m: decode(d.payload) }));
  const toServer = packets.filter((p) => p.m.op === 1);
  const fromServer = packets.filter((p) => p.m.op === 2);
  t.ok(toServer.length >= 4 && fromServer.length >= 4, `requests and replies crossed the relay link (${toServer.length}/${fromServer.length})`);
  for (const reply of fromServer) {
    t.equal(reply.d.dst, '198.18.1.1', 'reply addressed to the relay (giaddr)');
    t.equal(reply.d.dstPort, 67, 'on the server port');
    const request = toServer.find((q) => q.m.xid === reply.m.xid)!;
    const agent = request.m.options.get(Opt.RELAY_AGENT);
    t.ok(agent, 'the relay added option 82');
    t.same(reply.m.options.get(Opt.RELAY_AGENT), agent, 'option 82 echoed byte for byte');
  }
});
