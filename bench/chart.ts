/**
 * Small dependency-free SVG charts for benchmark results: a line chart (for example delivery
 * latency against users in a ramp) and a grouped bar chart (latency percentiles per run,
 * throughput per store). The output is a standalone SVG document.
 */

export interface Series {
  name: string;
  points: [number, number][];
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** A logarithmic y axis (latencies spanning decades). */
  logY?: boolean;
  /** Horizontal reference lines, e.g. a target. */
  marks?: { label: string; y: number }[];
}

export interface BarChartSpec {
  title: string;
  yLabel: string;
  /** One group of bars per label on the x axis; bars in a group share the series' colours. */
  groups: { label: string; bars: { name: string; value: number }[] }[];
  logY?: boolean;
  marks?: { label: string; y: number }[];
}

const W = 720;
const H = 400;
const M = { top: 40, right: 170, bottom: 50, left: 70 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return String(+v.toPrecision(3));
  return String(+v.toPrecision(2));
}

/** Round tick values covering [lo, hi]: 1-2-5 steps, or powers of ten on a log axis. */
function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const span = hi - lo || 1;
  const raw = span / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step / 1e9; v += step)
    out.push(+v.toFixed(12));
  return out;
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
}

function axis(values: number[], log: boolean, fromZero: boolean): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (finite.length === 0) return { lo: log ? 1 : 0, hi: log ? 10 : 1, log };
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (log) {
    lo = 10 ** Math.floor(Math.log10(lo));
    hi = 10 ** Math.ceil(Math.log10(hi));
    if (lo === hi) hi = lo * 10;
  } else {
    if (fromZero) lo = Math.min(0, lo);
    if (lo === hi) hi = lo + 1;
    const t = ticks(lo, hi, false);
    const step = t.length > 1 ? t[1]! - t[0]! : 1;
    hi = Math.ceil(hi / step) * step;
    lo = Math.floor(lo / step) * step;
  }
  return { lo, hi, log };
}

function scale(a: Axis, from: number, to: number): (v: number) => number {
  const f = (v: number) => (a.log ? Math.log10(Math.max(v, a.lo)) : v);
  const lo = f(a.lo);
  const hi = f(a.hi);
  return (v) => from + ((f(v) - lo) / (hi - lo)) * (to - from);
}

function frame(title: string, xLabel: string, yLabel: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${M.left + (W - M.left - M.right) / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${M.top + (H - M.top - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function yAxis(a: Axis, y: (v: number) => number, marks: { label: string; y: number }[]): string[] {
  const out: string[] = [];
  for (const t of ticks(a.lo, a.hi, a.log)) {
    if (t < a.lo || t > a.hi) continue;
    const py = y(t).toFixed(1);
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${py}" y2="${py}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`,
    );
  }
  for (const m of marks) {
    if (m.y < a.lo || m.y > a.hi) continue;
    const py = y(m.y).toFixed(1);
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${py}" y2="${py}" stroke="#555" stroke-dasharray="6 4"/>`,
      `<text x="${W - M.right + 4}" y="${py}" dominant-baseline="middle" fill="#555">${esc(m.label)}</text>`,
    );
  }
  out.push(
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="black"/>`,
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="black"/>`,
  );
  return out;
}

function legend(names: string[], top: number): string[] {
  return names.flatMap((name, i) => {
    const y = top + i * 18;
    return [
      `<rect x="${W - M.right + 10}" y="${y - 6}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/>`,
      `<text x="${W - M.right + 28}" y="${y}" dominant-baseline="middle">${esc(name)}</text>`,
    ];
  });
}

/** A line chart with markers; a series with one point shows as a marker alone. */
export function lineChart(spec: LineChartSpec): string {
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = spec.series.flatMap((s) => s.points.map((p) => p[1]));
  const ax = axis(xs, false, false);
  const ay = axis([...ys, ...(spec.marks ?? []).map((m) => m.y)], spec.logY ?? false, true);
  const x = scale(ax, M.left, W - M.right);
  const y = scale(ay, H - M.bottom, M.top);
  const body = yAxis(ay, y, spec.marks ?? []);
  for (const t of ticks(ax.lo, ax.hi, false)) {
    if (t < ax.lo || t > ax.hi) continue;
    body.push(
      `<text x="${x(t).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`,
    );
  }
  spec.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = s.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`);
    if (pts.length > 1)
      body.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`,
      );
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      body.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${colour}"/>`);
    }
  });
  body.push(
    ...legend(
      spec.series.map((s) => s.name),
      M.top + 10,
    ),
  );
  return frame(spec.title, spec.xLabel, spec.yLabel, body);
}

/** A grouped bar chart with the value written above each bar. */
export function barChart(spec: BarChartSpec): string {
  const names = [...new Set(spec.groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const values = spec.groups.flatMap((g) => g.bars.map((b) => b.value));
  const ay = axis([...values, ...(spec.marks ?? []).map((m) => m.y)], spec.logY ?? false, true);
  const y = scale(ay, H - M.bottom, M.top);
  const body = yAxis(ay, y, spec.marks ?? []);
  const groupW = (W - M.left - M.right) / Math.max(1, spec.groups.length);
  const barW = (groupW * 0.8) / Math.max(1, names.length);
  spec.groups.forEach((g, gi) => {
    const gx = M.left + gi * groupW + groupW * 0.1;
    body.push(
      `<text x="${(gx + groupW * 0.4).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(g.label)}</text>`,
    );
    for (const b of g.bars) {
      const k = names.indexOf(b.name);
      const bx = gx + k * barW;
      const top = y(Math.max(b.value, ay.log ? ay.lo : 0));
      const base = H - M.bottom;
      body.push(
        `<rect x="${bx.toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${Math.max(0, base - top).toFixed(1)}" fill="${COLOURS[k % COLOURS.length]}"/>`,
        `<text x="${(bx + barW / 2 - 1).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(b.value)}</text>`,
      );
    }
  });
  body.push(...legend(names, M.top + 10));
  return frame(spec.title, '', spec.yLabel, body);
}
