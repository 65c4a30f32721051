/**
 * native/sd_notify.c through src/net/sd-notify.ts: the datagram systemd
 * reads, to a socket path and to an abstract one ("@name"), and nothing at
 * all without NOTIFY_SOCKET.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sdNotify } from '../../src/net/sd-notify.ts';
import { missingTools, notifyReceiver } from '../helpers/tools.ts';

t.test('sd_notify to a path and to an abstract socket', { skip: missingTools('python3') }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const saved = process.env.NOTIFY_SOCKET;
  t.teardown(() => { if (saved === undefined) delete process.env.NOTIFY_SOCKET; else process.env.NOTIFY_SOCKET = saved; });
  for (const socket of [path.join(dir, 'notify'), `@bootherd-test-${process.pid}`]) {
    const rx = await notifyReceiver(socket);
    t.teardown(() => rx.close());
    process.env.NOTIFY_SOCKET = socket;
    t.equal(sdNotify('READY=1\nSTATUS=serving'), true, `sent to ${socket}`);
    t.equal(await rx.next(), 'READY=1\nSTATUS=serving', 'systemd\'s end gets the state lines as sent');
  }
  process.env.NOTIFY_SOCKET = path.join(dir, 'nobody-listens');
  t.throws(() => sdNotify('READY=1'), /sd_notify to .* failed \(errno 2\)/, 'a socket that is not there is an error naming it');
  delete process.env.NOTIFY_SOCKET;
  t.equal(sdNotify('READY=1'), false, 'outside systemd: nothing sent');
});
