/**
 * TFTP codec against packets recorded from real programs (test/vectors/tftp,
 * see record.ts there for which client and server produced each one).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decode, encode, encodeAck, encodeDataHeader, encodeError, encodeOack, encodeRequest,
  ErrorCode, Op, TftpDecodeError, type TftpPacket,
} from '../../protocols/tftp/codec.ts';

const VECTORS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../vectors/tftp');

function vector(name: string): Buffer {
  const text = readFileSync(path.join(VECTORS, `${name}.hex`), 'utf8');
  return Buffer.from(text.split('\n').filter((l) => !l.startsWith('#')).join('').trim(), 'hex');
}

function opts(p: TftpPacket): Record<string, string> {
  return 'options' in p ? Object.fromEntries(p.options) : {};
}

t.test('requests from tftp-hpa, atftp and curl', async (t) => {
  const octet = decode(vector('rrq-tftp-hpa-octet'));
  t.match(octet, { op: Op.RRQ, filename: 'small.bin', mode: 'octet', extra: [] });
  t.same(opts(octet), {}, 'tftp-hpa sends no options');

  t.match(decode(vector('rrq-tftp-hpa-netascii')), { op: Op.RRQ, filename: 'hello.txt', mode: 'netascii' });

  const atftp = decode(vector('rrq-atftp-options'));
  t.same(opts(atftp), { tsize: '0', blksize: '1432', windowsize: '4' }, 'atftp options in order');
  t.same([...(atftp as { options: ReadonlyMap<string, string> }).options.keys()], ['tsize', 'blksize', 'windowsize']);

  t.same(opts(decode(vector('rrq-curl'))), { tsize: '0', blksize: '1024', timeout: '6' }, 'curl asks tsize, blksize and timeout');
  t.match(decode(vector('wrq-tftp-hpa')), { op: Op.WRQ, filename: 'upload.txt', mode: 'netascii' });
});

t.test('server packets from tftpd-hpa and dnsmasq', async (t) => {
  const first = decode(vector('data-tftpd-hpa-block1'));
  t.match(first, { op: Op.DATA, block: 1 });
  t.equal((first as { data: Buffer }).data.length, 512);
  t.equal((first as { data: Buffer }).data[0], 3, 'payload starts with the file content');
  const last = decode(vector('data-tftpd-hpa-last'));
  t.match(last, { op: Op.DATA, block: 3 });
  t.equal((last as { data: Buffer }).data.length, 1300 - 1024, 'the short last block ends the transfer');
  t.equal((decode(vector('data-tftpd-hpa-netascii')) as { data: Buffer }).data.toString('latin1'), 'line one\r\nline two\r\0\r\nend\r\n', 'netascii: LF becomes CR LF, CR becomes CR NUL');

  t.same(opts(decode(vector('oack-tftpd-hpa'))), { tsize: '1300', blksize: '1432' }, 'tftpd-hpa ignores windowsize');
  t.same(opts(decode(vector('oack-dnsmasq'))), { blksize: '1432', tsize: '1300' }, 'so does dnsmasq');
  t.same(opts(decode(vector('oack-tftpd-hpa-curl'))), { tsize: '1300', blksize: '1024', timeout: '6' });

  t.match(decode(vector('error-tftpd-hpa-not-found')), { op: Op.ERROR, code: ErrorCode.FILE_NOT_FOUND, message: 'File not found' });
  t.match(decode(vector('ack-tftp-hpa-block1')), { op: Op.ACK, block: 1 });
  t.match(decode(vector('ack-atftp-block0')), { op: Op.ACK, block: 0 });
});

t.test('encoding reproduces the recorded bytes', async (t) => {
  for (const name of ['rrq-tftp-hpa-octet', 'rrq-atftp-options', 'rrq-curl', 'wrq-tftp-hpa', 'oack-tftpd-hpa', 'oack-dnsmasq',
    'error-tftpd-hpa-not-found', 'ack-tftp-hpa-block1', 'ack-atftp-block0', 'data-tftpd-hpa-block1', 'data-tftpd-hpa-last']) {
    const bytes = vector(name);
    t.same(encode(decode(bytes)), bytes, name);
  }
  t.same(encodeOack(new Map([['tsize', '1300'], ['blksize', '1432']])), vector('oack-tftpd-hpa'));
  t.same(encodeError(ErrorCode.FILE_NOT_FOUND, 'File not found'), vector('error-tftpd-hpa-not-found'));
  t.same(encodeAck(1), vector('ack-tftp-hpa-block1'));
  t.same(encodeDataHeader(1), vector('data-tftpd-hpa-block1').subarray(0, 4));
  t.same(encodeDataHeader(65536 + 7), Buffer.from([0, 3, 0, 7]), 'block numbers wrap at 65536');
});

t.test('option names are case-insensitive; repeats keep the first; odd strings are extra', async (t) => {
  const p = decode(encodeRequest({ op: Op.RRQ, filename: 'f', mode: 'OCTET', options: new Map([['BlkSize', '1024']]), extra: ['blksize', '2048', 'dangling'] }));
  t.same(opts(p), { blksize: '1024' });
  t.same((p as { extra: readonly string[] }).extra, ['dangling']);
  t.equal((p as { mode: string }).mode, 'OCTET', 'mode kept as sent');
});

t.test('a NUL inside the name shows up as an unknown mode plus extra strings', async (t) => {
  const p = decode(Buffer.from('\x00\x01undionly.kpxe\x00/../../etc/passwd\x00octet\x00', 'latin1'));
  t.match(p, { filename: 'undionly.kpxe', mode: '/../../etc/passwd', extra: ['octet'] });
});

t.test('malformed packets are refused with a reason', async (t) => {
  const cases: Array<[string, Buffer, string]> = [
    ['empty', Buffer.alloc(0), 'short'],
    ['one byte', Buffer.from([0]), 'short'],
    ['opcode 0', Buffer.from([0, 0, 0, 1]), 'opcode'],
    ['opcode 7', Buffer.from([0, 7, 0, 1]), 'opcode'],
    ['ACK without block', Buffer.from([0, 4, 0]), 'short'],
    ['DATA without block', Buffer.from([0, 3]), 'short'],
    ['ERROR without code', Buffer.from([0, 5, 0]), 'short'],
    ['RRQ without mode', Buffer.from('\x00\x01file\x00', 'latin1'), 'short'],
    ['RRQ unterminated', Buffer.from('\x00\x01file\x00octet', 'latin1'), 'unterminated'],
    ['RRQ empty name', Buffer.from('\x00\x01\x00octet\x00', 'latin1'), 'empty-name'],
    ['OACK odd', Buffer.from('\x00\x06blksize\x00', 'latin1'), 'unterminated'],
  ];
  for (const [what, bytes, reason] of cases) {
    let reasonSeen: string | undefined;
    try { decode(bytes); } catch (e) { reasonSeen = e instanceof TftpDecodeError ? e.reason : String(e); }
    t.equal(reasonSeen, reason, what);
  }
  t.match(decode(Buffer.from([0, 5, 0, 1])), { op: Op.ERROR, code: 1, message: '' }, 'an ERROR without a message is accepted');
  // Every truncation of every recorded vector decodes or throws TftpDecodeError, nothing else.
  for (const name of ['rrq-atftp-options', 'rrq-curl', 'oack-dnsmasq', 'error-tftpd-hpa-not-found', 'data-tftpd-hpa-last']) {
    const bytes = vector(name);
    for (let n = 0; n < bytes.length; n++) {
      try { decode(bytes.subarray(0, n)); } catch (e) { if (!(e instanceof TftpDecodeError)) t.fail(`${name}[0,${n}) threw ${String(e)}`); }
    }
  }
});
