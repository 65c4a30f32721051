import t from 'tap';
import { intToIp, ipToInt, isIpv4 } from '../../src/net/ipv4.ts';

// The regular expression the hand-written parser replaced: the parser must accept exactly what it did.
const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

t.test('addresses round-trip through integers', async (t) => {
  for (const text of ['0.0.0.0', '198.18.0.1', '198.19.255.255', '255.255.255.255', '10.0.100.9']) {
    t.equal(intToIp(ipToInt(text)), text, text);
  }
  t.equal(ipToInt('198.18.0.1'), 0xc6120001);
  t.equal(ipToInt('255.255.255.255'), 0xffffffff, 'unsigned');
});

t.test('anything but a dotted quad is refused, with the text in the message', async (t) => {
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4 ', ' 1.2.3.4', 'a.b.c.d', '1.2.3.1000', '-1.2.3.4', '1.2.3.4\n']) {
    t.notOk(isIpv4(bad), JSON.stringify(bad));
    t.throws(() => ipToInt(bad), { message: `not an IPv4 address: ${JSON.stringify(bad)}` });
  }
});

t.test('the parser agrees with the regular expression on random near-addresses', async (t) => {
  const alphabet = '0123456789.0123456789.x ';
  let seed = 7;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  let disagreements = 0;
  for (let n = 0; n < 200_000; n++) {
    let text = '';
    const length = 1 + Math.floor(random() * 16);
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
    if (isIpv4(text) !== DOTTED_QUAD.test(text)) disagreements++;
  }
  for (let n = 0; n < 100_000; n++) {
    const text = [0, 1, 2, 3].map(() => String(Math.floor(random() * 300))).join('.');
    if (isIpv4(text) !== DOTTED_QUAD.test(text)) disagreements++;
    if (isIpv4(text) && intToIp(ipToInt(text)) !== text) disagreements++;
  }
  t.equal(disagreements, 0);
});
