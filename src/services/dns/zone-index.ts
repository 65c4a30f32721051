/**
 * The lookup index compiled from zone data: names to record sets, zone
 * apexes, and answers compiled to wire bytes on first use. A query for a
 * name we hold costs two Map lookups; a compiled answer is kept until the
 * next rebuild (any change to the cluster model builds a new index).
 */
import type { Answer, SoaAnswer } from 'dns-packet';
import { RecordType, Rcode } from '../../../protocols/dns/constants.ts';
import { encodeSections, type Sections } from '../../../protocols/dns/response.ts';
import type { ZoneData, ZoneRecord } from './zone-data.ts';

/** An answer ready to send: rcode, and the record bytes with and without the additional section. */
export interface CompiledAnswer {
  readonly rcode: number;
  readonly sections: Sections;
  /** The same without additional records, for when the full answer does not fit (undefined: nothing to drop). */
  readonly trimmed: Sections | undefined;
  /**
   * Set when an alias chain leaves our data: the name whose records must be
   * fetched from upstream to finish the answer (the sections hold the chain).
   */
  readonly chase: string | undefined;
}

interface Zone {
  readonly origin: string;
  /** Negative answers of this zone, by the question name's wire length (the SOA owner points into the question). */
  readonly negative: Map<number, CompiledAnswer>;
}

interface NameEntry {
  readonly name: string;
  /** The zone the name lies in; undefined for data outside our zones (PTR of an address no subnet covers). */
  readonly zone: Zone | undefined;
  readonly rrsets: Map<number, ZoneRecord[]>;
  cname: ZoneRecord | undefined;
  /** Compiled answers by query type (common types only; others are compiled per query). */
  readonly compiled: Map<number, CompiledAnswer>;
  /** The answer for every type the name lacks (one response fits all of them). */
  nodata: CompiledAnswer | undefined;
}

const TYPE_NUMBERS: Readonly<Record<ZoneRecord['type'], number>> = {
  A: RecordType.A, AAAA: RecordType.AAAA, PTR: RecordType.PTR, CNAME: RecordType.CNAME, NS: RecordType.NS, SRV: RecordType.SRV, TXT: RecordType.TXT,
};

/** Types whose compiled answers are memoised per name; the set is small so memory stays bounded. */
const MEMO_TYPES: ReadonlySet<number> = new Set([
  RecordType.A, RecordType.AAAA, RecordType.PTR, RecordType.SRV, RecordType.TXT, RecordType.CNAME, RecordType.NS, RecordType.SOA, RecordType.ANY,
]);

/** Longest alias chain followed (BIND and dnsmasq stop around here too). */
const MAX_CHAIN = 8;

export class ZoneIndex {
  private readonly names = new Map<string, NameEntry>();
  private readonly zones = new Map<string, Zone>();
  private readonly soa: ZoneData['soa'];

  constructor(readonly data: ZoneData) {
    this.soa = data.soa;
    for (const origin of data.origins) this.zones.set(origin, { origin, negative: new Map() });
    for (const r of data.records) {
      const entry = this.entry(r.name);
      if (r.type === 'CNAME') { entry.cname = r; continue; }
      const t = TYPE_NUMBERS[r.type];
      let set = entry.rrsets.get(t);
      if (!set) { set = []; entry.rrsets.set(t, set); }
      set.push(r);
    }
    // Names between a record and its zone apex exist (empty non-terminals, RFC 8020): _tcp.<domain> is NODATA, not NXDOMAIN.
    for (const name of [...this.names.keys()]) {
      const zone = this.names.get(name)!.zone;
      if (!zone) continue;
      for (let i = name.indexOf('.'); i >= 0 && name.length - i - 1 > zone.origin.length; i = name.indexOf('.', i + 1)) this.entry(name.slice(i + 1));
    }
    for (const origin of data.origins) this.entry(origin);
  }

  get serial(): number { return this.soa.serial; }

  private entry(name: string): NameEntry {
    let e = this.names.get(name);
    if (!e) {
      e = { name, zone: this.zoneOf(name), rrsets: new Map(), cname: undefined, compiled: new Map(), nodata: undefined };
      this.names.set(name, e);
    }
    return e;
  }

  /** The zone a name falls in, or undefined when it is none of ours. */
  zoneOf(name: string): Zone | undefined {
    const z = this.zones.get(name);
    if (z) return z;
    for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) {
      const zone = this.zones.get(name.slice(i + 1));
      if (zone) return zone;
    }
    return undefined;
  }

  /**
   * The answer to a question for `name` (lowercase presentation form, wire
   * length `nameLength`) and `type`; undefined when the name is not ours.
   */
  lookup(name: string, type: number, nameLength: number): CompiledAnswer | undefined {
    const e = this.names.get(name);
    if (e) {
      const memo = e.compiled.get(type);
      if (memo) return memo;
      const answer = this.compile(e, type);
      if (MEMO_TYPES.has(type)) e.compiled.set(type, answer);
      return answer;
    }
    const zone = this.zoneOf(name);
    if (!zone) return undefined;
    let nx = zone.negative.get(nameLength);
    if (!nx) {
      nx = this.negative(name, Rcode.NXDOMAIN, zone, []);
      zone.negative.set(nameLength, nx);
    }
    return nx;
  }

  private compile(e: NameEntry, type: number): CompiledAnswer {
    const qname = e.name;
    const apex = e.zone?.origin === e.name;
    if (type === RecordType.SOA && apex) return this.positive(qname, [this.soaRecord(this.soa.ttl, e.name)], []);
    if (type === RecordType.ANY) {
      // RFC 8482 lets a server answer ANY with a subset; our sets are small, so all of them.
      const all: Answer[] = [...(apex ? [this.soaRecord(this.soa.ttl, e.name)] : []), ...asAnswers(e.cname ? [e.cname] : []), ...asAnswers([...e.rrsets.values()].flat())];
      return all.length ? this.positive(qname, all, []) : this.nodataOf(e);
    }
    if (e.cname && type !== RecordType.CNAME) return this.chain(e, type);
    const set = type === RecordType.CNAME ? (e.cname ? [e.cname] : undefined) : e.rrsets.get(type);
    if (!set) return this.nodataOf(e);
    return this.positive(qname, asAnswers(set), this.additionalFor(set));
  }

  /** Follows an alias chain: CNAME records, then the final name's records or its negative answer (RFC 6604: its rcode). */
  private chain(start: NameEntry, type: number): CompiledAnswer {
    const answers: ZoneRecord[] = [];
    let e: NameEntry | undefined = start;
    const seen = new Set<string>();
    while (e?.cname && answers.length < MAX_CHAIN && !seen.has(e.name)) {
      seen.add(e.name);
      answers.push(e.cname);
      const next = e.cname.data as string;
      e = this.names.get(next);
      if (!e) {
        const zone = this.zoneOf(next);
        if (zone) return this.negative(start.name, Rcode.NXDOMAIN, zone, answers);
        return { ...this.positive(start.name, asAnswers(answers), []), chase: next };
      }
    }
    if (!e || e.cname) return this.positive(start.name, asAnswers(answers), []); // a loop or an over-long chain: what we have
    const set = e.rrsets.get(type);
    if (!set) return e.zone ? this.negative(start.name, Rcode.NOERROR, e.zone, answers) : this.positive(start.name, asAnswers(answers), []);
    return this.positive(start.name, asAnswers([...answers, ...set]), this.additionalFor(set));
  }

  /** Addresses of SRV and NS targets we know, so clients need no second query. */
  private additionalFor(set: readonly ZoneRecord[]): Answer[] {
    const targets = new Set<string>();
    for (const r of set) {
      if (r.type === 'SRV') targets.add(r.data.target);
      else if (r.type === 'NS') targets.add(r.data);
    }
    const extra: ZoneRecord[] = [];
    for (const name of targets) {
      const t = this.names.get(name);
      if (!t) continue;
      for (const a of t.rrsets.get(RecordType.A) ?? []) extra.push(a);
      for (const a of t.rrsets.get(RecordType.AAAA) ?? []) extra.push(a);
    }
    return asAnswers(extra);
  }

  private nodataOf(e: NameEntry): CompiledAnswer {
    if (!e.nodata) e.nodata = e.zone ? this.negative(e.name, Rcode.NOERROR, e.zone, []) : this.positive(e.name, [], []);
    return e.nodata;
  }

  private soaRecord(ttl: number, origin: string): SoaAnswer {
    const { mname, rname, serial, refresh, retry, expire, minimum } = this.soa;
    return { name: origin, type: 'SOA', ttl, data: { mname, rname, serial, refresh, retry, expire, minimum } };
  }

  /** NXDOMAIN or NODATA: the zone's SOA in the authority section, with the negative TTL (RFC 2308 3). */
  private negative(qname: string, rcode: number, zone: Zone, answers: readonly ZoneRecord[]): CompiledAnswer {
    const soa = this.soaRecord(Math.min(this.soa.ttl, this.soa.minimum), zone.origin);
    return { rcode, sections: encodeSections(qname, asAnswers(answers), [soa]), trimmed: undefined, chase: undefined };
  }

  private positive(qname: string, answers: readonly Answer[], additional: readonly Answer[]): CompiledAnswer {
    const sections = encodeSections(qname, answers, [], additional);
    const trimmed = additional.length ? encodeSections(qname, answers) : undefined;
    return { rcode: Rcode.NOERROR, sections, trimmed, chase: undefined };
  }
}

/** Zone records are dns-packet answers, but read-only (TXT data is a readonly array): the encoder only reads them. */
function asAnswers(records: readonly ZoneRecord[]): Answer[] {
  return records as unknown as Answer[];
}
