/**
 * The small pure parts of the HTTP service: paths below a root, Range
 * headers, the Apache log formats and the access policy.
 */
import t from 'tap';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { AccessPolicy, bearerOf, clientIpv4, cookieOf } from '../../src/services/http/auth.ts';
import { FilePathError, MAX_RANGE_HEADER, parseRange, resolveUnder } from '../../src/services/http/files.ts';
import { clfTime, combinedLine, errorLine } from '../../src/services/http/logs.ts';
import { MemoryStore } from '../../src/store/memory.ts';

function reasonOf(f: () => unknown): string | undefined {
  try { f(); } catch (e) { return e instanceof FilePathError ? e.reason : 'other'; }
  return undefined;
}

t.test('resolveUnder keeps requests below the root', async (t) => {
  const root = '/srv/boot';
  t.equal(resolveUnder(root, 'images/vmlinuz'), '/srv/boot/images/vmlinuz');
  t.equal(resolveUnder(root, 'a//b'), '/srv/boot/a/b', 'empty segments collapse');
  for (const bad of ['../etc/passwd', 'images/../../etc/passwd', 'a/./b', '..', 'a/..']) {
    t.equal(reasonOf(() => resolveUnder(root, bad)), 'path-traversal', `refuses ${bad}`);
  }
  for (const bad of ['', '/', 'a\0b', 'a\\..\\b']) {
    t.equal(reasonOf(() => resolveUnder(root, bad)), 'bad-path', `refuses ${JSON.stringify(bad)}`);
  }
  t.equal(resolveUnder(root, '/etc/passwd'), '/srv/boot/etc/passwd', 'a leading slash stays below the root');
});

t.test('parseRange: single ranges, suffixes, open ends, what to ignore and what is unsatisfiable', async (t) => {
  t.equal(parseRange(undefined, 100), 'whole');
  t.same(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  t.same(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  t.same(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  t.same(parseRange('bytes=-1000', 100), { start: 0, end: 99 }, 'suffix longer than the file: the whole file');
  t.same(parseRange('bytes=50-1000', 100), { start: 50, end: 99 }, 'end past the file is clipped');
  t.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  t.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  t.equal(parseRange('bytes=0-1,5-6', 100), 'whole', 'several ranges: the whole file');
  t.equal(parseRange('items=0-1', 100), 'whole', 'other units: ignored');
  t.equal(parseRange('bytes=9-1', 100), 'whole', 'reversed: ignored');
  t.same(parseRange(' Bytes = 1 - 2 ', 100), { start: 1, end: 2 }, 'optional whitespace and case');
  for (const bad of ['bytes=', 'bytes=-', 'bytes=a-b', 'bytes=1-2!', 'bytes 1-2', '=1-2', 'bytes=1-2-3']) {
    t.equal(parseRange(bad, 100), 'malformed', `not a range: ${JSON.stringify(bad)}`);
  }
});

// Issue 15 finding 3: this header cost ~300 ms of event-loop time in the old regex
// (/^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/, quadratic in the spaces) and stalled DNS, DHCP and TFTP.
t.test('parseRange refuses the pathological header, and any header over its bound, before reading it', async (t) => {
  const hostile = 'bytes=' + ' '.repeat(16_200) + '!';
  t.equal(parseRange(hostile, 1 << 20), 'malformed', 'the attack header is refused');
  const padded = 'bytes=0-9' + ' '.repeat(MAX_RANGE_HEADER);
  t.equal(parseRange(padded, 100), 'malformed', 'a valid range padded past MAX_RANGE_HEADER is refused unread');
  t.ok(MAX_RANGE_HEADER <= 256, 'the bound is small');
  t.same(parseRange('bytes=' + ' '.repeat(MAX_RANGE_HEADER - 9) + '0-9', 100), { start: 0, end: 9 }, 'up to the bound it still parses');
});

t.test('access and error log lines in the Apache formats', async (t) => {
  const time = new Date(Date.UTC(2026, 10, 5, 7, 8, 9, 12));
  t.equal(clfTime(time), '05/Nov/2026:07:08:09 +0000');
  t.equal(combinedLine({ client: '198.18.0.11', user: undefined, time, method: 'GET', url: '/files/vmlinuz', httpVersion: '1.1', status: 200, bytes: 1234, referer: undefined, userAgent: 'iPXE/1.21.1' }),
    '198.18.0.11 - - [05/Nov/2026:07:08:09 +0000] "GET /files/vmlinuz HTTP/1.1" 200 1234 "-" "iPXE/1.21.1"\n');
  t.equal(combinedLine({ client: '127.0.0.1', user: 'api', time, method: 'POST', url: '/x"y', httpVersion: '1.1', status: 400, bytes: undefined, referer: 'r', userAgent: 'a\nb' }),
    '127.0.0.1 - api [05/Nov/2026:07:08:09 +0000] "POST /x\\"y HTTP/1.1" 400 - "r" "a\\x0ab"\n', 'quotes and control bytes escaped');
  t.match(errorLine(time, 'warn', '127.0.0.1:5000', 'bad\nthing'), /^\[Thu Nov 05 07:08:09\.012 2026\] \[http:warn\] \[pid \d+\] \[client 127\.0\.0\.1:5000\] bad thing\n$/);
});

t.test('access policy: token for changes, readOpenTo for reads, cluster networks for the call-back', async (t) => {
  const config = parseConfig('head: { address: 198.18.0.1 }\nsubnets: [{ network: 198.18.0.0/24 }]\n', '<test>');
  const model = new ClusterModel(config, new MemoryStore());
  const p = (open: 'cluster' | 'any' | 'none') => new AccessPolicy('s3cret', model, open);
  t.equal(p('cluster').check('write', '198.18.0.5', 's3cret', undefined), undefined, 'token writes');
  t.equal(p('any').check('write', '198.18.0.5', undefined, 's3cret')?.status, 401, 'a cookie does not write');
  t.equal(p('cluster').check('write', '198.18.0.5', 'wrong', undefined)?.status, 401);
  t.equal(p('cluster').check('read', '198.18.0.5', undefined, undefined), undefined, 'cluster reads open');
  t.equal(p('cluster').check('read', '127.0.0.1', undefined, undefined)?.status, 401, 'others need the token');
  t.equal(p('cluster').check('read', '127.0.0.1', undefined, 's3cret'), undefined, 'or the cookie');
  t.equal(p('any').check('read', '203.0.113.9', undefined, undefined), undefined);
  t.equal(p('none').check('read', '198.18.0.5', undefined, undefined)?.status, 401);
  t.equal(p('none').check('cluster', '198.18.0.5', undefined, undefined), undefined, 'the call-back from the cluster');
  t.equal(p('any').check('cluster', '127.0.0.1', undefined, undefined)?.status, 403, 'not from elsewhere');
  t.equal(bearerOf('Bearer abc'), 'abc');
  t.equal(bearerOf('Basic abc'), undefined);
  t.equal(cookieOf('a=1; bootherd_token=x%20y', 'bootherd_token'), 'x y');
  t.equal(clientIpv4('::ffff:198.18.0.5'), '198.18.0.5');
  t.equal(clientIpv4('::1'), '');
});
