/**
 * The transfer engine driven packet by packet with a fake clock: lockstep,
 * windows, loss, duplicate ACKs (Sorcerer's Apprentice), rollover,
 * retransmission with backoff, adaptive timeouts, patience and deadline,
 * and how often a first packet nobody acknowledged is sent.
 */
import t from 'tap';
import { encodeOack } from '../../protocols/tftp/codec.ts';
import { MAX_START_RESENDS, MIN_TIMEOUT_MS, Transfer, type TransferParams } from '../../src/services/tftp/transfer.ts';

interface Sent { readonly wire: number; readonly length: number }

function make(size: number, p: Partial<TransferParams> = {}, oack = false) {
  const sent: Array<Sent | 'oack'> = [];
  const data = Buffer.alloc(size, 7);
  const params: TransferParams = { blockSize: 512, windowSize: 1, timeoutMs: 1000, patienceMs: 63_000, deadlineMs: 600_000, ...p, startPatienceMs: p.startPatienceMs ?? p.patienceMs ?? 63_000 };
  const tr = new Transfer(data, params, (head, payload) => {
    if (head.readUInt16BE(0) === 6) sent.push('oack');
    else sent.push({ wire: head.readUInt16BE(2), length: payload?.length ?? 0 });
  }, oack ? encodeOack(new Map([['blksize', String(params.blockSize)]])) : undefined, 0);
  const take = () => sent.splice(0);
  const blocks = () => take().map((s) => (s === 'oack' ? 'oack' : s.wire));
  return { tr, take, blocks };
}

t.test('lockstep without options: DATA 1 first, short last block ends it', async (t) => {
  const { tr, take, blocks } = make(1300);
  t.equal(tr.lastBlock, 3);
  tr.start(0);
  t.same(take(), [{ wire: 1, length: 512 }]);
  t.equal(tr.onAck(1, 1), 'progress');
  t.same(blocks(), [2]);
  t.equal(tr.onAck(2, 2), 'progress');
  t.same(take(), [{ wire: 3, length: 276 }]);
  t.equal(tr.onAck(3, 3), 'complete');
  t.ok(tr.done);
  t.equal(tr.bytesAcknowledged, 1300);
  t.equal(tr.onAck(3, 4), 'stale', 'nothing after completion');
  t.equal(tr.onTick(100_000), 'waiting');
});

t.test('a file of whole blocks ends with an empty DATA', async (t) => {
  const { tr, take } = make(1024);
  t.equal(tr.lastBlock, 3);
  tr.start(0);
  tr.onAck(1, 1);
  tr.onAck(2, 2);
  t.same(take().at(-1), { wire: 3, length: 0 });
  const empty = make(0);
  empty.tr.start(0);
  t.same(empty.take(), [{ wire: 1, length: 0 }], 'an empty file is one empty DATA');
});

t.test('OACK first; DATA 1 only after ACK 0', async (t) => {
  const { tr, blocks } = make(2000, {}, true);
  tr.start(0);
  t.same(blocks(), ['oack']);
  t.equal(tr.onRepeatedRequest(100), 'ignored', 'a repeated request soon after the OACK left is an echo');
  t.equal(tr.onTick(1000), 'waiting', 'the OACK is not resent by timer to a client that declared no timeout (atftp aborts on a second OACK)');
  t.same(blocks(), []);
  t.equal(tr.onRepeatedRequest(1500), 'resent', 'a later repeated request means the OACK was lost');
  t.same(blocks(), ['oack']);
  t.equal(tr.onRepeatedRequest(1500.1), 'ignored', 'and its echo is not');
  t.equal(tr.onAck(1, 1), 'stale', 'ACK 1 before DATA 1 means nothing');
  t.equal(tr.onAck(0, 1600), 'progress');
  t.same(blocks(), [1]);
  t.equal(tr.onTick(2599), 'waiting', 'the OACK went out twice, so its ACK measured nothing (Karn): the full timeout');
  t.equal(tr.onTick(2600), 'resent', 'DATA 1 is retransmitted after it');
  t.same(blocks(), [1]);
  tr.onAck(1, 2700);
  t.equal(tr.onRepeatedRequest(1000), 'ignored', 'once the client acknowledged DATA, a repeated request is an echo');
});

t.test('an OACK never answered: given up after the patience', async (t) => {
  const { tr } = make(2000, { patienceMs: 7000 }, true);
  tr.start(0);
  t.equal(tr.onTick(1000), 'waiting');
  t.equal(tr.onTick(3000), 'waiting');
  t.equal(tr.onTick(7000), 'timed-out');
});

t.test('an OACK to a client that declared its timeout: resent after twice it, then at each interval (curl re-ACKs only every 72 s)', async (t) => {
  const { tr, blocks } = make(2000, { timeoutMs: 6000, patienceMs: 6000 * 63, startPatienceMs: 20_000, oackRetransmitMs: 6000 }, true);
  tr.start(0);
  t.same(blocks(), ['oack']);
  t.equal(tr.onTick(11_990), 'waiting', 'the client had one interval of its own to repeat its ACK 0');
  t.equal(tr.onTick(12_000), 'resent', 'then the OACK again');
  t.same(blocks(), ['oack']);
  t.equal(tr.onTick(17_990), 'waiting');
  t.equal(tr.onTick(18_000), 'resent', 'and after each further interval');
  t.equal(tr.onTick(20_000), 'timed-out', 'until the start bound');
  const again = make(2000, { timeoutMs: 6000, patienceMs: 6000 * 63, startPatienceMs: 20_000, oackRetransmitMs: 6000 }, true);
  again.tr.start(0);
  again.tr.onTick(12_000);
  t.equal(again.tr.onAck(0, 12_100), 'progress', 'the ACK 0 of the resent OACK starts the data');
  t.same(again.blocks(), ['oack', 'oack', 1]);
});

t.test('a repeated request before any ACK resends DATA 1 (no options)', async (t) => {
  const { tr, blocks } = make(2000);
  tr.start(0);
  blocks();
  t.equal(tr.onRepeatedRequest(600), 'resent');
  t.same(blocks(), [1]);
});

t.test('windows: full ACK opens the next, partial ACK restarts after the lost block', async (t) => {
  const { tr, blocks } = make(512 * 9 + 100, { windowSize: 4 });
  t.equal(tr.lastBlock, 10);
  tr.start(0);
  t.same(blocks(), [1, 2, 3, 4]);
  t.equal(tr.onAck(4, 1), 'progress');
  t.same(blocks(), [5, 6, 7, 8]);
  t.equal(tr.onAck(6, 2), 'progress', 'block 7 was lost');
  t.same(blocks(), [7, 8, 9, 10], 'the next window starts at the lost block; the last window is short');
  t.equal(tr.onAck(10, 3), 'complete');
});

t.test('Sorcerer\'s Apprentice: duplicate ACKs never double the windows', async (t) => {
  const { tr, blocks } = make(512 * 40, { windowSize: 4 });
  tr.start(0);
  blocks();
  let now = 0;
  let sentCount = 4;
  // A client that acknowledges every window twice (e.g. its ACK was delayed and it retransmitted it).
  for (let end = 4; end < tr.lastBlock; end += 4) {
    now += 1;
    t.equal(tr.onAck(end, now), 'progress');
    t.equal(tr.onAck(end, now + 0.2), 'duplicate', `the echo of ACK ${end} is ignored`);
    sentCount += blocks().length;
  }
  t.equal(sentCount, tr.lastBlock, 'every block went out exactly once');
  t.equal(tr.retransmitted, 0);
});

t.test('a late duplicate ACK (the client timed out first) resends the window once', async (t) => {
  const { tr, blocks } = make(512 * 10);
  tr.start(0);
  t.same(blocks(), [1]);
  tr.onAck(1, 1);
  t.same(blocks(), [2]);
  t.equal(tr.onAck(1, 1.1), 'duplicate', 'within half the timeout: could be an echo');
  t.equal(tr.onAck(1, 600), 'resent', 'after half the timeout: the client waited in vain');
  t.same(blocks(), [2]);
  t.equal(tr.onAck(1, 600.5), 'duplicate', 'and the resend restarts the holdoff');
  t.same(blocks(), []);
  t.equal(tr.retransmitted, 1);
});

t.test('stale ACKs are ignored', async (t) => {
  const { tr, blocks } = make(512 * 100, { windowSize: 8 });
  tr.start(0);
  tr.onAck(8, 1);
  tr.onAck(16, 2);
  blocks();
  t.equal(tr.onAck(5, 3), 'stale', 'an ACK from an older window');
  t.equal(tr.onAck(40, 3), 'stale', 'an ACK beyond what was sent');
  t.same(blocks(), []);
});

t.test('block numbers roll over past 65535 (to 0), lockstep and windowed', async (t) => {
  for (const windowSize of [1, 16]) {
    const size = 8 * 70_000 + 3;
    const { tr, take } = make(size, { blockSize: 8, windowSize });
    t.equal(tr.lastBlock, 70_001);
    tr.start(0);
    let now = 0;
    let expected = 1;
    let ok = true;
    let result: string = 'progress';
    while (result === 'progress') {
      const sent = take() as Sent[];
      for (const s of sent) {
        if (s.wire !== (expected & 0xffff)) ok = false;
        expected++;
      }
      result = tr.onAck(sent.at(-1)!.wire, ++now);
    }
    t.equal(result, 'complete', `windowsize ${windowSize}: completes`);
    t.ok(ok, `windowsize ${windowSize}: wire numbers run 1..65535, 0, 1, ...`);
    t.equal(expected - 1, 70_001, 'each block sent once');
    t.equal(tr.bytesAcknowledged, size);
  }
});

t.test('before any round trip is measured: the full timeout, backoff, then give up', async (t) => {
  const { tr, blocks } = make(5000, { timeoutMs: 1000, patienceMs: 7000 });
  tr.start(0);
  blocks();
  t.equal(tr.onTick(999), 'waiting');
  t.equal(tr.onTick(1000), 'resent');
  t.same(blocks(), [1]);
  t.equal(tr.onTick(2999), 'waiting', 'the wait doubled');
  t.equal(tr.onTick(3000), 'resent');
  t.equal(tr.onTick(6999), 'waiting');
  t.equal(tr.onTick(7000), 'timed-out', 'silent for the patience: given up');
  t.equal(tr.retransmitted, 2);
});

t.test('progress resets the backoff', async (t) => {
  const { tr } = make(5000, { timeoutMs: 1000 });
  tr.start(0);
  tr.onTick(1000);
  tr.onTick(3000);
  t.equal(tr.timeout, 4000);
  tr.onAck(1, 3100);
  t.equal(tr.timeout, 1000);
});

t.test('adaptive timeout follows the round trip, between the floor and the ceiling; Karn\'s rule', async (t) => {
  const { tr, blocks } = make(512 * 50, { timeoutMs: 1000 });
  tr.start(0);
  t.equal(tr.timeout, 1000, 'no sample yet: the ceiling');
  let now = 0;
  for (let b = 1; b <= 10; b++) { now += 0.3; tr.onAck(b, now); }
  t.equal(tr.timeout, MIN_TIMEOUT_MS, 'a LAN round trip: the floor');
  blocks();
  t.equal(tr.onTick(now + MIN_TIMEOUT_MS - 1), 'waiting');
  t.equal(tr.onTick(now + MIN_TIMEOUT_MS), 'resent', 'a lost block costs 20 ms, not a second');
  now += 500;
  tr.onAck(11, now);
  t.equal(tr.timeout, MIN_TIMEOUT_MS, 'the ACK of a retransmitted window is no sample (Karn)');

  const slow = make(512 * 50, { timeoutMs: 1000 });
  slow.tr.start(0);
  let at = 0;
  for (let b = 1; b <= 10; b++) { at += 300; slow.tr.onAck(b, at); }
  t.ok(slow.tr.timeout > 300 && slow.tr.timeout <= 1000, `a slow client gets a longer timeout (${slow.tr.timeout} ms)`);
});

t.test('the deadline ends even a progressing transfer', async (t) => {
  const { tr } = make(512 * 100, { deadlineMs: 5000 });
  tr.start(0);
  for (let b = 1; b <= 10; b++) tr.onAck(b, b * 400);
  t.not(tr.onTick(4999), 'deadline');
  t.equal(tr.onTick(5000), 'deadline');
});

t.test('a first packet never acknowledged holds the transfer only startPatienceMs, whatever timeout the client asked', async (t) => {
  for (const oack of [true, false]) {
    const { tr } = make(5000, { timeoutMs: 255_000, patienceMs: 255_000 * 63, startPatienceMs: 5000 }, oack);
    tr.start(0);
    t.equal(tr.onTick(4990), 'waiting', `${oack ? 'OACK' : 'DATA 1'}: waiting before the bound`);
    t.equal(tr.onTick(5000), 'timed-out', `${oack ? 'OACK' : 'DATA 1'}: given up at the bound, not after 255 s`);
  }
  const { tr } = make(5000, { timeoutMs: 255_000, patienceMs: 255_000 * 63, startPatienceMs: 5000 }, true);
  tr.start(0);
  tr.onAck(0, 100);
  t.not(tr.onTick(10_000), 'timed-out', 'once the OACK is acknowledged the full patience applies');
});

t.test('a first packet never acknowledged is resent by timer at most MAX_START_RESENDS times (a forged request draws a few packets)', async (t) => {
  // The client's 1 s timeout would resend the OACK at 2, 3, 4, ... s; DATA 1 would back off 1, 2, 4, ... s.
  for (const oack of [true, false]) {
    const { tr, blocks } = make(5000, { timeoutMs: 1000, patienceMs: 63_000, startPatienceMs: 20_000, ...(oack ? { oackRetransmitMs: 1000 } : {}) }, oack);
    tr.start(0);
    const sent: Array<number | string> = [];
    let gaveUp = false;
    for (let now = 10; now < 20_000; now += 10) { gaveUp ||= tr.onTick(now) === 'timed-out'; sent.push(...blocks()); }
    t.notOk(gaveUp, 'waiting until the start bound');
    const first = oack ? 'oack' : 1;
    t.same(sent, Array(1 + MAX_START_RESENDS).fill(first), `${oack ? 'OACK' : 'DATA 1'}: sent, resent ${MAX_START_RESENDS} times by timer, then only waiting`);
    t.equal(tr.onTick(20_000), 'timed-out', 'given up at the start bound');
  }
  // A repeated request is still answered (a real client that lost everything asks again), and once the client
  // acknowledges, the timer resends as often as the patience allows.
  const { tr, blocks } = make(5000, { timeoutMs: 1000, patienceMs: 63_000, startPatienceMs: 20_000 });
  tr.start(0);
  for (let now = 10; now < 10_000; now += 10) tr.onTick(now);
  blocks();
  t.equal(tr.onRepeatedRequest(10_000), 'resent', 'a repeated request gets DATA 1 again');
  t.same(blocks(), [1]);
  t.equal(tr.onAck(1, 10_100), 'progress');
  blocks();
  let resends = 0;
  for (let now = 10_110; now < 40_000; now += 10) if (tr.onTick(now) === 'resent') resends++;
  t.ok(resends > MAX_START_RESENDS, `after the first ACK, DATA 2 is resent ${resends} times`);
});
