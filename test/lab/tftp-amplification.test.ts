/**
 * Security finding 6, amplification by blind ACKs: an attacker that forges a
 * victim's address sends a read request (blksize 1468, windowsize 64) and
 * then the ACKs a client receiving every window would send, without seeing
 * a single packet of the transfer. With a transfer port that any client can
 * learn, each forged 4-byte ACK released a 64-block window towards the
 * victim (about 1,200x in the finding). The server may send the victim no
 * more than a small multiple of what was sent in its name until the victim
 * shows it receives our packets.
 *
 * Three namespaces on the lab bridge: the head (a real bootherd), the
 * attacker (holding the victim's address on its loopback, unannounced, so
 * its datagrams carry the victim's address) and the victim, which never answers: its
 * INPUT chain drops and counts everything from the head (no ICMP back, so
 * the server's IP_RECVERR never hears the victim is not a client). Bytes are
 * counted by iptables at the IP level on both sides.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLabServer } from '../helpers/lab-server.ts';

const HEAD = '198.18.0.1';
const ATTACKER = '198.18.0.20';
const VICTIM = '198.18.0.30';
const VICTIM_PORT = 40_000;
const ACKS = 60;
/** The most the victim may receive per byte forged in its name. */
const MAX_RATIO = 4;
const ATTACKER_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/tftp-blind-attacker.ts');
const TSX = import.meta.resolve('tsx');

const files = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tftp-amp-'));
t.teardown(() => rmSync(files, { recursive: true, force: true }));
// Larger than the 60 windows of 64 x 1468 bytes the attack asks for.
writeFileSync(path.join(files, 'big.bin'), randomBytes(6 << 20));

/** The byte counter of the first rule in `chain` (iptables -v -x: packets, bytes, target). */
function counted(run: (args: string[]) => string, chain: string): { packets: number; bytes: number } {
  const m = /^\s*(\d+)\s+(\d+)\s+(?:ACCEPT|DROP)/m.exec(run(['-L', chain, '-v', '-n', '-x']));
  return { packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) };
}

interface Attack { readonly name: string; readonly acks: number; readonly options?: Record<string, string> }

const ATTACKS: readonly Attack[] = [
  // The finding: the request, ACK 0, then the ACK of each window's last block.
  { name: 'blind ACKs after a forged request (blksize 1468, windowsize 64)', acks: ACKS },
  // No ACK at all: what the server sends on its own to a client that never answers (the OACK timer, the final ERROR).
  { name: 'a forged request alone, with the OACK timer (tsize, timeout 1)', acks: 0, options: { blksize: '1468', windowsize: '64', tsize: '0', timeout: '1' } },
];

t.test('forged datagrams send the victim no more than a small multiple of what was forged', async (t) => {
  const s = await startLabServer(t, {
    tag: 'tam', clients: 2, clientCidr: (i) => (i === 0 ? `${ATTACKER}/24` : `${VICTIM}/24`),
    config: (state) => `
cluster: { domain: lab.test }
head: { name: head, address: ${HEAD} }
state: ${state}
files: ${files}
log: { level: info }
subnets:
  - { network: 198.18.0.0/24, interface: eth0 }
tftp: { maxBlockSize: 1468, maxWindowSize: 64 }
dhcp: { enabled: false }
`,
  });
  const [attacker, victim] = s.lab.clients.map((c) => c.ns) as [string, string];
  // The victim's address on the attacker's loopback, so its sockets can send from it (a non-local bind alone
  // is refused a route without IP_TRANSPARENT); ARP for it on the wire is left to the victim.
  s.lab.exec(attacker, 'ip', ['addr', 'add', `${VICTIM}/32`, 'dev', 'lo']);
  s.lab.exec(attacker, 'sysctl', ['-q', '-w', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2']);
  s.lab.exec(attacker, 'iptables', ['-A', 'OUTPUT', '-s', VICTIM, '-d', HEAD, '-j', 'ACCEPT']);
  s.lab.exec(victim, 'iptables', ['-A', 'INPUT', '-s', HEAD, '-j', 'DROP']);
  const metrics = () => s.lab.run(attacker, 'curl', ['-sS', '--max-time', '5', `http://${HEAD}/metrics`]).stdout;

  for (const [i, attack] of ATTACKS.entries()) {
    for (const ns of [attacker, victim]) s.lab.exec(ns, 'iptables', ['-Z']);
    const args = [HEAD, 'big.bin', VICTIM, String(VICTIM_PORT + i), String(attack.acks), ...(attack.options ? [JSON.stringify(attack.options)] : [])];
    const run = s.lab.run(attacker, process.execPath, ['--import', TSX, ATTACKER_SCRIPT, ...args], 60_000);
    t.equal(run.code, 0, `${attack.name}: the attack ran`, { stderr: run.stderr });
    const report = JSON.parse(run.stdout || '{}') as { spoofedPackets?: number };

    // Whatever the server still sends the victim (retransmissions, a final ERROR) counts: wait until it has given up.
    let text = '';
    for (let k = 0; k < 60; k++) {
      text = metrics();
      if (/^bootherd_tftp_active_transfers 0$/m.test(text)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.match(text, /^bootherd_tftp_active_transfers 0$/m, `${attack.name}: the server has ended every transfer`);

    const forged = counted((a) => s.lab.exec(attacker, 'iptables', a), 'OUTPUT');
    const received = counted((a) => s.lab.exec(victim, 'iptables', a), 'INPUT');
    t.equal(forged.packets, report.spoofedPackets, `${attack.name}: every forged datagram was counted as it left`);
    const ratio = received.bytes / forged.bytes;
    t.comment(`${attack.name}: forged ${forged.packets} packets, ${forged.bytes} bytes; the victim received ${received.packets} packets, ${received.bytes} bytes: ${ratio.toFixed(2)}x`);
    t.ok(ratio <= MAX_RATIO, `${attack.name}: the victim received at most ${MAX_RATIO}x the forged bytes (${received.bytes} / ${forged.bytes} = ${ratio.toFixed(2)}x)`);
  }
});
