/**
 * The DHCP codec against packets recorded from real clients and servers
 * (test/vectors/dhcp/recorded.json, made by scripts/record-dhcp-vectors.ts),
 * plus the corners real traffic rarely shows: overload, long options, padding,
 * and malformed input.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { decode, encode, DhcpDecodeError, type DhcpMessage } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, readIp, readSubOption, readSubOptions, readText, readU16, readU16List, readU32, readUserClasses, u16, u32, u8 } from '../../protocols/dhcp/options.ts';
import { macFromBytes } from '../../src/net/mac.ts';

interface Vector { name: string; source: string; hex: string }
const { vectors } = JSON.parse(readFileSync(new URL('../vectors/dhcp/recorded.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const vector = (name: string) => Buffer.from(vectors.find((v) => v.name === name)!.hex, 'hex');

t.test('every recorded packet decodes and survives a round trip', async (t) => {
  t.ok(vectors.length >= 8, 'vectors recorded');
  for (const v of vectors) {
    const bytes = Buffer.from(v.hex, 'hex');
    const m = decode(bytes);
    t.ok(m.options.has(Opt.MESSAGE_TYPE), `${v.name}: has a message type`);
    const again = decode(encode(m, { maxLength: 1500 }).bytes);
    t.same(again, m, `${v.name}: decode(encode(m)) equals m`);
  }
});

t.test('dhclient DISCOVER', async (t) => {
  const m = decode(vector('dhclient-discover'));
  t.equal(m.op, 1);
  t.equal(m.options.get(Opt.MESSAGE_TYPE)![0], MessageType.DISCOVER);
  t.equal(macFromBytes(m.chaddr), '52:54:00:12:34:01');
  t.ok(m.options.get(Opt.PARAMETER_LIST)!.includes(Opt.NTP_SERVERS), 'asks for NTP servers');
  // dhclient ends its options with END and pads the message to 300 bytes.
  t.equal(encode(m).bytes.length, 300);
});

t.test('dnsmasq OFFER and ACK decode to what dnsmasq was told to send', async (t) => {
  for (const name of ['dhclient-offer', 'dhclient-ack']) {
    const m = decode(vector(name));
    t.equal(m.op, 2);
    t.equal(m.file, 'undionly.kpxe', `${name}: boot file in the file field`);
    t.same(readIp(m.options.get(Opt.SERVER_ID)), 0xc6120001, `${name}: server id 198.18.0.1`);
    t.equal(readU32(m.options.get(Opt.LEASE_TIME)), 3600);
    t.equal(readText(m.options.get(Opt.DOMAIN_NAME)), 'lab.test');
    t.equal(readIp(m.options.get(Opt.NTP_SERVERS)), 0xc6120001);
  }
});

t.test('iPXE DISCOVER from a real QEMU ROM keeps options 93, 94, 97, 77, 175 and a client id with zero bytes', async (t) => {
  const m = decode(vector('ipxe-bios-discover'));
  t.same(readUserClasses(m.options.get(Opt.USER_CLASS)), ['iPXE'], 'bare user class "iPXE"');
  t.ok(m.options.has(Opt.IPXE), 'iPXE encapsulated options (175)');
  t.ok(readSubOptions(m.options.get(Opt.IPXE)), '175 parses as sub-options');
  t.same(readU16List(m.options.get(Opt.CLIENT_ARCH)), [0], 'BIOS (arch 0)');
  t.equal(m.options.get(Opt.CLIENT_NDI)!.length, 3, 'network interface id (94)');
  t.equal(m.options.get(Opt.CLIENT_UUID)!.length, 17, 'GUID (97), 17 bytes');
  const clientId = m.options.get(Opt.CLIENT_ID)!;
  t.equal(clientId.length, 7, 'client id is not cut at its first zero byte');
  t.equal(clientId[0], 1);
  t.match(readText(m.options.get(Opt.VENDOR_CLASS))!, /^PXEClient:Arch:00000:UNDI:002001/);
  t.equal(readU16(m.options.get(Opt.MAX_MESSAGE_SIZE)), 1472);
});

t.test('UEFI PXE DISCOVER from OVMF announces x64 UEFI', async (t) => {
  const m = decode(vector('uefi-pxe-discover'));
  t.same(readU16List(m.options.get(Opt.CLIENT_ARCH)), [7]);
  t.match(readText(m.options.get(Opt.VENDOR_CLASS))!, /^PXEClient:Arch:00007/);
  t.equal(m.options.get(Opt.CLIENT_UUID)!.length, 17);
});

function baseMessage(options: Map<number, Buffer>): DhcpMessage {
  return {
    op: 2, htype: 1, hlen: 6, hops: 0, xid: 0x01020304, secs: 0, flags: 0x8000,
    ciaddr: 0, yiaddr: 0xc6120064, siaddr: 0xc6120001, giaddr: 0,
    chaddr: Buffer.from('525400123401' + '00'.repeat(10), 'hex'), sname: '', file: '', options,
  };
}

t.test('value encodings', async (t) => {
  t.same(u8(5), Buffer.from([5]));
  t.same(u16(0x1234), Buffer.from([0x12, 0x34]));
  t.same(u32(3600), Buffer.from([0, 0, 0x0e, 0x10]));
  t.same(ipList([0xc6120001, 0xc6120002]), Buffer.from([198, 18, 0, 1, 198, 18, 0, 2]));
  t.equal(readText(Buffer.from('abc\0\0')), 'abc', 'trailing NULs dropped');
  t.same(readUserClasses(Buffer.from([4, 0x69, 0x50, 0x58, 0x45, 3, 0x66, 0x6f, 0x6f])), ['iPXE', 'foo'], 'RFC 3004 framing');
  t.same(readUserClasses(Buffer.from('iPXE')), ['iPXE'], 'bare string');
  t.equal(readSubOptions(Buffer.from([1, 5, 0])), undefined, 'broken sub-option framing');
  const agent = Buffer.from([0, 1, 2, 0x61, 0x62, 2, 1, 0x63]);
  t.same(readSubOption(agent, 1), Buffer.from('ab'), 'one sub-option, after a PAD');
  t.same(readSubOption(agent, 2), Buffer.from('c'), 'the next one');
  t.equal(readSubOption(agent, 5), undefined, 'an absent one');
  t.equal(readSubOption(Buffer.from([1, 2, 0x61, 2, 9, 0x63]), 2), undefined, 'one whose length runs past the end');
  t.equal(readSubOption(undefined, 1), undefined, 'no option at all');
  t.same(readU16List(Buffer.from([0, 7, 0, 9])), [7, 9]);
});

t.test('options longer than 255 bytes are split and joined (RFC 3396)', async (t) => {
  const long = Buffer.alloc(600, 0x61);
  const { bytes } = encode(baseMessage(new Map([[Opt.MESSAGE_TYPE, u8(2)], [Opt.ROOT_PATH, long]])), { maxLength: 1400 });
  t.same(decode(bytes).options.get(Opt.ROOT_PATH), long);
});

t.test('option overload moves options into file and sname when the main area is full', async (t) => {
  const opts = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, u8(2)], [Opt.SERVER_ID, ipList([0xc6120001])]]);
  for (let code = 200; code < 212; code++) opts.set(code, Buffer.alloc(40, code));
  const { bytes, dropped } = encode(baseMessage(opts)); // default limit: 548 bytes
  t.ok(bytes.length <= 548, `fits the 576-byte minimum (${bytes.length})`);
  const m = decode(bytes);
  t.ok((m.options.get(Opt.OVERLOAD)?.[0] ?? 0) > 0, 'overload option set');
  for (let code = 200; code < 212; code++) {
    if (dropped.includes(code)) continue;
    t.same(m.options.get(code), Buffer.alloc(40, code), `option ${code} survives`);
  }
  t.ok(dropped.length < 4, `only what cannot fit is dropped (${dropped.join(',')})`);
});

t.test('padding between options is skipped', async (t) => {
  const bytes = Buffer.from(encode(baseMessage(new Map([[Opt.MESSAGE_TYPE, u8(1)]]))).bytes);
  // 240: 53 1 1, then pads, then 12 2 "hi", END
  Buffer.from([53, 1, 1, 0, 0, 0, 12, 2, 0x68, 0x69, 255]).copy(bytes, 240);
  const m = decode(bytes);
  t.equal(readText(m.options.get(Opt.HOST_NAME)), 'hi');
});

t.test('malformed packets fail with a reason', async (t) => {
  const good = vector('dhclient-discover');
  const reason = (b: Buffer) => { try { decode(b); return 'ok'; } catch (e) { return (e as DhcpDecodeError).reason; } };
  t.equal(reason(good.subarray(0, 100)), 'short');
  const noCookie = Buffer.from(good); noCookie[236] = 0;
  t.equal(reason(noCookie), 'cookie');
  const pastEnd = Buffer.from(good.subarray(0, 244)); pastEnd[240] = 12; pastEnd[241] = 200;
  t.equal(reason(pastEnd), 'option-length');
  const bigHlen = Buffer.from(good); bigHlen[2] = 17;
  t.equal(reason(bigHlen), 'hlen');
});
