import { Opcode, RecordClass, RecordType, Rcode } from '../../../../protocols/dns/constants.ts';
import type { Handler } from '../context.ts';

/**
 * What we answer at all: standard queries (else NOTIMP), EDNS version 0
 * (else BADVERS, RFC 6891 6.1.3), class IN (else REFUSED), and no zone
 * transfers (REFUSED: the cluster's data is served, not copied).
 */
export function checkQuery(): Handler {
  return (ctx) => {
    const q = ctx.query;
    if (q.opcode !== Opcode.QUERY) {
      ctx.rcode = Rcode.NOTIMP;
      ctx.trace?.push(`opcode ${q.opcode} is not a standard query: NOTIMP`);
      return false;
    }
    if (q.edns && q.edns.version > 0) {
      ctx.rcode = Rcode.BADVERS;
      ctx.trace?.push(`EDNS version ${q.edns.version}: BADVERS`);
      return false;
    }
    if (q.class !== RecordClass.IN && q.class !== RecordClass.ANY) {
      ctx.rcode = Rcode.REFUSED;
      ctx.trace?.push(`class ${q.class} is not IN: REFUSED`);
      return false;
    }
    if (q.type === RecordType.AXFR || q.type === RecordType.IXFR) {
      ctx.rcode = Rcode.REFUSED;
      ctx.trace?.push('zone transfers are not offered: REFUSED');
      return false;
    }
    return true;
  };
}
