import t from 'tap';
import { OptionBytes } from '../../src/services/dhcp/option-bytes.ts';

t.test('a value is encoded once and its bytes shared; past the bound the memo starts over', async (t) => {
  const encoded: string[] = [];
  const bytes = new OptionBytes((v: string) => { encoded.push(v); return Buffer.from(v, 'latin1'); }, 2);
  const first = bytes.of('undionly.kpxe');
  t.equal(bytes.of('undionly.kpxe'), first, 'the same buffer for the same value');
  t.same(first, Buffer.from('undionly.kpxe'));
  bytes.of('ipxe.efi');
  t.same(encoded, ['undionly.kpxe', 'ipxe.efi']);
  bytes.of('snponly.efi'); // a third value: the memo is cleared first
  t.not(bytes.of('undionly.kpxe'), first, 'made again after the memo started over');
  t.same(encoded, ['undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'undionly.kpxe']);
});
