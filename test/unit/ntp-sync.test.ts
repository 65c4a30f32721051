/**
 * Synchronisation logic on constructed replies: the packet checks and the
 * sample arithmetic of a Source, selection (falsetickers out, lowest stratum
 * in), the head election, and what the head then serves.
 */
import t from 'tap';
import { emptyPacket, Kiss, Leap, Mode, secondsToShort, shortToSeconds, timestamp, type NtpPacket, type NtpTimestamp } from '../../protocols/ntp/codec.ts';
import { ipToInt } from '../../src/net/ipv4.ts';
import { SystemClock } from '../../src/services/ntp/clock.ts';
import { elect } from '../../src/services/ntp/election.ts';
import { choosePeer, truechimers } from '../../src/services/ntp/selection.ts';
import { Source, UNREACHABLE_AFTER } from '../../src/services/ntp/source.ts';
import { LOCAL_REFERENCE_ID, Synchronisation, type HeadEntry } from '../../src/services/ntp/sync.ts';

const clock = new SystemClock();
const PRECISION = -20;

function at(seconds: number): NtpTimestamp {
  const whole = Math.floor(seconds);
  return { seconds: whole, fraction: Math.round((seconds - whole) * 4294967296) };
}

interface ServerSays { offset?: number; delay?: number; stratum?: number; leap?: number; referenceId?: number; rootDelay?: number; rootDispersion?: number }

/** One poll and its reply: the server's clock is `offset` ahead, the path `delay` long (symmetric). */
function exchange(s: Source, says: ServerSays = {}, base = 3_900_000_000): string {
  const { offset = 0, delay = 0.002, stratum = 2, leap = Leap.NONE, referenceId = ipToInt('192.0.2.1'), rootDelay = 0.01, rootDispersion = 0.005 } = says;
  const t1 = at(base);
  s.polled(t1, t1);
  const p: NtpPacket = emptyPacket();
  p.version = 4; p.mode = Mode.SERVER; p.stratum = stratum; p.leap = leap; p.referenceId = referenceId;
  p.precision = PRECISION;
  p.rootDelay = secondsToShort(rootDelay); p.rootDispersion = secondsToShort(rootDispersion);
  p.originTime = { ...t1 };
  p.receiveTime = at(base + delay / 2 + offset);
  p.transmitTime = at(base + delay / 2 + offset + 0.0001);
  return s.onReply(p, at(base + delay + 0.0001), clock.read(), PRECISION);
}

t.test('a source measures offset and delay from the four timestamps', async (t) => {
  const s = new Source('upstream', '192.0.2.10:123', '192.0.2.10', 123);
  t.equal(exchange(s, { offset: 0.004, delay: 0.002 }), 'sample');
  const e = s.estimate(clock.read())!;
  t.ok(Math.abs(e.offset - 0.004) < 1e-6, `offset ${e.offset}`);
  t.ok(Math.abs(e.delay - 0.002) < 1e-6, `delay ${e.delay}`);
  t.ok(s.synchronised && s.reachable);
  t.equal(s.reach, 1);
});

t.test('the clock filter keeps the least-delay sample', async (t) => {
  const s = new Source('upstream', 'x', '192.0.2.10', 123);
  exchange(s, { offset: 0.010, delay: 0.050 });
  exchange(s, { offset: 0.001, delay: 0.001 });
  exchange(s, { offset: 0.020, delay: 0.080 });
  t.ok(Math.abs(s.estimate(clock.read())!.offset - 0.001) < 1e-6, 'the short round trip wins');
  t.ok(s.estimate(clock.read())!.jitter > 0.005, 'the spread of the others shows as jitter');
});

t.test('replies that are not measurements', async (t) => {
  const s = new Source('upstream', 'x', '192.0.2.10', 123);
  t.equal(exchange(s, { leap: Leap.UNSYNCHRONISED, stratum: 16 }), 'unsynchronised');
  t.ok(s.reachable, 'an unsynchronised server is still alive');
  t.notOk(s.synchronised, 'but offers no time');
  t.equal(exchange(s, { stratum: 0, referenceId: Kiss.RATE }), 'kiss-rate');
  t.equal(s.backoff, 2, 'RATE doubles the poll interval');
  const p = emptyPacket();
  p.mode = Mode.SERVER;
  p.originTime = timestamp(1, 2);
  t.equal(s.onReply(p, timestamp(), 0, PRECISION), 'bogus', 'a reply whose origin is not our transmit is refused');
  t.equal(exchange(s, { stratum: 0, referenceId: Kiss.DENY }), 'kiss-deny');
  t.ok(s.refused && !s.reachable, 'DENY: never polled again');
});

t.test('unreachable after missed polls', async (t) => {
  const s = new Source('head', 'h1', '192.0.2.11', 123);
  exchange(s);
  for (let i = 0; i < UNREACHABLE_AFTER; i++) s.polled(at(1), at(1));
  t.ok(s.reachable, `${UNREACHABLE_AFTER - 1} unanswered polls and one pending: still reachable`);
  s.polled(at(1), at(1));
  t.notOk(s.reachable, `${UNREACHABLE_AFTER} unanswered: unreachable`);
});

t.test('intersection: the falseticker is voted out', async (t) => {
  const c = (source: string, offset: number, distance = 0.01, stratum = 2) => ({ source, offset, distance, stratum });
  const ok = truechimers([c('a', 0.001), c('b', 0.002), c('c', 0.5), c('d', 0.0015)]).map((x) => x.source);
  t.same(ok.sort(), ['a', 'b', 'd']);
  t.same(truechimers([c('a', 0), c('b', 1)]), [], 'two that disagree: no majority');
  t.same(truechimers([c('a', 0, 2)]), [], 'beyond MAXDIST: not a candidate');
  const peer = choosePeer(truechimers([c('a', 0, 0.05, 3), c('b', 0, 0.2, 2)]), undefined);
  t.equal(peer?.source, 'b', 'lower stratum first, even if further');
  t.equal(choosePeer([c('a', 0, 0.05), c('b', 0, 0.01)], 'a')?.source, 'a', 'the current peer is kept at the same stratum');
});

t.test('election: the first alive head in list order', async (t) => {
  const heads = (alive: boolean[], self: number) => alive.map((a, i) => ({ name: `h${i + 1}`, self: i === self, alive: a || i === self }));
  t.same(elect({ heads: heads([true, true, true], 1), realTime: false, localStratumSet: false, settled: true }), { leader: 'h1', localReference: false });
  t.same(elect({ heads: heads([false, true, true], 1), realTime: false, localStratumSet: false, settled: true }), { leader: 'h2', localReference: true });
  t.same(elect({ heads: heads([false, true, true], 1), realTime: false, localStratumSet: false, settled: false }), { leader: 'h2', localReference: false }, 'not before the start-up polls are done');
  t.same(elect({ heads: heads([true, true], 1), realTime: true, localStratumSet: false, settled: true }), { leader: undefined, localReference: false }, 'real time beats any election');
  t.same(elect({ heads: [], realTime: false, localStratumSet: true, settled: true }), { leader: undefined, localReference: true }, 'a single head with localStratum');
  t.same(elect({ heads: [], realTime: false, localStratumSet: false, settled: true }), { leader: undefined, localReference: false }, 'a single head without: unsynchronised');
});

t.test('election on etcd: the head etcd names leads, whatever the list order', async (t) => {
  const heads = (self: number) => ['h1', 'h2', 'h3'].map((name, i) => ({ name, self: i === self, alive: true }));
  t.same(elect({ heads: heads(2), realTime: false, localStratumSet: false, settled: true, named: 'h3' }), { leader: 'h3', localReference: true }, 'the named head serves its clock');
  t.same(elect({ heads: heads(0), realTime: false, localStratumSet: false, settled: true, named: 'h3' }), { leader: 'h3', localReference: false }, 'the first listed head follows it');
  t.same(elect({ heads: heads(0), realTime: false, localStratumSet: false, settled: true, named: undefined }), { leader: 'h1', localReference: true }, 'etcd naming none: the first alive head');
  t.same(elect({ heads: heads(0), realTime: true, localStratumSet: false, settled: true, named: 'h3' }), { leader: undefined, localReference: false }, 'real time still beats the election');
});

const SELF = ipToInt('198.18.0.2');

function twoHeads(): { sync: Synchronisation; h1: Source } {
  const h1 = new Source('head', 'h1', '198.18.0.1', 123);
  const heads: HeadEntry[] = [{ name: 'h1', address: '198.18.0.1', source: h1 }, { name: 'h2', address: '198.18.0.2', source: undefined }];
  return { sync: new Synchronisation({ clock, upstreams: [], heads, selfAddress: SELF, localStratum: undefined }), h1 };
}

t.test('following an upstream: stratum, reference id, root delay and dispersion', async (t) => {
  const up = new Source('upstream', '192.0.2.10:123', '192.0.2.10', 123);
  const sync = new Synchronisation({ clock, upstreams: [up], heads: [], selfAddress: SELF, localStratum: undefined });
  exchange(up, { offset: 0.003, delay: 0.002, stratum: 3, rootDelay: 0.01, rootDispersion: 0.005 });
  t.ok(sync.update(clock.read()), 'a change worth logging');
  const st = sync.state;
  t.equal(sync.mode, 'synchronised');
  t.equal(st.stratum, 4);
  t.equal(st.referenceId, ipToInt('192.0.2.10'));
  t.equal(st.leap, Leap.NONE);
  t.ok(Math.abs(shortToSeconds(st.rootDelay) - 0.012) < 0.0001, 'root delay = upstream root delay + our round trip');
  t.ok(st.rootDispersion >= 0.005 + 0.003, 'root dispersion includes the upstream\'s and our clock\'s offset from it');
  t.notOk(sync.update(clock.read()), 'nothing new: no log line');
  const status = sync.status(clock.read());
  t.equal(status.source, '192.0.2.10:123');
  t.ok(Math.abs(status.offset! + 0.003) < 1e-6, 'status: our clock is 3 ms behind');
  t.equal(status.upstreams[0]!.selected, true);
});

t.test('a source that follows us is not followed back', async (t) => {
  const up = new Source('upstream', 'loop', '192.0.2.10', 123);
  const sync = new Synchronisation({ clock, upstreams: [up], heads: [], selfAddress: SELF, localStratum: undefined });
  exchange(up, { stratum: 5, referenceId: SELF });
  sync.update(clock.read());
  t.equal(sync.mode, 'unsynchronised');
});

t.test('two heads: follow the leader, take over when it is gone', async (t) => {
  const { sync, h1 } = twoHeads();
  sync.update(clock.read());
  t.equal(sync.mode, 'unsynchronised', 'at first nothing is known');
  exchange(h1, { stratum: 10, referenceId: LOCAL_REFERENCE_ID });
  sync.update(clock.read());
  t.equal(sync.mode, 'follower');
  t.equal(sync.leader, 'h1');
  t.equal(sync.state.stratum, 11);
  t.equal(sync.state.referenceId, ipToInt('198.18.0.1'));
  for (let i = 0; i <= UNREACHABLE_AFTER; i++) h1.polled(at(1), at(1));
  sync.update(clock.read());
  t.equal(sync.mode, 'leader', 'h1 stopped answering: h2 leads');
  t.equal(sync.leader, 'h2');
  t.equal(sync.state.stratum, 10);
  t.equal(sync.state.referenceId, LOCAL_REFERENCE_ID);
  const heads = sync.status(clock.read()).heads;
  t.same(heads.map((h) => [h.name, h.self, h.reachable, h.leader]), [['h1', false, false, false], ['h2', true, true, true]]);
});

t.test('two heads: a head synchronised to real time is followed, no election', async (t) => {
  const { sync, h1 } = twoHeads();
  exchange(h1, { stratum: 3, referenceId: ipToInt('192.0.2.1') });
  sync.update(clock.read());
  t.equal(sync.mode, 'synchronised');
  t.equal(sync.leader, undefined);
  t.equal(sync.state.stratum, 4);
});

t.test('a single head with a local stratum serves its own clock', async (t) => {
  const sync = new Synchronisation({ clock, upstreams: [], heads: [], selfAddress: SELF, localStratum: 7 });
  sync.update(clock.read());
  t.equal(sync.mode, 'local');
  t.equal(sync.state.stratum, 7);
  t.equal(sync.state.leap, Leap.NONE);
  t.equal(sync.state.referenceId, LOCAL_REFERENCE_ID);
});
