/**
 * `bootherd lab up|down|status|boot|kill-head|partition-head` and `bootherd
 * demo`: a whole cluster (one head, or several on etcd) in network namespaces
 * of its own (src/lab/running.ts), and QEMU VMs that PXE-boot from it
 * (src/lab/boot.ts). Needs root; touches no real interface.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { spawn } from 'node:child_process';
import { labBoot, formatBootReport } from '../lab/boot.ts';
import { LAB_MAX_HEADS, LAB_MAX_NODES, LAB_SITE_ADDRESS } from '../lab/cluster.ts';
import { describeLab, headCli, killHead, labDown, labHealth, labUp, partitionHead, readLab, requireLab, serverRunning } from '../lab/running.ts';
import { ACCELS, FIRMWARE_KINDS, NIC_KINDS, type VmAccel, type VmFirmware, type VmNic } from '../lab/vm.ts';

function count(max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > max) throw new InvalidArgumentError(`expected a whole number 0-${max}`);
    return n;
  };
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds, like 300');
  return n;
}

/** Runs a command body; an error becomes one message on stderr and exit code 1. */
function run<A extends unknown[]>(body: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  };
}

const out = (s: string): void => { process.stdout.write(s); };
const say = (s: string): void => { process.stderr.write(`${s}\n`); };
const nameOption = () => new Option('--name <name>', 'lab name: namespaces bootherd-<name>-*, files in /run/bootherd-lab/<name>').default('lab');

function headNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > LAB_MAX_HEADS) throw new InvalidArgumentError(`expected a head number 1-${LAB_MAX_HEADS}, as \`lab status\` lists them`);
  return n;
}

interface UpOpts { name: string; nodes: number; heads: number; clients: number; logLevel: 'info' | 'debug' | 'trace'; iscsi?: boolean; proxy?: boolean }

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('a cluster in network namespaces of its own, and QEMU VMs that PXE-boot from it (needs root)');

  lab.command('up')
    .description('build the lab (namespaces, bridge, kernel and initrd) and start bootherd in it; it keeps running after this command')
    .addOption(nameOption())
    .option('--nodes <n>', `nodes in the cluster file: n001.. with MAC 52:54:00:b0:00:NN (0-${LAB_MAX_NODES})`, count(LAB_MAX_NODES), 8)
    .option('--heads <n>', `heads (1-${LAB_MAX_HEADS}) at 198.18.0.1..; with more than one, each runs its own etcd member and the heads share the cluster through etcd`, headNumber, 1)
    .option('--clients <n>', 'client namespaces on the bridge, for trying DHCP clients by hand', count(16), 0)
    .addOption(new Option('--log-level <level>', 'bootherd log level').choices(['info', 'debug', 'trace']).default('info'))
    .option('--iscsi', 'every node\'s root over iSCSI: a tgtd in the head namespace, bootherd\'s tgt backend exporting a copy of the golden disk per node')
    .option('--proxy', `beside a site DHCP server: dnsmasq at ${LAB_SITE_ADDRESS} gives the addresses, bootherd's subnet is mode: proxy (proxyDHCP and port 4011)`)
    .action(run(async (o: UpOpts) => {
      const state = await labUp({ name: o.name, nodes: o.nodes, heads: o.heads, clients: o.clients, logLevel: o.logLevel, iscsi: o.iscsi, proxy: o.proxy, say });
      out(describeLab(state).join('\n') + '\n');
    }));

  lab.command('down')
    .description('stop the lab\'s bootherd and VMs and remove its namespaces and files')
    .addOption(nameOption())
    .action(run(async (o: { name: string }) => {
      const removed = await labDown(o.name);
      out(removed.length ? `removed ${removed.join('; ')}\n` : `no lab named ${o.name} was up\n`);
    }));

  lab.command('status')
    .description('whether the lab is up, its server\'s status and its nodes (exit 0 up, 1 not up or broken)')
    .addOption(nameOption())
    .option('--json', 'print JSON')
    .action(run(async (o: { name: string; json?: boolean }) => {
      const state = readLab(o.name);
      if (!state) {
        if (o.json) out(JSON.stringify({ name: o.name, up: false }) + '\n');
        else out(`lab ${o.name} is down\n`);
        process.exitCode = 1;
        return;
      }
      const health = labHealth(state);
      const running = state.heads.filter(serverRunning);
      // Every running head's own view: with several heads, each says which others it sees alive.
      const views = await Promise.all(running.map(async (h) => {
        const r = await headCli(state, ['status', '--json'], 30_000, h);
        return [h.name, r.code === 0 ? JSON.parse(r.stdout) as unknown : null] as const;
      }));
      const servers = Object.fromEntries(views);
      const answering = views.filter(([, v]) => v !== null).length;
      const up = answering > 0 && !health.missingNamespaces.length && health.tgtdRunning !== false;
      const nodes = up ? await headCli(state, ['nodes', 'list']) : undefined;
      if (o.json) {
        out(JSON.stringify({ name: o.name, up, ...health, servers, server: views.find(([, v]) => v !== null)?.[1] ?? null }, null, 2) + '\n');
      } else {
        out(describeLab(state).join('\n') + '\n');
        for (const h of state.heads) {
          if (!health.serversRunning[h.name]) out(`bootherd ${h.name} (pid ${h.serverPid}) is not running: see ${h.serverLog}\n`);
        }
        if (health.missingNamespaces.length) out(`namespaces missing: ${health.missingNamespaces.join(', ')}\n`);
        if (health.tgtdRunning === false) out(`tgtd (pid ${state.tgtd?.pid}) is not running: see ${state.tgtd?.log}\n`);
        for (const [name, v] of views) {
          if (!v) { out(`${name}: its API does not answer\n`); continue; }
          const s = v as { services: Record<string, unknown> & { heads?: { heads: Array<{ name: string; alive: boolean }> } }; uptimeSeconds: number };
          const peers = s.services.heads?.heads.map((x) => `${x.name} ${x.alive ? 'alive' : 'gone'}`).join(', ');
          out(`${name}: up ${s.uptimeSeconds} s; services: ${Object.keys(s.services).join(', ')}${peers ? `; heads: ${peers}` : ''}\n`);
        }
        if (nodes?.code === 0) out(nodes.stdout);
      }
      // Up means every head answers; a lab with a head killed on purpose is reported, with exit 1.
      if (!up || answering < state.heads.length) process.exitCode = 1;
    }));

  lab.command('kill-head')
    .description('SIGKILL head N\'s bootherd and its etcd member, as a power loss does; --restart starts it again (it rejoins and catches up)')
    .addOption(nameOption())
    .argument('<n>', 'head number, 1 for the first', headNumber)
    .option('--restart', 'start it again afterwards and wait until it serves')
    .action(run(async (n: number, o: { name: string; restart?: boolean }) => {
      const { killed, head } = await killHead(o.name, n, { restart: o.restart });
      out(`${killed.length ? `killed ${killed.join('; ')}` : `head ${n} (${head.name}) was not running`}\n`);
      if (o.restart) out(`restarted ${head.name}: bootherd ${head.serverPid}, log ${head.serverLog}\n`);
    }));

  lab.command('partition-head')
    .description('cut head N off from the other heads\' etcd (iptables in its namespace drops etcd\'s ports to and from their addresses); --heal undoes it')
    .addOption(nameOption())
    .argument('<n>', 'head number, 1 for the first', headNumber)
    .option('--heal', 'remove the partition')
    .action(run(async (n: number, o: { name: string; heal?: boolean }) => {
      const { head, rules } = partitionHead(o.name, n, { heal: o.heal });
      if (o.heal) out(`healed ${head.name}: its etcd reaches the other heads again\n`);
      else out(`partitioned ${head.name} (${head.ns}) from the other heads' etcd:\n${rules.map((r) => `  iptables ${r.join(' ')}`).join('\n')}\n`);
    }));

  lab.command('boot')
    .description('start a QEMU VM that PXE-boots a node from the lab; prints its boot timeline, exits 1 if any stage fails')
    .addOption(nameOption())
    .addOption(new Option('--firmware <kind>', 'bios (SeaBIOS + the NIC\'s iPXE ROM) or uefi (OVMF)').choices(FIRMWARE_KINDS).default('bios'))
    .addOption(new Option('--nic <kind>', 'NIC model; default e1000 for bios, virtio for uefi (OVMF\'s own PXE client, iPXE by TFTP)').choices(NIC_KINDS))
    .option('--node <name>', 'node to boot (default n001)')
    .option('--mac <mac>', 'boot with this MAC instead; one no node has takes the discovery path')
    .addOption(new Option('--accel <accel>', 'tcg works anywhere; kvm needs /dev/kvm').choices(ACCELS).default('tcg'))
    .option('--timeout <seconds>', 'bound on the whole boot', seconds, 300)
    .option('--console <file>', 'where to save the serial console (default in the lab directory)')
    .option('--json', 'print the report as JSON')
    .action(run(async (o: { name: string; firmware: VmFirmware; nic?: VmNic; node?: string; mac?: string; accel: VmAccel; timeout: number; console?: string; json?: boolean }) => {
      const state = requireLab(o.name);
      const report = await labBoot(state, {
        firmware: o.firmware, nic: o.nic, node: o.node, mac: o.mac, accel: o.accel, timeoutSeconds: o.timeout, consoleFile: o.console,
        onStage: o.json ? undefined : (e) => say(`  ${e.at.toFixed(1).padStart(7)}  vm     ${e.stage.padEnd(11)}  ${e.ok ? 'ok' : 'FAIL'}  ${e.detail}`),
      });
      out(o.json ? JSON.stringify(report, null, 2) + '\n' : formatBootReport(report));
      if (!report.ok) process.exitCode = 1;
    }));

  program.command('demo')
    .description('the lab (`lab up --name demo --clients 2`) in the foreground, with the server\'s log; Ctrl-C runs `lab down` (needs root)')
    .option('--nodes <n>', 'nodes in the cluster file', count(LAB_MAX_NODES), 8)
    .addOption(new Option('--name <name>', 'lab name (tests run the demo under a name of their own)').default('demo'))
    .action(run(async (o: { nodes: number; name: string }) => {
      const state = await labUp({ name: o.name, nodes: o.nodes, clients: 2, say });
      out(describeLab(state).join('\n') + '\nCtrl-C stops the server and removes the lab.\n\n');
      const tail = spawn('tail', ['-n', '+1', '-f', state.heads[0]!.serverLog], { stdio: ['ignore', 'inherit', 'inherit'] });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      tail.kill();
      out(`removed ${(await labDown(o.name)).join('; ') || 'nothing: the lab was already down'}\n`);
    }));
}
