/**
 * Reads a lab VM's serial console: turns the bytes into the lines a terminal
 * would show (firmware menus redraw with carriage returns, backspaces and
 * escape sequences) and the lines into boot stages, each with the seconds
 * since power-on. Pure: no processes, no clocks; the VM runner feeds it.
 *
 * What each stage is recognised by (measured on Debian 12's SeaBIOS, OVMF,
 * iPXE from ipxe-qemu/ipxe and the lab initrd's /init):
 *   pxe-dhcp     OVMF's own PXE client got an address    "Station IP address is 198.18.0.11"
 *   pxe-loader   OVMF's PXE client loaded the loader     "NBP file downloaded successfully."
 *   ipxe         iPXE runs (NIC ROM, or the loader)      "iPXE 1.0.0+... -- Open Source Network Boot Firmware"
 *   ipxe-dhcp    iPXE got an address                     "net0: 198.18.0.11/255.255.255.0"
 *   ipxe-script  iPXE fetched its script                 "52-54-00-b0-00-01.ipxe : 1099 bytes [script]"
 *   discovery    the unknown-MAC (discovery) script runs "bootherd: this machine (...) is not a node ..."
 *   kernel       iPXE fetched the kernel                 "http://198.18.0.1/files/vmlinuz... ok"
 *   initrd       iPXE fetched the (last) initrd          "http://198.18.0.1/files/initrd.img... ok"
 *   linux        the kernel started                      "Linux version 6.1.0-..."
 *   init nic dhcp hostname dns dns-self srv ntp booted   "BOOTHERD-STAGE <stage> ok|fail <detail>" from /init
 *   iscsi root   the same, from a node whose root is on iSCSI: logged in and found
 *                the LUN's disk (initrd), then / is that disk (the golden image's init)
 */

export const VM_STAGES = [
  'pxe-dhcp', 'pxe-loader', 'ipxe', 'ipxe-dhcp', 'ipxe-script', 'discovery', 'kernel', 'initrd', 'linux',
  'init', 'nic', 'dhcp', 'iscsi', 'root', 'hostname', 'dns', 'dns-self', 'srv', 'ntp', 'booted',
] as const;
export type VmStage = typeof VM_STAGES[number];

const INIT_STAGES = new Set<string>(['init', 'nic', 'dhcp', 'iscsi', 'root', 'hostname', 'dns', 'dns-self', 'srv', 'ntp', 'booted']);

export interface VmEvent {
  readonly stage: VmStage;
  /** Seconds since power-on. */
  readonly at: number;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ConsoleResult {
  /** The init's last line: ok, or the stages that failed. */
  readonly ok: boolean;
  readonly failed: readonly string[];
  readonly at: number;
}

/** Escape sequences (CSI ..., ESC c, ESC =3h from OVMF) carry no text. */
const ESCAPES = /\x1b(?:\[[0-9;?=]*[A-Za-z]|c|[=>][0-9]*[a-z]?)/g;

/**
 * What a terminal shows for one line of output: \r returns to column 0,
 * \b moves left, later characters overwrite earlier ones.
 */
export function renderLine(raw: string): string {
  const text = raw.replace(ESCAPES, '');
  const cells: string[] = [];
  let col = 0;
  for (const ch of text) {
    if (ch === '\r') col = 0;
    else if (ch === '\b') col = Math.max(0, col - 1);
    else if (ch >= ' ' || ch === '\t') cells[col++] = ch;
  }
  return cells.join('').trimEnd();
}

export interface ConsoleOptions {
  /** Base names of the profile's kernel and initrds, to tell the downloads apart. */
  readonly kernel: string;
  readonly initrds: readonly string[];
}

export class ConsoleReader {
  readonly events: VmEvent[] = [];
  readonly lines: Array<{ at: number; text: string }> = [];
  /** iPXE and kernel errors seen, for the report when a boot fails. */
  readonly errors: string[] = [];
  result: ConsoleResult | undefined;
  private partial = '';
  private initrdsSeen = 0;

  constructor(private readonly opts: ConsoleOptions, private readonly onEvent: (e: VmEvent) => void = () => undefined) {}

  /** Serial bytes as they arrive, with the seconds since power-on. */
  feed(chunk: string, at: number): void {
    let start = 0;
    for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', start)) {
      this.line(renderLine(this.partial + chunk.slice(start, i)), at);
      this.partial = '';
      start = i + 1;
    }
    this.partial += chunk.slice(start);
  }

  /** The console ended (the VM stopped): a last line without its newline still counts. */
  end(at: number): void {
    if (this.partial) this.line(renderLine(this.partial), at);
    this.partial = '';
  }

  has(stage: VmStage): boolean {
    return this.events.some((e) => e.stage === stage);
  }

  get(stage: VmStage): VmEvent | undefined {
    return this.events.find((e) => e.stage === stage);
  }

  private emit(stage: VmStage, at: number, ok: boolean, detail: string): void {
    const e: VmEvent = { stage, at, ok, detail };
    this.events.push(e);
    this.onEvent(e);
  }

  /** One rendered line. */
  line(text: string, at: number): void {
    if (!text) return;
    this.lines.push({ at, text });
    let m: RegExpExecArray | null;
    if ((m = /^BOOTHERD-STAGE (\S+) (ok|fail)\s?(.*)$/.exec(text)) && INIT_STAGES.has(m[1]!)) {
      return this.emit(m[1] as VmStage, at, m[2] === 'ok', m[3]!);
    }
    if ((m = /^BOOTHERD-RESULT (ok|fail)\s?(.*)$/.exec(text))) {
      this.result = { ok: m[1] === 'ok', failed: m[2]!.split(/\s+/).filter(Boolean), at };
      return;
    }
    if ((m = /Station IP address is ([\d.]+)/.exec(text))) return this.emit('pxe-dhcp', at, true, m[1]!);
    if (/NBP file downloaded successfully/.exec(text)) return this.emit('pxe-loader', at, true, '');
    if ((m = /iPXE (\S+) -- Open Source Network Boot Firmware/.exec(text))) return this.emit('ipxe', at, true, m[1]!);
    if ((m = /net\d+: ([\d.]+)\/([\d.]+)(?: gw [\d.]+)?$/.exec(text))) return this.emit('ipxe-dhcp', at, true, m[1]!);
    if ((m = /(\S+\.ipxe) : \d+ bytes \[script\]/.exec(text))) return this.emit('ipxe-script', at, true, m[1]!);
    if ((m = /bootherd: this machine \((\S+)\) is not a node/.exec(text))) {
      if (!this.has('discovery')) this.emit('discovery', at, true, m[1]!);
      return;
    }
    if ((m = /^(\S+)\.\.\. ok$/.exec(text)) && /^(https?|tftp):\/\//.test(m[1]!)) {
      const name = m[1]!.slice(m[1]!.lastIndexOf('/') + 1);
      if (name === this.opts.kernel) return this.emit('kernel', at, true, m[1]!);
      if (this.opts.initrds.includes(name) && ++this.initrdsSeen === this.opts.initrds.length) return this.emit('initrd', at, true, m[1]!);
      return;
    }
    if ((m = /Linux version (\S+)/.exec(text))) return this.emit('linux', at, true, m[1]!);
    if (/Kernel panic|\(https?:\/\/ipxe\.org\/[0-9a-f]{8}\)|No configuration methods succeeded/.test(text)) {
      if (this.errors.length < 20) this.errors.push(text);
    }
  }
}
