/**
 * A latency histogram with fixed logarithmic buckets (about 2 % wide, 10 µs to 100 s), cheap to
 * record into and to merge across processes.
 */
const MIN_MS = 0.01;
const FACTOR = 1.02;
const BUCKETS = Math.ceil(Math.log(1e5 / MIN_MS) / Math.log(FACTOR)) + 1;

export class Histogram {
  readonly counts: number[];
  count = 0;
  max = 0;

  constructor(counts?: number[]) {
    this.counts = counts ?? new Array<number>(BUCKETS).fill(0);
    if (counts) this.count = counts.reduce((a, b) => a + b, 0);
  }

  record(ms: number): void {
    const v = Math.max(ms, MIN_MS);
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v / MIN_MS) / Math.log(FACTOR)));
    this.counts[i]! += 1;
    this.count += 1;
    if (ms > this.max) this.max = ms;
  }

  merge(other: { counts: number[]; max: number }): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i] ?? 0;
    this.count += other.counts.reduce((a, b) => a + b, 0);
    if (other.max > this.max) this.max = other.max;
  }

  /** The value below which `p` (0–1) of the recorded values fall (bucket upper bound). */
  quantile(p: number): number {
    if (this.count === 0) return 0;
    const target = Math.ceil(p * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(this.max, MIN_MS * FACTOR ** (i + 1));
    }
    return this.max;
  }

  toJSON(): { counts: number[]; max: number } {
    return { counts: this.counts, max: this.max };
  }
}
