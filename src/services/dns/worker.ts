/**
 * A DNS worker thread: its own UDP socket on the shared port (SO_REUSEPORT:
 * the kernel spreads clients over the workers), its own responder, cache and
 * forwarder, and a zone index compiled from the data the primary posts after
 * every change. It never opens the store: one process owns a state directory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../../log.ts';
import { parseCidr } from '../../net/ipv4.ts';
import { UdpBatchSocket } from '../../net/udp-batch.ts';
import { RecursionAcl } from './acl.ts';
import { counterValues, localCounters } from './counters.ts';
import { serveUdp } from './listeners.ts';
import { DnsResponder } from './responder.ts';
import type { FromWorker, ToWorker, WorkerInit } from './workers.ts';
import { ZoneIndex } from './zone-index.ts';

/** How often counters go to the primary. */
const REPORT_MS = 1000;

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const log = createLogger(init.logLevel).child({ svc: 'dns', worker: init.id });
let index = new ZoneIndex(init.zone);
const counters = localCounters();
const responder = new DnsResponder({
  ...init.responder,
  acl: new RecursionAcl(init.recursionNetworks.map(parseCidr)),
  zones: () => index,
  counters,
  log,
});

try {
  await responder.start();
  const socket = UdpBatchSocket.open({ address: init.address, port: init.port, reusePort: true, recvBufferSize: 4 << 20 });
  serveUdp(socket, (raw, client, transport) => responder.respond(raw, client, transport), counters, log);
  const report = setInterval(() => post({ kind: 'counters', values: counterValues(counters) }), REPORT_MS);
  port.on('message', (m: ToWorker) => {
    if (m.kind === 'zone') { index = new ZoneIndex(m.data); return; }
    clearInterval(report);
    void socket.close().then(() => responder.stop()).then(() => {
      post({ kind: 'counters', values: counterValues(counters) });
      port.close();
    });
  });
  post({ kind: 'ready' });
} catch (e) {
  post({ kind: 'failed', message: (e as Error).message });
  port.close();
}
