/** Why a datagram could not be decoded; the service counts drops by this reason. */
export type DecodeFailure =
  | 'short'            // under 12 bytes: not even a header to answer
  | 'response'         // QR set on what should be a query: never answer it (reflection loops start that way)
  | 'question-count'   // QDCOUNT is not 1
  | 'truncated'        // a name, question or record runs past the end
  | 'label-type'       // a label length byte with the reserved 01/10 top bits
  | 'name-too-long'    // over 255 octets
  | 'pointer'          // a compression pointer in a question, pointing forward, into the header, or looping
  | 'opt';             // a second OPT record, one off the root name, or one outside the additional section

/** Failures for which the sender gets no answer at all; every other one earns a FORMERR. */
const UNANSWERABLE: ReadonlySet<DecodeFailure> = new Set(['short', 'response']);

export class DnsDecodeError extends Error {
  constructor(readonly reason: DecodeFailure) {
    super(`malformed DNS message: ${reason}`);
    this.name = 'DnsDecodeError';
  }

  /** Whether the sender should get a FORMERR (it sent a header we can answer). */
  get answerable(): boolean {
    return !UNANSWERABLE.has(this.reason);
  }
}
