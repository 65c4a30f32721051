/**
 * One DHCP head for the several-heads tests, run inside a lab namespace:
 *   ip netns exec NS node --import tsx test/helpers/dhcp-head.ts --etcd http://127.0.0.1:P --address 198.18.0.2 --cluster c1
 * A DhcpService on its own EtcdStore (its own etcd client), serving the
 * relayed subnet 198.18.32.0/19 on <address>:67, so several of these share one
 * pool through one etcd without src/server.ts. Prints "ready" once it
 * listens; on SIGTERM stops and prints its DHCP metrics.
 */
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { EtcdClient } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const address = args.get('address')!;

export const HEAD_SUBNET = '198.18.32.0/19';
const config = parseConfig(`
head: { address: ${address} }
cluster: { domain: lab.test }
dhcp: { offerTime: 30s }
subnets:
  - { network: ${HEAD_SUBNET}, pool: 198.18.32.10-198.18.63.250, leaseTime: 1h }
`, '<dhcp-head>');

const client = new EtcdClient({ endpoints: [args.get('etcd')!] });
const store = new EtcdStore({ client, cluster: args.get('cluster') ?? 'c1' });
await store.open();
const metrics = new Metrics();
const log = createLogger('warn');
const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log, metrics, httpBase: `http://${address}` });
await dhcp.start();
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  void (async () => {
    await dhcp.stop();
    await store.close();
    client.close();
    process.stdout.write(metrics.render().split('\n').filter((l) => l.startsWith('bootherd_dhcp')).join('\n') + '\n');
    process.exit(0);
  })();
});
