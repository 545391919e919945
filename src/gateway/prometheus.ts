// Just enough of the Prometheus text exposition format (version 0.0.4): counters and gauges with
// labels, and cumulative histograms. No dependency, no global registry. `render(base)` puts the
// `base` labels (the gateway's `model_name`) on every sample, as vLLM does.

export type Labels = Record<string, string | number>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export function formatLabels(labels: Labels | undefined): string {
  if (!labels) return "";
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function header(name: string, help: string, type: "counter" | "gauge" | "histogram"): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
}

export function sample(name: string, value: number, labels?: Labels): string {
  return `${name}${formatLabels(labels)} ${formatValue(value)}\n`;
}

/** A counter keyed by its label values (insertion order kept for stable output). */
export class Counter {
  private readonly values = new Map<string, { labels: Labels | undefined; value: number }>();

  constructor(readonly name: string, readonly help: string) {}

  inc(labels?: Labels, by = 1): void {
    const key = formatLabels(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  get(labels?: Labels): number {
    return this.values.get(formatLabels(labels))?.value ?? 0;
  }

  render(base?: Labels): string {
    let out = header(this.name, this.help, "counter");
    if (this.values.size === 0) out += sample(this.name, 0, base);
    for (const { labels, value } of this.values.values()) out += sample(this.name, value, { ...base, ...labels });
    return out;
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.counts = new Array(buckets.length).fill(0);
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    this.sum += v;
    this.count += 1;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]! += 1;
  }

  get observations(): number {
    return this.count;
  }

  /** Count, mean and quantiles estimated from the buckets as Prometheus' histogram_quantile does
   * (linear within the bucket), for a JSON summary (GET /v1/cluster). null when nothing was observed. */
  summary(qs: readonly number[] = [0.5, 0.95]): { count: number; mean: number; quantiles: Record<string, number> } | null {
    if (this.count === 0) return null;
    const quantiles: Record<string, number> = {};
    for (const q of qs) {
      const rank = q * this.count;
      const i = this.counts.findIndex((c) => c >= rank);
      if (i < 0) { quantiles[`p${Math.round(q * 100)}`] = this.buckets.at(-1)!; continue; } // in +Inf: the top bound
      const lo = i === 0 ? 0 : this.buckets[i - 1]!, below = i === 0 ? 0 : this.counts[i - 1]!;
      const inBucket = this.counts[i]! - below;
      quantiles[`p${Math.round(q * 100)}`] = inBucket > 0 ? lo + (this.buckets[i]! - lo) * ((rank - below) / inBucket) : this.buckets[i]!;
    }
    return { count: this.count, mean: this.sum / this.count, quantiles };
  }

  render(base?: Labels): string {
    let out = header(this.name, this.help, "histogram");
    this.buckets.forEach((le, i) => (out += sample(`${this.name}_bucket`, this.counts[i]!, { ...base, le: String(le) })));
    out += sample(`${this.name}_bucket`, this.count, { ...base, le: "+Inf" });
    out += sample(`${this.name}_sum`, this.sum, base);
    out += sample(`${this.name}_count`, this.count, base);
    return out;
  }
}
