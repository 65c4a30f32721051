/**
 * What `bootherd check` says about a head's etcd (store: { kind: etcd }):
 * the etcd program when this head runs a member, this head's address on this
 * machine (the member binds it), and every member's answer. Each finding
 * names what is missing and the fix.
 */
import os from 'node:os';
import type { Config } from '../config/load.ts';
import { EtcdClient } from './etcd-client.ts';
import { etcdVersion } from './etcd-member.ts';
import { etcdPlanOf } from './etcd-plan.ts';

export interface EtcdFinding {
  readonly ok: boolean;
  readonly message: string;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** Findings for the etcd the file names; [] for the embedded store. */
export async function checkEtcd(config: Config, opts: { binary?: string; timeoutMs?: number } = {}): Promise<EtcdFinding[]> {
  const plan = etcdPlanOf(config);
  if (!plan) return [];
  const out: EtcdFinding[] = [];
  if (plan.member) {
    const version = etcdVersion(opts.binary);
    out.push(version
      ? { ok: true, message: `etcd ${version} is installed (this head runs its member)` }
      : { ok: false, message: `etcd is not installed or not on the PATH; this head runs an etcd member (store.kind etcd without endpoints): install Debian's etcd-server` });
    out.push(localAddresses().has(config.head.address)
      ? { ok: true, message: `head.address ${config.head.address} is on this machine (the member listens there)` }
      : { ok: false, message: `head.address ${config.head.address} is on no interface of this machine; the member cannot listen there: give head.address this machine's provisioning address, or add the address` });
  }
  const client = new EtcdClient({ endpoints: plan.endpoints, requestTimeoutMs: opts.timeoutMs ?? 2000 });
  try {
    const answers = await Promise.all(plan.endpoints.map(async (endpoint) => {
      try {
        const s = await client.status(endpoint);
        if (s.leader === '0') return { ok: false, message: `etcd member at ${endpoint} answers but has no leader: fewer than a quorum of the members run` };
        return { ok: true, message: `etcd member at ${endpoint} answers (etcd ${s.version}, raft term ${s.raftTerm})` };
      } catch (e) {
        const head = config.heads.find((h) => endpoint.includes(`//${h.address}:`));
        const hint = plan.member && head ? `; is bootherd running on head ${head.name}?` : '; is the etcd cluster of store.endpoints up?';
        return { ok: false, message: `etcd member at ${endpoint} is unreachable (${(e as Error).message.replace(/\.? *Resolution note: *$/, '')})${hint}` };
      }
    }));
    out.push(...answers);
    const up = answers.filter((a) => a.ok).length;
    const quorum = Math.floor(plan.endpoints.length / 2) + 1;
    if (plan.member && up < quorum) out.push({ ok: false, message: `${up} of ${plan.endpoints.length} etcd members answer; writes need ${quorum}` });
  } finally {
    client.close();
  }
  return out;
}
