/**
 * One election candidate in its own process, for the election test to kill:
 *   node --import tsx test/helpers/etcd-candidate.ts <endpoints> <prefix> <name> <ttl s>
 * Prints "leader <create revision>" once it leads, then, every 200 ms, "acted <revision>" for a
 * fenced write it made (a txn guarded on its fence), or "fenced" when the guard refused it.
 */
import { EtcdClient, EtcdSession } from '../../src/store/etcd-client.ts';
import { EtcdElection } from '../../src/store/etcd-election.ts';

const [endpoints, prefix, name, ttl] = process.argv.slice(2);
const client = new EtcdClient({ endpoints: endpoints!.split(','), requestTimeoutMs: 2000 });
const session = await EtcdSession.create(client, Number(ttl));
const election = new EtcdElection(client, session, prefix!);
const fence = await election.campaign(name!);
process.stdout.write(`leader ${fence.createRevision}\n`);
process.on('SIGTERM', () => { void election.resign().finally(() => { void session.close().finally(() => process.exit(0)); }); });
setInterval(() => {
  const key = Buffer.from(`${prefix}-duty`);
  void client.txn({
    compare: [{ key: Buffer.from(fence.key), target: 'CREATE', createRevision: fence.createRevision }],
    success: [{ put: { key, value: Buffer.from(name!) } }],
  }).then((r) => process.stdout.write(r.succeeded ? `acted ${r.revision}\n` : 'fenced\n'), () => {});
}, 200);
