/**
 * What an iSCSI target holds, in the terms both backends share: targets with
 * their LUNs, ACLs (initiator names) and portals, and (LIO only) named
 * backstores. `read()` of a backend returns the actual state; the cluster
 * model gives the desired one; `plan()` computes the difference.
 */

export interface Portal {
  readonly address: string;
  readonly port: number;
}

/** An LIO storage object: `/backstores/<kind>/<name>` backed by a file or a block device. */
export interface BackstoreRef {
  readonly kind: 'fileio' | 'block';
  readonly name: string;
}

export interface BackstoreState extends BackstoreRef {
  readonly path: string;
}

export interface LunState {
  readonly lun: number;
  /** File or block device the LUN reads and writes. */
  readonly path: string;
  /** The LIO storage object behind the LUN; tgt has none. */
  readonly backstore?: BackstoreRef;
}

/** One node's CHAP credentials: it logs in as user/secret; the target answers as mutualUser/mutualSecret. */
export interface ChapCredentials {
  readonly user: string;
  readonly secret: string;
  readonly mutualUser: string;
  readonly mutualSecret: string;
}

export interface TargetState {
  readonly iqn: string;
  readonly luns: readonly LunState[];
  /** Initiator names allowed in (tgt may also list addresses or ALL). */
  readonly acls: readonly string[];
  /** Portals of this target (LIO); empty on tgt, whose portals are the daemon's. */
  readonly portals: readonly Portal[];
  /**
   * CHAP user names the target checks (incoming) and answers with (outgoing):
   * tgt's bound accounts; on LIO, those set on the target's ACLs.
   */
  readonly auth: { readonly incoming: readonly string[]; readonly outgoing: readonly string[] };
  /** LIO: the TPG attribute authentication=1 (CHAP required of every initiator); tgt requires it once an incoming account is bound. */
  readonly authRequired?: boolean;
}

export interface TargetSystemState {
  readonly targets: readonly TargetState[];
  /** LIO storage objects; empty on tgt. */
  readonly backstores: readonly BackstoreState[];
  /** Portals of the whole daemon (tgt); empty on LIO. */
  readonly portals: readonly Portal[];
  /** CHAP accounts of the whole daemon (tgt); empty on LIO, whose credentials live in ACLs. */
  readonly accounts: readonly string[];
  /**
   * The portal a new target gets by itself: targetcli adds 0.0.0.0:3260 when
   * its global preference auto_add_default_portal is true. It must go before
   * our own portal can be added (both on one port would not bind).
   */
  readonly defaultPortal?: Portal;
}

/** One node's export, derived from the cluster model. */
export interface DesiredExport {
  readonly node: string;
  readonly iqn: string;
  /** The node's initiator name: LIO's ACL. */
  readonly initiator: string;
  /** The node's address: tgt's ACL (tgt admits an initiator whose address OR name matches, and the name is public). */
  readonly address: string;
  readonly chap: ChapCredentials;
  readonly disk: { readonly kind: 'file' | 'block'; readonly path: string };
}

export interface DesiredState {
  readonly exports: readonly DesiredExport[];
  readonly portal: Portal;
  /** Targets whose IQN starts with this are bootherd's; no other target is ever changed. */
  readonly targetPrefix: string;
  /** LIO storage objects bootherd creates are named <backstorePrefix><node>. */
  readonly backstorePrefix: string;
  /** tgt CHAP accounts bootherd creates start with this. */
  readonly accountPrefix: string;
  /** Our targets to leave exactly as they are this time (a node whose disk could not be prepared). */
  readonly leave?: readonly string[];
}

export function samePortal(a: Portal, b: Portal): boolean {
  return a.address === b.address && a.port === b.port;
}

export function portalText(p: Portal): string {
  return `${p.address}:${p.port}`;
}
