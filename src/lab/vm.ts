/**
 * A lab VM: QEMU (Debian's qemu-system-x86) on a tap in the lab's bridge,
 * with the node's MAC, booting from the network and nothing else. Its serial
 * console is read live (each line stamped with the seconds since power-on)
 * and saved to a file. Every wait is bounded; the VM is killed by its PID.
 *
 * Firmware and NIC, as measured on Debian 12 (QEMU 7.2, ipxe-qemu, ovmf):
 *   bios + e1000|virtio  SeaBIOS runs the NIC's option ROM from ipxe-qemu, which
 *                        is iPXE itself: DHCP hands it the script URL at once.
 *   uefi + virtio        OVMF's own PXE client (the NIC's ROM switched off with
 *                        `romfile=`): DHCP, ipxe.efi over TFTP, then iPXE as above.
 *   uefi + e1000         OVMF has no e1000 driver: it runs the ROM's EFI iPXE
 *                        driver, so this path skips the TFTP loader.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import type { Lab } from './netns.ts';
import { ConsoleReader, type ConsoleOptions, type VmEvent } from './console.ts';

export const FIRMWARE_KINDS = ['bios', 'uefi'] as const;
export type VmFirmware = typeof FIRMWARE_KINDS[number];
export const NIC_KINDS = ['e1000', 'virtio'] as const;
export type VmNic = typeof NIC_KINDS[number];
export const ACCELS = ['tcg', 'kvm'] as const;
export type VmAccel = typeof ACCELS[number];

/** OVMF from Debian's ovmf package: code and variables in one image, no Secure Boot. */
export const OVMF_IMAGE = '/usr/share/ovmf/OVMF.fd';
export const QEMU = 'qemu-system-x86_64';

export interface VmSpec {
  readonly mac: string;
  readonly tap: string;
  readonly firmware: VmFirmware;
  readonly nic: VmNic;
  /** TCG (default: works anywhere, as in CI) or KVM. */
  readonly accel?: VmAccel;
  readonly memoryMiB?: number;
}

/** Whether the firmware's own PXE client (not iPXE from the NIC's ROM) does the first DHCP and loads iPXE by TFTP. */
export function usesFirmwarePxe(spec: Pick<VmSpec, 'firmware' | 'nic'>): boolean {
  return spec.firmware === 'uefi' && spec.nic === 'virtio';
}

/** QEMU's command line for a spec; pure, for tests. */
export function qemuArgs(spec: VmSpec): string[] {
  const device = spec.nic === 'e1000' ? 'e1000' : 'virtio-net-pci';
  // An empty romfile leaves OVMF's own virtio driver and PXE client in charge.
  const rom = usesFirmwarePxe(spec) ? ',romfile=' : '';
  return [
    '-machine', `pc,accel=${spec.accel ?? 'tcg'}`,
    '-m', String(spec.memoryMiB ?? 256),
    '-smp', '1',
    // No default VGA, disks, CD-ROM or serial: the NIC is the only boot device and the firmware writes to our serial port.
    '-nodefaults', '-nographic', '-no-user-config',
    '-monitor', 'none',
    '-chardev', 'stdio,id=console,signal=off',
    '-serial', 'chardev:console',
    // Power-off or reboot ends the process, so a boot ends with the VM.
    '-no-reboot',
    '-netdev', `tap,id=net0,ifname=${spec.tap},script=no,downscript=no`,
    '-device', `${device},netdev=net0,mac=${spec.mac},bootindex=1${rom}`,
    ...(spec.firmware === 'uefi' ? ['-bios', OVMF_IMAGE] : []),
  ];
}

export function checkVmTools(spec: Pick<VmSpec, 'firmware'>): void {
  if (!existsSync(`/usr/bin/${QEMU}`)) throw new Error(`${QEMU} is missing: run scripts/setup.sh (Debian package qemu-system-x86)`);
  if (spec.firmware === 'uefi' && !existsSync(OVMF_IMAGE)) throw new Error(`${OVMF_IMAGE} is missing: run scripts/setup.sh (Debian package ovmf)`);
}

export interface VmExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Seconds since power-on. */
  readonly at: number;
}

export class LabVm {
  readonly console: ConsoleReader;
  /** Wall-clock time of power-on (ms since the epoch): the zero of every stage time. */
  readonly poweredOnAt: number;
  readonly exited: Promise<VmExit>;
  private readonly proc: ChildProcess;
  private readonly log: WriteStream;
  private stderr = '';
  private readonly waiters = new Set<() => void>();

  /** Starts QEMU in the lab's switch namespace (where the tap is) and begins reading its console. */
  constructor(lab: Lab, readonly spec: VmSpec, consoleFile: string, consoleOpts: ConsoleOptions, onEvent?: (e: VmEvent) => void) {
    checkVmTools(spec);
    this.console = new ConsoleReader(consoleOpts, onEvent);
    this.log = createWriteStream(consoleFile);
    this.poweredOnAt = Date.now();
    // `ip netns exec` execs QEMU, so the child's PID is QEMU's.
    this.proc = spawn('ip', ['netns', 'exec', lab.switchNs, QEMU, ...qemuArgs(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.log.write(d);
      this.console.feed(d.toString('latin1'), this.now());
      for (const w of this.waiters) w();
    });
    this.proc.stderr!.on('data', (d: Buffer) => { if (this.stderr.length < 8192) this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => {
      let ended = false;
      // 'error' (QEMU could not be started) and 'close' may both come.
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (ended) return;
        ended = true;
        const at = this.now();
        this.console.end(at);
        this.log.end();
        resolve({ code, signal, at });
      };
      this.proc.once('error', () => done(null, null));
      this.proc.once('close', done);
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** QEMU's own complaints (a tap it cannot open, a missing firmware file). */
  get qemuErrors(): string {
    return this.stderr.trim();
  }

  /** Seconds since power-on. */
  now(): number {
    return (Date.now() - this.poweredOnAt) / 1000;
  }

  running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Kills QEMU by its PID and waits for it to be gone. */
  async kill(): Promise<VmExit> {
    if (this.running()) this.proc.kill('SIGKILL');
    return this.exited;
  }

  /**
   * Resolves true as soon as `done` holds (checked after each piece of console
   * output), false when the VM exits without it or `seconds` pass first.
   */
  async waitFor(done: () => boolean, seconds: number): Promise<boolean> {
    if (done()) return true;
    if (!this.running()) return false;
    return new Promise((resolve) => {
      const check = () => { if (done()) finish(true); };
      const timer = setTimeout(() => finish(false), seconds * 1000);
      const finish = (v: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(v);
      };
      this.waiters.add(check);
      void this.exited.then(() => finish(done()));
    });
  }
}
