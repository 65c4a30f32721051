import t from 'tap';
import { Metrics } from '../../src/metrics.ts';

t.test('by(label) hands out one series per label value, the same one with() finds', async (t) => {
  const m = new Metrics();
  const family = m.counter('x_total', 'x');
  const byType = family.by('type');
  byType('OFFER').value++;
  byType('OFFER').value++;
  byType('ACK').value++;
  t.equal(byType('OFFER'), family.with({ type: 'OFFER' }), 'the same object as with()');
  t.equal(m.value('x_total', { type: 'OFFER' }), 2);
  t.equal(m.value('x_total', { type: 'ACK' }), 1);
  t.match(m.render(), /x_total\{type="OFFER"\} 2\n/);
});
