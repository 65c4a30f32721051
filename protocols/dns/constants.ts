/** DNS numbers used by bootherd (RFC 1035, 2782, 3596, 6891, 6895 registries). */

export const HEADER_LENGTH = 12;
/** A name is at most 255 octets on the wire, root label included (RFC 1035 2.3.4). */
export const MAX_NAME_LENGTH = 255;
export const MAX_LABEL_LENGTH = 63;
/** Plain DNS over UDP without EDNS (RFC 1035 4.2.1). */
export const MAX_UDP_PLAIN = 512;
/** An OPT record with no options: root owner, type, class (size), TTL (flags), RDLENGTH. */
export const OPT_RECORD_LENGTH = 11;

export const RecordType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
} as const;

export const RecordClass = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

export const Opcode = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;

/** Response codes; BADVERS (16) needs the OPT record's extended RCODE bits. */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;

export const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 16: 'BADVERS',
};

/** Bits of the header's flags word (the second 16 bits). */
export const Flag = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;

/** The DO bit in the OPT record's flags (RFC 3225). */
export const EDNS_DO = 0x8000;
