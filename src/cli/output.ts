/** Where a command writes; tests and commands share the process streams. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: Output = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/** Prints `data` as JSON with `--json`, otherwise the human rendering. */
export function emit(json: boolean | undefined, data: unknown, human: () => string): void {
  if (json) stdio.out(JSON.stringify(data ?? null, null, 2));
  else {
    const text = human();
    if (text) stdio.out(text);
  }
}

export type Column<T> = [header: string, value: (row: T) => unknown];

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.map(cell).join(', ');
  // Keeps one row per line whatever the data holds.
  return String(v).replace(/[\r\n\t]+/g, ' ');
}

/** A plain text table: a header row and aligned columns (the last one is not padded). */
export function table<T>(rows: readonly T[], columns: Column<T>[], empty = '(none)'): string {
  if (rows.length === 0) return empty;
  const grid = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, f]) => cell(f(r))))];
  const widths = columns.map((_, i) => Math.max(...grid.map((line) => line[i]!.length)));
  return grid
    .map((line) =>
      line
        .map((c, i) => (i === line.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `key: value` lines for one record. */
export function fields(pairs: [label: string, value: unknown][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cell(v)}`.trimEnd()).join('\n');
}

/** Names of principal references, for tables. */
export function names(refs: readonly { name: string }[] | undefined): string {
  return (refs ?? []).map((r) => r.name).join(', ');
}

export function isoTime(ms: unknown): string {
  return typeof ms === 'number' ? new Date(ms).toISOString() : '';
}
