import { Opcode, RecordClass, RecordType, Rcode } from '../../../../protocols/dns/constants.ts';
import type { DnsDecision, Handler } from '../context.ts';

const NOTIMP: DnsDecision = { kind: 'error', rcode: Rcode.NOTIMP };
const BADVERS: DnsDecision = { kind: 'error', rcode: Rcode.BADVERS };
const REFUSED: DnsDecision = { kind: 'error', rcode: Rcode.REFUSED };

/**
 * What we answer at all: standard queries (else NOTIMP), EDNS version 0
 * (else BADVERS, RFC 6891 6.1.3), class IN (else REFUSED), and no zone
 * transfers (REFUSED: the cluster's data is served, not copied).
 */
export function checkQuery(): Handler {
  return (ctx) => {
    const q = ctx.query;
    if (q.opcode !== Opcode.QUERY) {
      ctx.decision = NOTIMP;
      ctx.trace?.push(`opcode ${q.opcode} is not a standard query: NOTIMP`);
      return false;
    }
    if (q.edns && q.edns.version > 0) {
      ctx.decision = BADVERS;
      ctx.trace?.push(`EDNS version ${q.edns.version}: BADVERS`);
      return false;
    }
    if (q.class !== RecordClass.IN && q.class !== RecordClass.ANY) {
      ctx.decision = REFUSED;
      ctx.trace?.push(`class ${q.class} is not IN: REFUSED`);
      return false;
    }
    if (q.type === RecordType.AXFR || q.type === RecordType.IXFR) {
      ctx.decision = REFUSED;
      ctx.trace?.push('zone transfers are not offered: REFUSED');
      return false;
    }
    return true;
  };
}
