/**
 * A million junk datagrams through the DHCP decode path and handler chain, in
 * process: nothing throws, every malformed one is counted as dropped, and
 * nothing reaches the store.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { decode } from '../../protocols/dhcp/codec.ts';
import { mutate, prng, randomBytes } from '../helpers/fuzz.ts';

const config = parseConfig(`
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.200 }
nodes:
  - { name: n001, macs: [52:54:00:12:34:01], ip: 198.18.0.11 }
`, '<fuzz>');

const vectors = (JSON.parse(readFileSync(new URL('../vectors/dhcp/recorded.json', import.meta.url), 'utf8')) as { vectors: Array<{ hex: string }> })
  .vectors.map((v) => Buffer.from(v.hex, 'hex'));

t.test('1,000,000 junk datagrams', async (t) => {
  // Malformed datagrams go to one service, well-formed mutations (which may be
  // legitimate DECLINEs or RELEASEs, and so may write) to another.
  const make = (store: MemoryStore, metrics: Metrics) => new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics, httpBase: 'http://198.18.0.1' });
  const store = new MemoryStore();
  const metrics = new Metrics();
  const dhcp = make(store, metrics);
  const wellFormed = make(new MemoryStore(), new Metrics());
  const rand = prng(20261124);
  let malformed = 0;
  let threw = 0;
  let answeredMalformed = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const junk = i % 2 ? mutate(rand, vectors[rand() % vectors.length]!) : randomBytes(rand, rand() % 700);
    let valid = true;
    try { decode(junk); } catch { valid = false; malformed++; }
    try {
      const ctx = (valid ? wellFormed : dhcp).handle(junk, 'eth0', 1_700_000_000_000, false);
      if (!valid && ctx !== undefined) answeredMalformed++;
    } catch {
      threw++;
    }
  }
  t.equal(threw, 0, 'the handler chain never throws');
  t.equal(answeredMalformed, 0, 'no malformed datagram gets a reply');
  const dropped = ['short', 'cookie', 'option-length', 'hlen'].reduce((n, reason) => n + metrics.value('bootherd_dhcp_dropped_total', { reason }), 0);
  t.equal(dropped, malformed, `every malformed datagram is counted (${malformed})`);
  t.equal(store.size('leases') + store.size('boots'), 0, 'nothing is written for malformed input');
});
