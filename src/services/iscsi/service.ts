/**
 * The iSCSI service: keeps the target (LIO through targetcli, or tgtd through
 * tgtadm) exporting exactly the root disks the cluster model asks for.
 *
 *   start:  pick and probe the backend; if it is missing, iSCSI is off (one
 *           clear log line, status() says why), never half-on
 *   reconcile: desired exports from the model -> disks prepared -> actual
 *           state read -> plan -> apply in order -> read again: the plan must
 *           now be empty, else the state is reported as unexpected -> save
 *   changes: every model change schedules a reconcile (debounced); they run
 *           one at a time, and one that fails is retried after iscsi.retry
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RootDiskBoot } from '../../boot/ipxe-script.ts';
import type { NodeRecord } from '../../cluster/types.ts';
import type { Logger } from '../../log.ts';
import type { Service, ServiceDeps } from '../service.ts';
import { execRunner, ToolError, type IscsiBackend, type Runner } from './backend.ts';
import { DiskError, ensureDisk, removeDisk } from './disks.ts';
import { confinedDevice, confinedImage, rootDiskPlacesOf, type RootDiskPlaces } from '../../config/root-disk.ts';
import { ChapStore } from './chap.ts';
import { desiredState, exportOf, iscsiBootParams, iscsiNodes, namingOf, rootOf, type IscsiBootParams, type IscsiNaming } from './names.ts';
import { converge } from './converge.ts';
import { describeOp, type Op } from './plan.ts';
import { portalText, type DesiredExport } from './state.ts';
import { LIO_CONFIGFS, TargetcliBackend } from './targetcli.ts';
import { TgtBackend } from './tgt.ts';

/** Model changes often come in bursts (a batch of nodes added through the API): one reconcile for the burst. */
const DEBOUNCE_MS = 200;

/** iSCSI reads the cluster model, never the store. */
export interface IscsiServiceDeps extends Pick<ServiceDeps, 'config' | 'model' | 'log' | 'metrics'> {
  /** Runs targetcli/tgtadm; tests pass a fake that records argv. */
  readonly run?: Runner;
  /** Where LIO support is looked for (tests point it elsewhere). */
  readonly configfs?: string;
}

export interface IscsiExportStatus {
  readonly node: string;
  readonly target: string;
  readonly initiator: string;
  readonly disk: string;
  /** exported: in place as of the last reconcile; pending: not yet (reconcile failed or running); error: its disk could not be prepared. */
  readonly state: 'exported' | 'pending' | 'error';
  readonly error?: string;
}

export interface IscsiStatus {
  readonly enabled: boolean;
  readonly backend: 'targetcli' | 'tgt' | undefined;
  /** Whether exports are being served; when false, `reason` says why. */
  readonly available: boolean;
  readonly reason?: string;
  readonly portal: string;
  /** LUN of every node's disk on this backend. */
  readonly lun?: number;
  readonly lastReconcile?: {
    readonly at: string;
    readonly ok: boolean;
    /** Operations applied. */
    readonly applied: number;
    readonly error?: string;
    /** The command that failed, when one did. */
    readonly command?: readonly string[];
  };
  readonly exports: readonly IscsiExportStatus[];
  /** Targets outside bootherd's IQN prefix, left alone. */
  readonly foreign: readonly string[];
  readonly warnings: readonly string[];
}

export interface ReconcileReport {
  readonly ok: boolean;
  readonly applied: readonly Op[];
  readonly error?: Error;
}

export class IscsiService implements Service {
  readonly naming: IscsiNaming;
  private readonly places: RootDiskPlaces;
  /** The nodes' CHAP credentials (<state>/iscsi-chap.json). */
  readonly chap: ChapStore;
  private readonly log: Logger;
  private readonly run: Runner;
  private backend: IscsiBackend | undefined;
  private reason: string | undefined;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileReport> | undefined;
  private again = false;
  private stopped = false;
  private last: IscsiStatus['lastReconcile'];
  private diskErrors = new Map<string, string>();
  /** Targets in place as of the last successful reconcile. */
  private exported = new Set<string>();
  /** Root paths by node record; a changed node is a new record, so nothing goes stale. */
  private readonly rootPaths = new WeakMap<NodeRecord, string>();
  private foreign: readonly string[] = [];
  private warnings: readonly string[] = [];
  private reportedForeign = '';
  private readonly reconciles;
  private readonly operations;

  constructor(private readonly deps: IscsiServiceDeps) {
    this.naming = namingOf(deps.config);
    this.places = rootDiskPlacesOf(deps.config);
    this.chap = new ChapStore(path.join(deps.config.stateDir, 'iscsi-chap.json'));
    this.log = deps.log.child({ svc: 'iscsi' });
    this.run = deps.run ?? execRunner({ targetcli: "Debian's targetcli-fb", tgtadm: "Debian's tgt" });
    const m = deps.metrics;
    this.reconciles = m.counter('bootherd_iscsi_reconciles_total', 'iSCSI reconciles, by result');
    this.operations = m.counter('bootherd_iscsi_operations_total', 'iSCSI target operations applied, by operation');
    m.gaugeFn('bootherd_iscsi_available', 'Whether the iSCSI backend is available (1) or iSCSI is off (0)', () => (this.backend ? 1 : 0));
    m.gaugeFn('bootherd_iscsi_exports', 'Nodes with an iSCSI root disk in the cluster model', () => iscsiNodes(deps.model).length);
  }

  /** The backend the config asks for; `auto` takes LIO where the kernel has it, else tgt. */
  private chooseBackend(): IscsiBackend {
    const c = this.deps.config.iscsi;
    const configfs = this.deps.configfs ?? LIO_CONFIGFS;
    const lio = c.backend === 'targetcli' || (c.backend === 'auto' && existsSync(configfs));
    return lio
      ? new TargetcliBackend({ run: this.run, configfs })
      : new TgtBackend({ run: this.run, controlPort: c.tgt.controlPort });
  }

  async start(): Promise<void> {
    this.stopped = false;
    const wanted = iscsiNodes(this.deps.model).length;
    if (!this.deps.config.iscsi.enabled) {
      this.reason = 'iscsi.enabled is false in the cluster file';
      if (wanted) this.log.warn({ nodes: wanted }, `iSCSI is off (${this.reason}) but ${wanted} node(s) have an iSCSI root`);
      return;
    }
    const candidate = this.chooseBackend();
    const probe = await candidate.probe();
    if (!probe.ok) {
      this.reason = `${candidate.name}: ${probe.reason}`;
      // Only an error if someone needs it; otherwise a note that iSCSI is not here.
      if (wanted) this.log.error({ backend: candidate.name, nodes: wanted }, `iSCSI is OFF: ${this.reason}`);
      else this.log.info({ backend: candidate.name }, `iSCSI is off: ${this.reason}`);
      return;
    }
    this.backend = candidate;
    this.log.info({ backend: candidate.name, portal: portalText(this.naming.portal), targetPrefix: this.naming.targetPrefix, nodes: wanted }, 'iSCSI on');
    this.unsubscribe = this.deps.model.onChange(() => this.schedule(DEBOUNCE_MS));
    await this.reconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private schedule(ms: number): void {
    if (this.stopped || !this.backend) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reconcile();
    }, ms);
    this.timer.unref();
  }

  /**
   * Brings the target in line with the model now. Calls while one runs are
   * folded into one more run after it. Never throws: the report (and
   * status()) say what failed.
   */
  reconcile(): Promise<ReconcileReport> {
    if (!this.backend) return Promise.resolve({ ok: false, applied: [], error: new Error(`iSCSI is off: ${this.reason ?? 'not started'}`) });
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let report: ReconcileReport;
      do {
        this.again = false;
        report = await this.reconcileOnce(this.backend!);
      } while (this.again && !this.stopped);
      return report;
    })().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async reconcileOnce(backend: IscsiBackend): Promise<ReconcileReport> {
    const applied: Op[] = [];
    try {
      const desired = desiredState(this.deps.model, this.naming, (node) => this.chap.get(node));
      const ready: DesiredExport[] = [];
      const leave: string[] = [];
      this.diskErrors.clear();
      for (const e of desired.exports) {
        const node = this.deps.model.nodeByName(e.node);
        const root = node && rootOf(this.deps.model, node);
        try {
          const image = root?.image;
          const made = await ensureDisk(e, image === undefined ? undefined : () => confinedImage(this.places, image), root?.size, () => { if (root) confinedDevice(this.places, root, e.node); });
          if (made) this.log.info({ node: e.node, disk: e.disk.path }, 'iSCSI disk created from the golden image');
          ready.push(e);
        } catch (err) {
          if (!(err instanceof DiskError)) throw err;
          this.diskErrors.set(e.node, err.message);
          leave.push(e.iqn);
          this.log.error({ node: e.node }, err.message);
        }
      }
      const want = { ...desired, exports: ready, leave };
      const { plan: p } = await converge(backend, want, (op) => {
        applied.push(op);
        this.operations.with({ op: op.op }).value++;
      }, (p) => {
        this.foreign = p.foreign;
        this.warnings = p.warnings;
        for (const w of p.warnings) this.log.warn(w);
        const foreignKey = p.foreign.join(' ');
        if (foreignKey && foreignKey !== this.reportedForeign) this.log.info({ foreign: p.foreign }, 'targets outside bootherd\'s IQN prefix are left alone');
        this.reportedForeign = foreignKey;
        if (p.ops.length) this.log.info({ ops: p.ops.map(describeOp) }, `iSCSI: applying ${p.ops.length} change(s)`);
      });
      if (p.releasedDisks.length && this.deps.config.iscsi.removeDisks) {
        const kept = new Set(desired.exports.map((e) => e.disk.path));
        for (const file of p.releasedDisks) {
          if (!kept.has(file) && await removeDisk(this.naming.disksDir, file)) this.log.info({ disk: file }, 'iSCSI disk removed (iscsi.removeDisks)');
        }
      }
      this.chap.prune(new Set(desired.exports.map((e) => e.node)));
      this.exported = new Set(ready.map((e) => e.iqn));
      this.last = { at: new Date().toISOString(), ok: true, applied: applied.length };
      this.reconciles.with({ result: 'ok' }).value++;
      return { ok: true, applied };
    } catch (err) {
      const e = err as Error;
      const command = e instanceof ToolError ? e.argv : undefined;
      this.last = { at: new Date().toISOString(), ok: false, applied: applied.length, error: e.message, ...(command ? { command } : {}) };
      this.reconciles.with({ result: 'error' }).value++;
      this.log.error({ err: e, ...(command ? { command: command.join(' ') } : {}), applied: applied.map(describeOp) }, `iSCSI reconcile failed: ${e.message}; retrying in ${this.deps.config.iscsi.retry} s`);
      this.schedule(this.deps.config.iscsi.retry * 1000);
      return { ok: false, applied, error: e };
    }
  }

  /** How a node boots from its iSCSI root, or undefined when it has none or iSCSI is off. */
  bootParams(node: NodeRecord): IscsiBootParams | undefined {
    if (!this.backend) return undefined;
    return iscsiBootParams(this.deps.model, this.naming, node, this.backend.shape.lun);
  }

  /**
   * What the node's iPXE script needs to reach its root disk (the renderer's
   * RootDiskProvider, src/boot/ipxe-script.ts): the boot parameters, or why
   * the disk cannot be had now, so the node is told instead of being sent to
   * an export that is not there. undefined: the node has no iSCSI root.
   */
  rootDiskBoot(node: NodeRecord): RootDiskBoot | undefined {
    if (rootOf(this.deps.model, node)?.kind !== 'iscsi') return undefined;
    if (!this.backend) return { available: false, reason: `iSCSI is off (${this.reason ?? 'not started'})` };
    const diskError = this.diskErrors.get(node.name);
    if (diskError) return { available: false, reason: `its disk could not be prepared (${diskError})` };
    const params = this.bootParams(node);
    if (!params) return undefined;
    const chap = this.chap.peek(node.name);
    if (!chap) return { available: false, reason: 'its CHAP credentials are not made yet (the first reconcile makes them)' };
    return {
      available: true, boot: params.boot, initiatorIqn: params.initiatorIqn, rootPath: params.rootPath, kernelArgs: params.kernelArgs,
      chap: { username: chap.user, password: chap.secret, reverseUsername: chap.mutualUser, reversePassword: chap.mutualSecret },
    };
  }

  /** DHCP option 17 for the node (RFC 4173), or undefined. Asked per DHCP packet: remembered per node record. */
  rootPath(node: NodeRecord): string | undefined {
    if (!this.backend) return undefined;
    let p = this.rootPaths.get(node);
    if (p === undefined) {
      p = this.bootParams(node)?.rootPath ?? '';
      this.rootPaths.set(node, p);
    }
    return p || undefined;
  }

  status(): IscsiStatus {
    const names = iscsiNodes(this.deps.model).map(({ node, root }) => exportOf(this.naming, node.name, root));
    const ok = this.last?.ok === true;
    return {
      enabled: this.deps.config.iscsi.enabled,
      backend: this.backend?.name,
      available: this.backend !== undefined,
      ...(this.reason ? { reason: this.reason } : {}),
      portal: portalText(this.naming.portal),
      ...(this.backend ? { lun: this.backend.shape.lun } : {}),
      ...(this.last ? { lastReconcile: this.last } : {}),
      exports: names.map((e) => {
        const error = this.diskErrors.get(e.node);
        return {
          node: e.node,
          target: e.iqn,
          initiator: e.initiator,
          disk: e.disk.path,
          state: error ? 'error' as const : ok && this.exported.has(e.iqn) ? 'exported' as const : 'pending' as const,
          ...(error ? { error } : {}),
        };
      }),
      foreign: this.foreign,
      warnings: this.warnings,
    };
  }
}
