/**
 * InfluxDB line protocol, checked before a batch is accepted: one node must
 * not be able to poison the store with a line InfluxDB would half-accept.
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * Measurement, tag keys/values and field keys escape `,` ` ` (and `=` but in
 * the measurement) with a backslash. Field values: float (`1`, `-1.5e3`),
 * integer `12i`, unsigned `12u`, string `"a \"b\""`, boolean (t, true, F,
 * FALSE...). The timestamp is an integer in the request's precision. Blank
 * lines and `#` comments are skipped. Line numbers are 1-based and count
 * every line of the body, blank ones too, as InfluxDB's messages do.
 */

/** Canonical precisions; the v1 API also says n, u. */
export type Precision = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';

/** Nanoseconds per unit of each precision. */
export const NS_PER: Readonly<Record<Precision, bigint>> = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };

const V1_PRECISIONS: Readonly<Record<string, Precision>> = { n: 'ns', ns: 'ns', u: 'us', us: 'us', ms: 'ms', s: 's', m: 'm', h: 'h' };
const V2_PRECISIONS: Readonly<Record<string, Precision>> = { ns: 'ns', us: 'us', ms: 'ms', s: 's' };

/** The precision a request names (absent: ns), or undefined when the API has no such precision. */
export function parsePrecision(value: string | undefined, api: 'v1' | 'v2'): Precision | undefined {
  if (value === undefined || value === '') return 'ns';
  return (api === 'v1' ? V1_PRECISIONS : V2_PRECISIONS)[value];
}

/** The `precision=` value InfluxDB 1.x's /write takes for a canonical precision. */
export function v1PrecisionParam(p: Precision): string {
  return p === 'ns' ? 'n' : p === 'us' ? 'u' : p;
}

export interface BatchOk {
  readonly ok: true;
  /** Points (non-blank, non-comment lines). */
  readonly points: number;
  /** Offset in the body just past the last field of each point that has no timestamp (where one can be inserted). */
  readonly untimed: readonly number[];
}

export interface BatchError {
  readonly ok: false;
  /** 1-based line number of the first bad line. */
  readonly line: number;
  readonly message: string;
  /** The bad line as sent (cut at 200 characters). */
  readonly text: string;
}

const INT64_MAX = 9223372036854775807n;
const UINT64_MAX = 18446744073709551615n;
/** InfluxDB's own bounds for a timestamp in nanoseconds (min and max int64 are reserved). */
const TIME_MIN = -9223372036854775806n;
const TIME_MAX = 9223372036854775806n;

/** Digits of the largest timestamp magnitude in each precision. */
const TIME_BOUND: Readonly<Record<Precision, string>> = Object.fromEntries(Object.entries(NS_PER).map(([p, ns]) => [p, String(TIME_MAX / ns)])) as Record<Precision, string>;

const BOOLS = new Set(['t', 'T', 'true', 'True', 'TRUE', 'f', 'F', 'false', 'False', 'FALSE']);

class LineError extends Error {}

/** Checks a whole batch; the first bad line stops it. */
export function checkBatch(body: string, precision: Precision): BatchOk | BatchError {
  const untimed: number[] = [];
  let points = 0;
  let line = 1;
  let i = 0;
  const n = body.length;
  while (i < n) {
    const start = i;
    const startLine = line;
    // Skip blank lines and comments.
    let j = i;
    while (j < n && (body[j] === ' ' || body[j] === '\t' || body[j] === '\r')) j++;
    if (j >= n) break;
    if (body[j] === '\n') { i = j + 1; line++; continue; }
    if (body[j] === '#') {
      const nl = body.indexOf('\n', j);
      if (nl < 0) break;
      i = nl + 1; line++; continue;
    }
    try {
      const r = point(body, j, precision);
      if (r.untimedAt >= 0) untimed.push(r.untimedAt);
      points++;
      line += r.newlines;
      i = r.end;
      if (i < n) { i++; line++; } // the '\n'
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      let end = body.indexOf('\n', start);
      if (end < 0) end = n;
      return { ok: false, line: startLine, message: e.message, text: body.slice(start, Math.min(end, start + 200)) };
    }
  }
  return { ok: true, points, untimed };
}

const BACKSLASH = 0x5c, NEWLINE = 0x0a, COMMA = 0x2c, SPACE = 0x20, EQUALS = 0x3d;

/** Reads a measurement, tag or field-key token up to an unescaped ',' or ' ' (and '=' unless `measurement`). */
function token(s: string, i: number, measurement: boolean): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === BACKSLASH && i + 1 < n && s.charCodeAt(i + 1) !== NEWLINE) { i += 2; continue; }
    if (c === NEWLINE || c === COMMA || c === SPACE || (c === EQUALS && !measurement)) return i;
    i++;
  }
  return i;
}

/** Parses one point starting at i; `end` is the offset of its '\n' (or the body's end). */
function point(s: string, i: number, precision: Precision): { end: number; newlines: number; untimedAt: number } {
  const n = s.length;
  let newlines = 0;
  const mEnd = token(s, i, true);
  if (mEnd === i) throw new LineError('missing measurement');
  i = mEnd;
  // Tags.
  while (i < n && s[i] === ',') {
    const kStart = i + 1;
    const kEnd = token(s, kStart, false);
    if (kEnd === kStart) throw new LineError('missing tag key');
    if (s[kEnd] !== '=') throw new LineError(`missing tag value for tag key ${JSON.stringify(s.slice(kStart, kEnd))}`);
    const vStart = kEnd + 1;
    const vEnd = token(s, vStart, false);
    if (vEnd === vStart) throw new LineError(`missing tag value for tag key ${JSON.stringify(s.slice(kStart, kEnd))}`);
    if (s[vEnd] === '=') throw new LineError(`unescaped '=' in the value of tag ${JSON.stringify(s.slice(kStart, kEnd))}`);
    i = vEnd;
  }
  if (i >= n || s[i] !== ' ') throw new LineError('missing fields');
  while (i < n && s[i] === ' ') i++;
  // Fields.
  let fields = 0;
  for (;;) {
    const kStart = i;
    const kEnd = token(s, kStart, false);
    if (kEnd === kStart) throw new LineError(fields ? 'missing field key after ","' : 'missing fields');
    if (s[kEnd] !== '=') throw new LineError(`missing field value for field ${JSON.stringify(s.slice(kStart, kEnd))}`);
    i = kEnd + 1;
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new LineError(`unterminated string in field ${JSON.stringify(s.slice(kStart, kEnd))}`);
        const c = s[i]!;
        if (c === '\\' && i + 1 < n) { if (s[i + 1] === '\n') newlines++; i += 2; continue; }
        if (c === '"') { i++; break; }
        if (c === '\n') newlines++;
        i++;
      }
    } else {
      const vStart = i;
      for (let c = s.charCodeAt(i); i < n && c !== COMMA && c !== SPACE && c !== NEWLINE && c !== 0x0d; c = s.charCodeAt(++i));
      fieldValue(s, kStart, kEnd, vStart, i);
    }
    fields++;
    if (s[i] === ',') { i++; continue; }
    break;
  }
  const fieldsEnd = i;
  while (i < n && s[i] === ' ') i++;
  const tStart = i;
  for (let c = s.charCodeAt(i); i < n && c !== NEWLINE && c !== SPACE && c !== 0x0d; c = s.charCodeAt(++i));
  const tEnd = i;
  while (i < n && (s[i] === ' ' || s[i] === '\r')) i++;
  if (i < n && s[i] !== '\n') throw new LineError(`unexpected text after the timestamp: ${JSON.stringify(s.slice(i, i + 40))}`);
  if (tEnd === tStart) return { end: i, newlines, untimedAt: fieldsEnd };
  // Checked in place (no slice or regex for a good timestamp): -?\d+
  const dStart = s.charCodeAt(tStart) === MINUS ? tStart + 1 : tStart;
  if (dStart === tEnd || digits(s, dStart, tEnd) !== tEnd) throw new LineError(`bad timestamp ${JSON.stringify(s.slice(tStart, Math.min(tEnd, tStart + 40)))}: expected an integer in ${precision}`);
  // Most timestamps are well inside the range: BigInt only for those as long as the bound.
  if (tEnd - dStart < TIME_BOUND[precision].length) return { end: i, newlines, untimedAt: -1 };
  const ts = s.slice(tStart, tEnd);
  const t = BigInt(ts) * NS_PER[precision];
  if (t < TIME_MIN || t > TIME_MAX) throw new LineError(`timestamp ${ts} (${precision}) is out of range`);
  return { end: i, newlines, untimedAt: -1 };
}

const MINUS = 0x2d, DOT = 0x2e, ZERO = 0x30, NINE = 0x39, LOWER_E = 0x65, UPPER_E = 0x45, PLUS = 0x2b;

/** Offset past the digits from i. */
function digits(s: string, i: number, end: number): number {
  while (i < end) { const c = s.charCodeAt(i); if (c < ZERO || c > NINE) break; i++; }
  return i;
}

/** The error for a bad field value; built only then (the checker's good path makes no strings). */
function badValue(s: string, kStart: number, kEnd: number, from: number, to: number, kind: 'missing' | 'int' | 'uint' | 'int-range' | 'uint-range' | 'value' | 'float-range'): LineError {
  const k = JSON.stringify(s.slice(kStart, kEnd));
  const v = s.slice(from, to);
  switch (kind) {
    case 'missing': return new LineError(`missing field value for field ${k}`);
    case 'int': return new LineError(`bad integer ${JSON.stringify(v)} in field ${k}`);
    case 'uint': return new LineError(`bad unsigned integer ${JSON.stringify(v)} in field ${k}`);
    case 'int-range': return new LineError(`integer ${v} in field ${k} is out of the int64 range`);
    case 'uint-range': return new LineError(`unsigned integer ${v} in field ${k} is out of the uint64 range`);
    case 'float-range': return new LineError(`float ${v} in field ${k} is out of range`);
    case 'value': return new LineError(`bad field value ${JSON.stringify(v.slice(0, 40))} in field ${k}: expected a number, 12i, 12u, "string", true or false`);
  }
}

/**
 * Checks the field value s[from, to) of the field whose key is s[kStart,
 * kEnd); scans char codes so a good value costs no slice, regex, closure or
 * number conversion (this runs for every field of every accepted point).
 */
function fieldValue(s: string, kStart: number, kEnd: number, from: number, to: number): void {
  if (from === to) throw badValue(s, kStart, kEnd, from, to, 'missing');
  const last = s.charCodeAt(to - 1);
  if (last === 0x69 /* i */ || last === 0x75 /* u */) {
    const signed = last === 0x69;
    const dStart = signed && s.charCodeAt(from) === MINUS ? from + 1 : from;
    if (dStart === to - 1 || digits(s, dStart, to - 1) !== to - 1) throw badValue(s, kStart, kEnd, from, to, signed ? 'int' : 'uint');
    // Up to 15 digits is always in range: BigInt only for the long ones.
    if (to - 1 - dStart <= 15) return;
    const x = BigInt(s.slice(from, to - 1));
    if (signed && (x > INT64_MAX || x < -INT64_MAX - 1n)) throw badValue(s, kStart, kEnd, from, to, 'int-range');
    if (!signed && x > UINT64_MAX) throw badValue(s, kStart, kEnd, from, to, 'uint-range');
    return;
  }
  // Float: -?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?
  let i = s.charCodeAt(from) === MINUS ? from + 1 : from;
  const intEnd = digits(s, i, to);
  let mantissa = intEnd - i;
  i = intEnd;
  if (i < to && s.charCodeAt(i) === DOT) { const fEnd = digits(s, i + 1, to); mantissa += fEnd - i - 1; i = fEnd; }
  let exponent = false;
  if (mantissa > 0 && i < to && (s.charCodeAt(i) === LOWER_E || s.charCodeAt(i) === UPPER_E)) {
    let e = i + 1;
    if (e < to && (s.charCodeAt(e) === PLUS || s.charCodeAt(e) === MINUS)) e++;
    const eEnd = digits(s, e, to);
    if (eEnd > e) { i = eEnd; exponent = true; } else i = -1;
  }
  if (mantissa === 0 || i !== to) {
    if (BOOLS.has(s.slice(from, to))) return;
    throw badValue(s, kStart, kEnd, from, to, 'value');
  }
  // Only an exponent or a very long number can leave the float64 range.
  if ((exponent || to - from > 300) && !Number.isFinite(Number(s.slice(from, to)))) throw badValue(s, kStart, kEnd, from, to, 'float-range');
}

/**
 * The batch with a timestamp (`ns` in the batch's precision) inserted after
 * every untimed point, so a batch delivered twice writes the same points
 * (InfluxDB keeps one point per series and time).
 */
export function stampUntimed(body: string, untimed: readonly number[], now: string): string {
  if (!untimed.length) return body;
  const parts: string[] = [];
  let from = 0;
  for (const at of untimed) { parts.push(body.slice(from, at), ' ', now); from = at; }
  parts.push(body.slice(from));
  return parts.join('');
}
