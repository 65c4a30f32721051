/**
 * Boot timelines of pool clients (MACs of no node): the last stage per MAC,
 * in memory only (nothing reaches the store), bounded, the longest silent
 * forgotten first.
 */
import t from 'tap';
import { BootTimelines } from '../../src/cluster/timeline.ts';
import { MemoryStore } from '../../src/store/memory.ts';

t.test('pool clients: the last stage per MAC, in memory, bounded', async (t) => {
  const store = new MemoryStore();
  await store.open();
  let writes = 0;
  store.onChange(() => { writes++; });
  const timelines = new BootTimelines(store);
  timelines.recordClient('52:54:00:00:00:99', 'dhcp-offer', 1000, 'iPXE');
  timelines.recordClient('52:54:00:00:00:99', 'ipxe-script', 2000, 'discovery');
  t.same(timelines.clientStage('52:54:00:00:00:99'), { stage: 'ipxe-script', at: 2000, detail: 'discovery' }, 'the last stage');
  t.equal(timelines.clientStage('52:54:00:00:00:98'), undefined, 'none for a MAC never seen');
  const mac = (i: number) => `02:00:00:${(i >> 16 & 255).toString(16).padStart(2, '0')}:${(i >> 8 & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  for (let i = 0; i < 10_000; i++) timelines.recordClient(mac(i), 'dhcp-offer', 3000 + i);
  t.equal(timelines.clientStage('52:54:00:00:00:99'), undefined, 'a flood of made-up MACs pushes out the longest silent');
  t.equal(timelines.clientStage(mac(9999))?.at, 3000 + 9999, 'and keeps the latest');
  t.equal(timelines.clientStage(mac(0)), undefined, 'bounded: the first of the flood is gone too');
  t.equal(writes, 0, 'nothing written to the store');
});
