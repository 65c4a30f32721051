import t from 'tap';
import { checkBatch, parsePrecision, stampUntimed, type Precision } from '../../protocols/influx/line-protocol.ts';
import { prng } from '../helpers/fuzz.ts';

const ok = (body: string, p: Precision = 'ns') => checkBatch(body, p);

t.test('telegraf-shaped lines pass', async (t) => {
  const body = [
    'cpu,cpu=cpu0,host=n001 usage_idle=98.5,usage_user=1.25 1700000000000000000',
    'mem,host=n001 used=123456789i,available_percent=42.1,free=12u 1700000000000000000',
    'system,host=n001 uptime_format="1 day,  2:03",load1=0.5 1700000000000000000',
    'net,host=n001,interface=eth0 up=true,err_in=0i 1700000000000000000',
    'weird\\ name,tag\\,key=va\\ l\\=ue field\\ key=1,b=F,s="a \\"q\\" \\\\ x" -1',
    '',
    '# a comment',
    'disk,path=/ used_percent=1e3',
  ].join('\n') + '\n';
  const r = ok(body);
  t.ok(r.ok, JSON.stringify(r));
  if (r.ok) { t.equal(r.points, 6); t.equal(r.untimed.length, 1); }
});

t.test('every precision bounds the timestamp', async (t) => {
  t.ok(ok('m f=1 9223372036854775806', 'ns').ok);
  t.notOk(ok('m f=1 9223372036854775807', 'ns').ok);
  t.ok(ok('m f=1 9223372036', 's').ok);
  t.notOk(ok('m f=1 9223372037', 's').ok);
  t.ok(ok('m f=1 153722867', 'm').ok);
  t.notOk(ok('m f=1 2562048', 'h').ok);
  t.ok(ok('m f=1 9223372036854775', 'us').ok);
  t.notOk(ok('m f=1 9223372036854776', 'us').ok);
  t.ok(ok('m f=1 9223372036854', 'ms').ok);
  t.notOk(ok('m f=1 9223372036855', 'ms').ok);
  t.equal(parsePrecision('n', 'v1'), 'ns');
  t.equal(parsePrecision('u', 'v1'), 'us');
  t.equal(parsePrecision('h', 'v1'), 'h');
  t.equal(parsePrecision('h', 'v2'), undefined);
  t.equal(parsePrecision('n', 'v2'), undefined);
  t.equal(parsePrecision(undefined, 'v2'), 'ns');
});

t.test('bad lines are named with their number', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['m', /missing fields/],
    ['m ', /missing fields/],
    [',t=1 f=1', /missing measurement/],
    ['m,t f=1', /missing tag value/],
    ['m,t= f=1', /missing tag value/],
    ['m,=v f=1', /missing tag key/],
    ['m,t=a=b f=1', /unescaped '='/],
    ['m f=', /missing field value/],
    ['m f', /missing field value/],
    ['m f=1,', /missing field key/],
    ['m f=abc', /bad field value/],
    ['m f=1.2.3', /bad field value/],
    ['m f=+1', /bad field value/],
    ['m f=12x', /bad field value/],
    ['m f=1.5i', /bad integer/],
    ['m f=9223372036854775808i', /int64/],
    ['m f=-1u', /bad unsigned/],
    ['m f=18446744073709551616u', /uint64/],
    ['m f=1e999', /out of range/],
    ['m f="abc', /unterminated string/],
    ['m f=1 12.5', /bad timestamp/],
    ['m f=1 abc', /bad timestamp/],
    ['m f=1 1 extra', /after the timestamp/],
    ['m f=tru', /bad unsigned integer/],
    ['m f=fals', /bad field value/],
  ];
  for (const [line, re] of cases) {
    const r = ok(`good f=1 1\n\n${line}\ngood f=2 2\n`);
    t.notOk(r.ok, line);
    if (!r.ok) { t.equal(r.line, 3, line); t.match(r.message, re, line); t.equal(r.text, line); }
  }
});

t.test('a newline inside a string field belongs to its line', async (t) => {
  const r = ok('m s="a\nb" 1\nm f= 2\n');
  t.notOk(r.ok);
  if (!r.ok) t.equal(r.line, 3);
});

t.test('untimed points get the accept time', async (t) => {
  const body = 'a f=1\nb f=2 5\nc,t=x f="s"  \n';
  const r = ok(body);
  t.ok(r.ok);
  if (!r.ok) return;
  const stamped = stampUntimed(body, r.untimed, '99');
  t.equal(stamped, 'a f=1 99\nb f=2 5\nc,t=x f="s" 99  \n');
  const again = ok(stamped);
  t.ok(again.ok && again.untimed.length === 0);
});

t.test('fuzz: mutations of good lines never throw and errors name a line that exists', async (t) => {
  const rand = prng(19);
  const base = 'cpu,host=n001,cpu=cpu0 usage_idle=98.5,usage_user=1.25,n=3i,u=4u,ok=true,s="x y" 1700000000000000000\n';
  const alphabet = ' ,=\\"\n\rit-.0123456789eEuTf#';
  let bad = 0;
  for (let k = 0; k < 5000; k++) {
    const chars = (base + base).split('');
    const edits = 1 + (rand() % 4);
    for (let e = 0; e < edits; e++) {
      const at = rand() % chars.length;
      const op = rand() % 3;
      const c = alphabet[rand() % alphabet.length]!;
      if (op === 0) chars[at] = c; else if (op === 1) chars.splice(at, 1); else chars.splice(at, 0, c);
    }
    const body = chars.join('');
    const r = checkBatch(body, 'ns');
    if (!r.ok) {
      bad++;
      const lines = body.split('\n').length;
      if (r.line < 1 || r.line > lines) t.fail(`line ${r.line} of ${lines}: ${JSON.stringify(body)}`);
    }
  }
  t.ok(bad > 1000, `${bad} of 5000 mutations rejected`);
});
