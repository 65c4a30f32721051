/**
 * The NTP codec against packets recorded from real peers (chronyd 4.3 and
 * ntpsec ntpdig 1.2.2, tcpdump in lab namespaces; each vector file says how).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  asciiId, decode, emptyPacket, encode, encodeInto, Kiss, Leap, Mode, modeOf, NtpDecodeError,
  referenceIdText, secondsToShort, shortToSeconds, timestampDiff, versionOf,
} from '../../protocols/ntp/codec.ts';

const VECTORS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../vectors/ntp');
function vector(name: string): Buffer {
  const hex = readFileSync(path.join(VECTORS, name), 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('').trim();
  return Buffer.from(hex, 'hex');
}

t.test('every recorded packet re-encodes byte for byte', async (t) => {
  for (const name of ['chronyd-request.hex', 'chronyd-local-reply.hex', 'ntpdig-request.hex', 'chronyd-stratum4-reply.hex', 'chronyd-v3-request.hex', 'chronyd-v3-reply.hex', 'chronyd-keyed-request.hex']) {
    const bytes = vector(name);
    t.same(encode(decode(bytes)), bytes, name);
  }
});

t.test('chronyd client request: data minimisation, random transmit timestamp', async (t) => {
  const p = decode(vector('chronyd-request.hex'));
  t.equal(p.version, 4);
  t.equal(p.mode, Mode.CLIENT);
  t.equal(p.leap, Leap.NONE);
  t.equal(p.poll, 6);
  t.same(p.originTime, { seconds: 0, fraction: 0 });
  t.same(p.transmitTime, { seconds: 0xfce8f5f3, fraction: 0x6a2c657b }, 'both halves exact');
  t.equal(p.extensions.length, 0);
  t.equal(p.mac, undefined);
});

t.test('chronyd server reply: fields and the echoed origin', async (t) => {
  const req = decode(vector('chronyd-request.hex'));
  const p = decode(vector('chronyd-local-reply.hex'));
  t.equal(p.mode, Mode.SERVER);
  t.equal(p.stratum, 3);
  t.equal(p.precision, -25, 'precision is signed');
  t.equal(p.poll, req.poll, 'chronyd echoes the poll');
  t.equal(referenceIdText(p.referenceId, p.stratum), '127.127.1.1');
  t.same(p.originTime, req.transmitTime, 'origin = request transmit, bit for bit');
  const processing = timestampDiff(p.transmitTime, p.receiveTime);
  t.ok(processing > 0 && processing < 0.01, `transmit after receive (${processing} s)`);
});

t.test('stratum-4 reply carries the upstream address and root values', async (t) => {
  const p = decode(vector('chronyd-stratum4-reply.hex'));
  t.equal(p.stratum, 4);
  t.equal(referenceIdText(p.referenceId, p.stratum), '198.18.0.1');
  t.equal(p.rootDelay, 1);
  t.equal(shortToSeconds(p.rootDispersion), 1 / 65536);
  t.equal(decode(vector('ntpdig-request.hex')).leap, Leap.UNSYNCHRONISED, 'ntpdig says it is unsynchronised');
});

t.test('NTPv3 and the MAC trailer', async (t) => {
  t.equal(decode(vector('chronyd-v3-request.hex')).version, 3);
  const keyed = decode(vector('chronyd-keyed-request.hex'));
  t.equal(keyed.mac?.length, 24, 'key id + SHA-1 digest');
  t.equal(keyed.mac?.readUInt32BE(0), 1, 'key id 1');
});

t.test('extension fields', async (t) => {
  const p = emptyPacket();
  p.version = 4; p.mode = Mode.CLIENT;
  p.extensions.push({ type: 0x0104, value: Buffer.alloc(28, 7) });
  const bytes = encode(p);
  t.equal(bytes.length, 48 + 32);
  const back = decode(bytes);
  t.equal(back.extensions.length, 1);
  t.equal(back.extensions[0]!.type, 0x0104);
  t.same(back.extensions[0]!.value, Buffer.alloc(28, 7));
  t.same(encode(back), bytes);
});

t.test('malformed datagrams are refused with a reason', async (t) => {
  const good = vector('chronyd-request.hex');
  const reason = (b: Buffer) => { try { decode(b); return 'ok'; } catch (e) { return e instanceof NtpDecodeError ? e.reason : 'other'; } };
  t.equal(reason(good.subarray(0, 47)), 'short');
  t.equal(reason(Buffer.alloc(0)), 'short');
  t.equal(reason(Buffer.concat([good, Buffer.alloc(7)])), 'trailer', '7 stray bytes');
  t.equal(reason(Buffer.concat([good, Buffer.alloc(12)])), 'trailer', '12 bytes: no MAC is 12 long');
  t.equal(reason(Buffer.concat([good, Buffer.alloc(4)])), 'ok', 'crypto-NAK');
  const badExt = Buffer.concat([good, Buffer.from([0, 1, 0, 10]), Buffer.alloc(28)]);
  t.equal(reason(badExt), 'trailer', 'extension length not a multiple of 4');
  const longExt = Buffer.concat([good, Buffer.from([0, 1, 1, 0]), Buffer.alloc(28)]);
  t.equal(reason(longExt), 'trailer', 'extension longer than the datagram');
});

t.test('decode into a reused packet allocates nothing new', async (t) => {
  const into = emptyPacket();
  const ts = into.transmitTime;
  decode(vector('ntpdig-request.hex'), into);
  t.equal(into.transmitTime, ts, 'same timestamp object');
  t.same(into.transmitTime, { seconds: 0xeeb0aa76, fraction: 0x4ae4e800 });
  decode(vector('chronyd-keyed-request.hex'), into);
  t.ok(into.mac);
  decode(vector('chronyd-request.hex'), into);
  t.equal(into.mac, undefined, 'a previous MAC does not linger');
});

t.test('values', async (t) => {
  t.equal(modeOf(0xe3), Mode.CLIENT);
  t.equal(versionOf(0xe3), 4);
  t.equal(modeOf(0x16), Mode.CONTROL);
  t.equal(referenceIdText(Kiss.RATE, 0), 'RATE');
  t.equal(asciiId('LOCL'), 0x4c4f434c);
  t.equal(secondsToShort(0), 0);
  t.equal(secondsToShort(1.5), 0x18000);
  t.equal(secondsToShort(1e-9), 1, 'rounds up');
  t.equal(secondsToShort(1e9), 0xffffffff, 'saturates');
  // Across the 2036 era rollover: 1 s after the wrap minus 1 s before it.
  t.equal(timestampDiff({ seconds: 0, fraction: 0 }, { seconds: 0xffffffff, fraction: 0 }), 1);
  const buf = Buffer.alloc(60, 0xaa);
  t.equal(encodeInto(emptyPacket(), buf, 6), 48);
  t.equal(buf[5], 0xaa, 'writes from the offset only');
  t.equal(buf[54], 0xaa);
});
