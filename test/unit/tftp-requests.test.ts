/**
 * The request side: the checks a request goes through (writes, mode, NUL in
 * the name), option negotiation (RFC 2347/2348/2349/7440) and admission
 * under the cap on concurrent transfers.
 */
import t from 'tap';
import { decode, encodeRequest, Op, type TftpRequest } from '../../protocols/tftp/codec.ts';
import type { TftpRequestContext } from '../../src/services/tftp/context.ts';
import { Admission } from '../../src/services/tftp/admission.ts';
import { confineName } from '../../src/services/tftp/handlers/name.ts';
import { negotiate } from '../../src/services/tftp/handlers/options.ts';
import { checkMode, refuseWrites } from '../../src/services/tftp/handlers/request.ts';

function ctxOf(bytes: Buffer): TftpRequestContext {
  return { req: decode(bytes) as TftpRequest, clientIp: 0, clientAddress: '198.18.0.2', clientPort: 1234, netascii: false, name: '', trace: [] };
}

function run(bytes: Buffer): TftpRequestContext {
  const ctx = ctxOf(bytes);
  for (const h of [refuseWrites, checkMode, confineName]) if (!h(ctx)) break;
  return ctx;
}

const rrq = (filename: string, mode = 'octet', options: Record<string, string> = {}) =>
  encodeRequest({ op: Op.RRQ, filename, mode, options: new Map(Object.entries(options)) });

t.test('request checks', async (t) => {
  t.match(run(rrq('undionly.kpxe')), { name: 'undionly.kpxe', netascii: false, refusal: undefined });
  t.match(run(rrq('boot/x.cfg', 'NetASCII')), { name: 'boot/x.cfg', netascii: true }, 'modes are case-insensitive');
  t.match(run(encodeRequest({ op: Op.WRQ, filename: 'x', mode: 'octet', options: new Map() })).refusal, { code: 2, reason: 'write-request' }, 'writes are refused');
  t.match(run(rrq('x', 'mail')).refusal, { code: 4, reason: 'mode' }, 'mail is not a read mode');
  t.match(run(rrq('x', 'binary')).refusal, { code: 4, reason: 'mode' });
  t.match(run(Buffer.from('\x00\x01undionly.kpxe\x00/../../etc/passwd\x00octet\x00', 'latin1')).refusal, { code: 2, reason: 'name-nul' }, 'a NUL in the name');
  t.match(run(Buffer.from('\x00\x01a\x00b\x00c\x00netascii\x00', 'latin1')).refusal, { code: 2, reason: 'name-nul' }, 'two NULs in the name');
  t.match(run(rrq('../x')).refusal, { code: 2, reason: 'name-parent' });
  const traced = run(rrq('/etc/shadow'));
  t.match(traced.trace, [/refused \(name-absolute\)/], 'the refusal is traced for the debug log');
});

t.test('option negotiation', async (t) => {
  const limits = { maxBlockSize: 1468, maxWindowSize: 64, timeoutMs: 1000 };
  const none = negotiate(new Map(), 100, limits);
  t.same(none, { blockSize: 512, windowSize: 1, timeoutMs: 1000, granted: new Map() }, 'no options: RFC 1350 defaults and no OACK');

  const atftp = negotiate(new Map([['tsize', '0'], ['blksize', '1432'], ['windowsize', '16']]), 74213, limits);
  t.same([...atftp.granted], [['tsize', '74213'], ['blksize', '1432'], ['windowsize', '16']], 'answered in the client\'s order, tsize filled in');
  t.match(atftp, { blockSize: 1432, windowSize: 16 });

  const big = negotiate(new Map([['blksize', '65464'], ['windowsize', '65535']]), 1, limits);
  t.same([...big.granted], [['blksize', '1468'], ['windowsize', '64']], 'lowered to the configured limits');

  const curl = negotiate(new Map([['tsize', '0'], ['blksize', '1024'], ['timeout', '6']]), 10, limits);
  t.match(curl, { blockSize: 1024, timeoutMs: 6000 });
  t.equal(curl.granted.get('timeout'), '6');

  const bad = negotiate(new Map([['blksize', '7'], ['windowsize', '0'], ['timeout', '256'], ['tsize', 'x'], ['multicast', ''], ['utimeout', '5000']]), 10, limits);
  t.same(bad, { blockSize: 512, windowSize: 1, timeoutMs: 1000, granted: new Map() }, 'invalid values and unknown options are ignored, not fatal');
  t.same([...negotiate(new Map([['blksize', '1e3'], ['windowsize', '-4'], ['blksize2', '9']]), 1, limits).granted], [], 'numbers are plain digits');
});

t.test('admission: a cap, first come first served, repeats keep their place', async (t) => {
  const a = new Admission<string>(2, 3, 1000);
  t.equal(a.admit('c1', 'c1', 0), 'start');
  t.equal(a.admit('c2', 'c2', 0), 'start');
  t.equal(a.admit('c3', 'c3', 1), 'wait');
  t.equal(a.admit('c4', 'c4', 2), 'wait');
  t.equal(a.admit('c5', 'c5', 3), 'wait');
  t.equal(a.admit('c6', 'c6', 4), 'full', 'the line is full too');
  t.ok(a.touch('c3', 900), 'c3 asks again: refreshed, same place');
  t.ok(a.touch('c5', 1000));
  t.notOk(a.touch('c9', 900));
  t.equal(a.release(950), 'c3', 'the oldest waiting request takes the slot');
  t.equal(a.release(1500), 'c5', 'c4 was not heard for over a second: forgotten, c5 is next');
  t.same([a.running, a.queued], [2, 0]);
  t.equal(a.release(1600), undefined);
  t.equal(a.admit('c7', 'c7', 1700), 'start', 'with nobody waiting and a free slot: start at once');
});
