/**
 * Counters and gauges in the Prometheus text format (Telegraf's prometheus
 * input and InfluxDB read it too). Plain numbers: incrementing one costs a
 * property add, so per-packet counting is cheap.
 */

type Labels = Readonly<Record<string, string>>;

export interface Series { readonly labels: Labels; value: number }

class Family {
  private series = new Map<string, Series>();
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge') {}

  /** The series for a label set; keep the returned object to avoid the lookup per packet. */
  with(labels: Labels = {}): Series {
    const key = JSON.stringify(labels);
    let s = this.series.get(key);
    if (!s) { s = { labels, value: 0 }; this.series.set(key, s); }
    return s;
  }

  /**
   * The series for each value of one label, each looked up once: what a
   * per-packet counter by message type or drop reason calls instead of
   * `with()`, whose key is built per call.
   */
  by(label: string): (value: string) => Series {
    const cache = new Map<string, Series>();
    return (value) => {
      let s = cache.get(value);
      if (!s) cache.set(value, s = this.with({ [label]: value }));
      return s;
    };
  }

  /** Sum over every series (a counter's total across its labels). */
  total(): number {
    let sum = 0;
    for (const s of this.series.values()) sum += s.value;
    return sum;
  }

  /** Every series as it stands. */
  list(): Series[] {
    return [...this.series.values()];
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    for (const s of this.series.values()) {
      const l = Object.entries(s.labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',');
      out.push(`${this.name}${l ? `{${l}}` : ''} ${s.value}`);
    }
  }
}

export class Metrics {
  private families = new Map<string, Family>();
  private gauges: Array<() => void> = [];

  counter(name: string, help: string): Family { return this.family(name, help, 'counter'); }
  gauge(name: string, help: string): Family { return this.family(name, help, 'gauge'); }

  /** A gauge computed when scraped. */
  gaugeFn(name: string, help: string, read: () => number, labels: Labels = {}): void {
    const s = this.gauge(name, help).with(labels);
    this.gauges.push(() => { s.value = read(); });
  }

  private family(name: string, help: string, type: 'counter' | 'gauge'): Family {
    let f = this.families.get(name);
    if (!f) { f = new Family(name, help, type); this.families.set(name, f); }
    return f;
  }

  /** Current value of one series (tests and status). */
  value(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.with(labels).value ?? 0;
  }

  /** One family's sum over its labels; 0 when no such family (a service that is off). */
  total(name: string): number {
    return this.families.get(name)?.total() ?? 0;
  }

  /** Every family with its series, gauges computed now: the UI's counters table. */
  snapshot(): Array<{ name: string; help: string; type: 'counter' | 'gauge'; series: Series[] }> {
    for (const g of this.gauges) g();
    return [...this.families.values()].map((f) => ({ name: f.name, help: f.help, type: f.type, series: f.list() }));
  }

  render(): string {
    for (const g of this.gauges) g();
    const out: string[] = [];
    for (const f of this.families.values()) f.render(out);
    return out.join('\n') + '\n';
  }
}
