/**
 * The `bootherd` command. `serve` runs the head; `check` validates a cluster
 * file; `explain` dry-runs the DHCP boot decision; `lab` and `demo` run the
 * embedded default cluster in network namespaces of its own (src/cli/lab.ts).
 */
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/load.ts';
import { explainDiscover } from '../services/dhcp/explain.ts';
import { checkEtcd } from '../store/etcd-check.ts';
import { registerAdminCommands } from './admin.ts';
import { registerLabCommands } from './lab.ts';
import { superviseAs, supervisorRunner } from './privileges.ts';
import { serve } from './serve.ts';
import { registerStoreCommands } from './store.ts';

function load(file: string): Config {
  try {
    return loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

const program = new Command('bootherd').description('Network boot server for HPC and lab clusters').showHelpAfterError();

program.command('serve')
  .description('run the head node services described by a cluster file')
  .requiredOption('-c, --config <file>', 'cluster file (YAML)')
  .option('--repair-store', 'if the state directory has damaged lines, move them to <file>.corrupt-<time> and start (docs/store.md)')
  .option('--user <name>', 'started as root: run as this user with only the capabilities the services need (docs/install.md)')
  .action(async (opts: { config: string; repairStore?: boolean; user?: string }) => {
    const config = load(opts.config);
    if (opts.user) {
      try {
        process.exitCode = await superviseAs(opts.user, config, ['--config', opts.config, ...(opts.repairStore ? ['--repair-store'] : [])]);
      } catch (e) {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
      return;
    }
    await serve(opts.config, config, { repairStore: opts.repairStore, iscsiRunner: supervisorRunner() });
  });

program.command('check')
  .description('validate a cluster file and, with store.kind etcd, what this head needs of etcd (0 = ready, 1 = something missing, 2 = invalid file)')
  .requiredOption('-c, --config <file>', 'cluster file (YAML)')
  .option('--file-only', 'validate the file only, asking etcd nothing (the unit\'s ExecStartPre: the other heads\' members may not run yet)')
  .action(async (opts: { config: string; fileOnly?: boolean }) => {
    const c = load(opts.config);
    process.stdout.write(`${opts.config}: valid (${c.subnets.length} subnet(s), ${c.nodes.length} node(s), ${Object.keys(c.profiles).length} profile(s))\n`);
    if (opts.fileOnly) return;
    const findings = await checkEtcd(c);
    for (const f of findings) process.stdout.write(`${f.ok ? 'ok     ' : 'MISSING'} ${f.message}\n`);
    if (findings.some((f) => !f.ok)) process.exitCode = 1;
  });

program.command('explain')
  .description('dry-run the DHCP boot decision for a client: matched node, profile, reply options and why')
  .requiredOption('-c, --config <file>', 'cluster file (YAML)')
  .requiredOption('--mac <mac>', 'client MAC address')
  .option('--arch <n>', 'client architecture (option 93): 0 BIOS, 7/9 UEFI x64, 11 UEFI ARM64, 16 UEFI HTTP x64', int)
  .option('--user-class <s>', 'user class (option 77), e.g. iPXE')
  .option('--vendor-class <s>', 'vendor class (option 60); default PXEClient when --arch is given')
  .option('--giaddr <ip>', 'relay agent address (a relayed request)')
  .option('--iface <name>', 'interface the request arrives on')
  .option('--down <heads>', 'several heads: comma-separated heads to take as down when saying which head answers')
  .option('--proxy', 'take the subnets as mode: proxy (beside a site DHCP server); a proxy subnet also shows the port 4011 exchange')
  .option('--ciaddr <ip>', 'proxy: the address the site\'s server gave the client, for its port 4011 REQUEST')
  .option('--json', 'print JSON')
  .action((opts: { config: string; mac: string; arch?: number; userClass?: string; vendorClass?: string; giaddr?: string; iface?: string; down?: string; proxy?: boolean; ciaddr?: string; json?: boolean }) => {
    const x = explainDiscover(load(opts.config), { ...opts, down: opts.down?.split(',').map((d) => d.trim()).filter(Boolean) });
    if (opts.json) { process.stdout.write(JSON.stringify(x, null, 2) + '\n'); return; }
    const step = (s: Omit<typeof x, 'answering' | 'bootServer'>) => [
      `reply:   ${s.reply}${s.yiaddr && s.yiaddr !== '0.0.0.0' ? ` ${s.yiaddr}` : s.yiaddr ? ' (no address)' : ''}`,
      ...(s.file ? [`file:    ${s.file}${s.siaddr && s.siaddr !== '0.0.0.0' ? ` (next-server ${s.siaddr})` : ''}`] : []),
      ...(s.options.length ? ['options:', ...s.options.map((o) => `  ${String(o.code).padStart(3)} ${o.name.padEnd(18)} ${o.value}`)] : []),
      'why:',
      ...s.why.map((w) => `  - ${w}`),
    ];
    const lines = [
      `node:    ${x.node ?? '(unknown MAC)'}`,
      `profile: ${x.profile ?? '-'}`,
      `subnet:  ${x.subnet ?? '-'}`,
      ...step(x),
      ...(x.bootServer ? ['', 'then, once the site\'s DHCP server ACKed, the REQUEST to the PXE boot server (port 4011):', ...step(x.bootServer)] : []),
      ...(x.answering ? [`answering head: ${x.answering.head ?? '(none)'} (order: ${x.answering.order.join(', ')})`, `  - ${x.answering.why}`] : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  });

registerAdminCommands(program);
registerLabCommands(program);
registerStoreCommands(program, load);

await program.parseAsync();
