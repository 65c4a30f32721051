/**
 * `bootherd store migrate`: moves a single head's embedded state directory
 * into the etcd the cluster file names (store: { kind: etcd }), so a site
 * growing from one head to three keeps its nodes' leases, API-added records
 * and boot timelines (docs/heads.md says in which order to do it).
 */
import { existsSync, readdirSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../config/load.ts';
import { EmbeddedStore } from '../store/embedded.ts';
import { EtcdClient } from '../store/etcd-client.ts';
import { etcdPlanOf } from '../store/etcd-plan.ts';
import { EtcdStore } from '../store/etcd.ts';
import { migrateStore } from '../store/migrate.ts';

function fail(message: string): never {
  process.stderr.write(`bootherd store migrate: ${message}\n`);
  process.exit(1);
}

export async function migrateCommand(config: Config, opts: { from?: string; overwrite?: boolean }): Promise<void> {
  const plan = etcdPlanOf(config);
  if (!plan) fail(`${config.source} says store.kind embedded; set store: { kind: etcd } (and heads:, or store.endpoints) in the cluster file first`);
  const from = opts.from ?? config.stateDir;
  if (!existsSync(from) || !readdirSync(from).some((f) => /^(snapshot|journal-\d+)\.jsonl$/.test(f))) {
    fail(`${from} holds no embedded store (no snapshot.jsonl or journal-*.jsonl); give the old head's state directory with --from`);
  }
  const source = new EmbeddedStore(from);
  try { await source.open(); } catch (e) { fail((e as Error).message); }
  const client = new EtcdClient({ endpoints: plan.endpoints });
  const target = new EtcdStore({ client, cluster: plan.cluster });
  try {
    try { await target.open(); } catch (e) {
      fail(`etcd at ${plan.endpoints.join(', ')} cannot be read: ${(e as Error).message}; start the other heads first (their members are a quorum), \`bootherd check\` says which are missing`);
    }
    const counts = await migrateStore(source, target, { overwrite: opts.overwrite });
    process.stdout.write(`migrated ${from} into etcd (${plan.endpoints.join(', ')}, cluster ${plan.cluster}): ${Object.entries(counts).map(([c, n]) => `${n} ${c}`).join(', ')}\n`);
  } catch (e) {
    fail((e as Error).message);
  } finally {
    await target.close().catch(() => undefined);
    client.close();
    await source.close();
  }
}

export function registerStoreCommands(program: Command, load: (file: string) => Config): void {
  const store = program.command('store').description('the store of a head: moving state between the embedded store and etcd');
  store.command('migrate')
    .description('copy an embedded state directory (nodes, hosts, SRV, leases, boot timelines) into the etcd the cluster file names')
    .requiredOption('-c, --config <file>', 'cluster file (YAML) with store: { kind: etcd }')
    .option('--from <dir>', 'the embedded state directory (default: state: of the cluster file)')
    .option('--overwrite', 'write over records etcd already holds')
    .action((opts: { config: string; from?: string; overwrite?: boolean }) => migrateCommand(load(opts.config), opts));
}
