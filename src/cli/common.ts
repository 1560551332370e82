import { InvalidArgumentError, type Command } from 'commander';
import { normalizeServer, type ServerOptions } from './client.js';
import { CliError, UsageError } from './errors.js';
import { emit, stdio } from './output.js';
import { ask, interactive, readStdin } from './prompt.js';

/**
 * Adds a command that talks to a server: every one takes `--server` and `--json`, so that each
 * `--help` lists them.
 */
export function serverCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return localCommand(parent, nameAndArgs, description).option(
    '--server <url>',
    'server base URL (default: $PERCH_SERVER or http://127.0.0.1:8080)',
    parseServer,
  );
}

/** Adds a command that runs without a server; it still takes `--json`. */
export function localCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return parent
    .command(nameAndArgs)
    .description(description)
    .option('--json', 'print machine-readable JSON instead of text');
}

function usage(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UsageError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

export function parseServer(value: string): string {
  return usage(() => normalizeServer(value)) as string;
}

/** An integer option within [min, max], written plainly (no `1e3`, no `0x10`). */
export function intIn(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^-?\d{1,16}$/.test(value.trim())) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be from ${min} to ${max}`);
    return n;
  };
}

/** `true|false` (also yes/no, on/off, 1/0) for switches that can be set either way. */
export function parseBool(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  throw new InvalidArgumentError('must be true or false');
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(...choices: T[]): (value: string) => T {
  return (value) => {
    const v = value.trim().toLowerCase() as T;
    if (!choices.includes(v))
      throw new InvalidArgumentError(`must be one of ${choices.join(', ')}`);
    return v;
  };
}

/** An absolute http(s) URL. */
export function parseHttpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError('must be an http:// or https:// URL');
  }
  return value;
}

/**
 * A date: an ISO date (`2024-05-01`, meaning that whole day where it ends a range), an ISO
 * date-time with offset, or milliseconds since the epoch. Returned in the form the API takes.
 */
export function parseDate(value: string): string | number {
  const v = value.trim();
  if (/^\d{1,16}$/.test(v)) return Number(v);
  if (/^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`))) return v;
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/i.test(v) && !Number.isNaN(Date.parse(v))) {
    return v;
  }
  throw new InvalidArgumentError(
    'must be a date (2024-05-01), a date-time with offset (2024-05-01T12:00:00Z) or epoch ms',
  );
}

/** Repeatable and comma-separated list options: `--member a --member b,c`. */
export function collect(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return [...(previous ?? []), ...items];
}

/** A non-empty name of at most `max` characters. */
export function nameOf(max: number): (value: string) => string {
  return (value) => {
    const v = value.trim();
    if (v.length === 0) throw new InvalidArgumentError('must not be empty');
    if (v.length > max) throw new InvalidArgumentError(`must be at most ${max} characters`);
    return v;
  };
}

export interface DestructiveOptions extends ServerOptions {
  whatIf?: boolean;
  force?: boolean;
}

/** Adds `--what-if` and `--force` to a destructive command. */
export function destructive(cmd: Command): Command {
  return cmd
    .option('--what-if', 'describe what would be done and change nothing')
    .option('--force', 'do not ask for confirmation (required when stdin is not a terminal)');
}

/**
 * The gate in front of every destructive change. `--what-if` prints what would happen and
 * returns false; without `--force` a person at a terminal is asked, and a script (no terminal)
 * is refused with a usage error.
 */
export async function confirm(
  opts: DestructiveOptions,
  action: string,
  target: Record<string, unknown>,
): Promise<boolean> {
  if (opts.whatIf) {
    emit(opts.json, { whatIf: true, action, target }, () => `What if: ${action}`);
    return false;
  }
  if (opts.force) return true;
  if (!interactive()) {
    throw new UsageError(`refusing to ${action} without --force: stdin is not a terminal`);
  }
  const answer = await ask(`${action}? [y/N] `);
  if (!/^y(es)?$/i.test(answer.trim()))
    throw new CliError('cancelled', 'not confirmed; nothing changed');
  return true;
}

/**
 * A password for a command: from stdin with `--password-stdin`, else asked twice at a
 * terminal (`confirmTwice`), else a usage error.
 */
export async function readPassword(
  fromStdin: boolean | undefined,
  prompt: string,
  confirmTwice = false,
): Promise<string> {
  if (fromStdin) {
    const pw = await readStdin();
    if (!pw) throw new UsageError('--password-stdin: standard input was empty');
    return pw;
  }
  if (!interactive()) {
    throw new UsageError('no terminal to ask for the password on; use --password-stdin');
  }
  const pw = await ask(prompt, true);
  if (confirmTwice && (await ask('Repeat it: ', true)) !== pw) {
    throw new CliError('password_mismatch', 'the two passwords differ');
  }
  return pw;
}

export function note(text: string): void {
  stdio.err(text);
}
