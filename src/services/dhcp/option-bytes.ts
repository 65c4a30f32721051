/**
 * Option values that replies repeat (the message type, the server identifier,
 * the next server's address, a profile's loader name), encoded once per
 * distinct value rather than once per reply. Safe because an option value is
 * never written to after it is made: the encoder only copies it.
 */
export class OptionBytes<K> {
  private readonly made = new Map<K, Buffer>();

  /**
   * `bound` caps the distinct values kept; past it the memo starts over, so a
   * stream of one-off values (per-client URLs) costs memory no longer than
   * it is in use.
   */
  constructor(private readonly encode: (value: K) => Buffer, private readonly bound = 256) {}

  of(value: K): Buffer {
    let bytes = this.made.get(value);
    if (!bytes) {
      if (this.made.size >= this.bound) this.made.clear();
      bytes = this.encode(value);
      this.made.set(value, bytes);
    }
    return bytes;
  }
}
