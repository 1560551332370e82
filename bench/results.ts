/**
 * What every benchmark does with its result: writes it to `bench/results/<name>-<date>.json`,
 * an SVG plot next to it (same name, `.svg`), prints a summary table on standard error, and
 * prints the object as the last line of standard output.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/** The machine a figure was measured on, and how loaded it was: recorded with every result. */
export function machine(): Record<string, unknown> {
  const model = /model name\s*:\s*(.*)/.exec(readOr('/proc/cpuinfo'))?.[1] ?? os.cpus()[0]?.model;
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: resultsDir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    // Not a git checkout: the figure is still worth keeping.
  }
  return {
    cores: os.cpus().length,
    cpu_model: model,
    node: process.version,
    load_average: os.loadavg().map((l) => +l.toFixed(2)),
    mem_total_mb: Math.round(os.totalmem() / 2 ** 20),
    commit,
  };
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** A file-name-safe timestamp: 2026-11-26T05-03-10-666Z. */
export function stamp(date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

/**
 * Writes `result` (and `svg`, when given) under bench/results/ as `<name>-<date>.json|svg`,
 * prints `table` on standard error and the result as the last line of standard output.
 * Returns the JSON file's path.
 */
export function publish(
  name: string,
  result: Record<string, unknown>,
  opts: { svg?: string; table?: Record<string, unknown>[]; dir?: string } = {},
): string {
  const dir = opts.dir ?? resultsDir;
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `${name}-${stamp()}`);
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  if (opts.svg) fs.writeFileSync(`${base}.svg`, opts.svg);
  if (opts.table && opts.table.length > 0) process.stderr.write(`\n${formatTable(opts.table)}\n`);
  const rel = (f: string) => path.relative(process.cwd(), f);
  process.stderr.write(
    `results written to ${rel(`${base}.json`)}${opts.svg ? ` and ${rel(`${base}.svg`)}` : ''}\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return `${base}.json`;
}

/** A plain-text table of rows (columns in the first row's key order), numbers right-aligned. */
export function formatTable(rows: Record<string, unknown>[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) =>
    v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[], numeric: boolean[]) =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const numeric = columns.map((c) => rows.every((r) => typeof r[c] === 'number'));
  return [
    line(columns, numeric),
    line(
      widths.map((w) => '-'.repeat(w)),
      numeric,
    ),
    ...rows.map((r) =>
      line(
        columns.map((c) => cell(r[c])),
        numeric,
      ),
    ),
  ].join('\n');
}
