// Command-line handling shared by the benchmarks: help from the file's leading comment, typed
// failures that exit 2, and the checks every benchmark repeats.
import fs from 'node:fs';
import type { StoreKind } from './servers.js';

export interface BenchArgs {
  /** Prints `bench:<name>: message` to stderr and exits 2. */
  fail(message: string): never;
  /** The option as a positive number, or a failure naming it. */
  positive(name: string): number;
  /** The option as a store kind (sqlite or postgres), or a failure. */
  storeKind(name?: string): StoreKind;
}

/** Checks on the parsed `values` of benchmark `bench`. */
export function benchArgs(bench: string, values: Record<string, unknown>): BenchArgs {
  const fail = (message: string): never => {
    process.stderr.write(`bench:${bench}: ${message}\n`);
    process.exit(2);
  };
  return {
    fail,
    positive(name) {
      const v = Number(values[name]);
      if (!Number.isFinite(v) || v <= 0) fail(`--${name} must be a positive number`);
      return v;
    },
    storeKind(name = 'store') {
      const kind = values[name];
      if (kind !== 'sqlite' && kind !== 'postgres')
        fail(`--${name} must be sqlite or postgres, not ${String(kind)}`);
      return kind as StoreKind;
    },
  };
}

/** Prints the leading comment of a benchmark's source file as its --help. */
export function printHelp(file: string): void {
  process.stdout.write(
    fs
      .readFileSync(file, 'utf8')
      .split('*/')[0]!
      .replace(/^\/\*\*?|^ \* ?/gm, '') + '\n',
  );
}
