import type pg from 'pg';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  BackupFailedError,
  BackupTargetNotEmptyError,
  StoreUnreachableError,
} from '../../errors.js';
import { findPrimary, pgClient } from '../postgres/connect.js';
import { pgHosts, pgUrlFor, redact } from '../store-url.js';
import {
  fileRows,
  numbers,
  snapshotQueries,
  type StoreRole,
  type StoreSnapshot,
} from './snapshot.js';

/**
 * pg_dump / pg_restore: the newest of Debian's /usr/lib/postgresql/<version>/bin first (a
 * pg_dump must be at least as new as the server it dumps), then PATH.
 */
export function findPgTool(name: 'pg_dump' | 'pg_restore'): string {
  const dirs: string[] = [];
  try {
    dirs.push(
      ...fs
        .readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => path.join('/usr/lib/postgresql', v, 'bin')),
    );
  } catch {
    // Not Debian's layout: PATH only.
  }
  dirs.push(...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean));
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  throw new BackupFailedError(
    `${name} was not found under /usr/lib/postgresql/*/bin or on PATH; install the PostgreSQL client programs (apt-get install postgresql-client)`,
  );
}

/**
 * The URL a PostgreSQL program is given: the primary's host only (found among several the way
 * the server finds it), without the password, which goes to the child in PGPASSWORD instead of
 * its command line.
 */
async function libpqTarget(
  connectionString: string,
): Promise<{ url: string; env: NodeJS.ProcessEnv }> {
  let single = connectionString;
  if (pgHosts(connectionString).length > 1) {
    try {
      single = pgUrlFor(connectionString, await findPrimary(connectionString));
    } catch (err) {
      throw new StoreUnreachableError(redact(connectionString), (err as Error).message);
    }
  }
  const url = new URL(single);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (url.password !== '') {
    env.PGPASSWORD = decodeURIComponent(url.password);
    url.password = '';
  }
  return { url: url.toString(), env };
}

/** Runs a PostgreSQL program; on failure a BackupFailedError with the end of its stderr. */
function runTool(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  tick: () => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr = (stderr + c).slice(-4000);
    });
    const timer = setInterval(tick, 2000);
    child.once('error', (err) => {
      clearInterval(timer);
      reject(new BackupFailedError(`${path.basename(file)} did not start: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearInterval(timer);
      if (code === 0) resolve();
      else
        reject(
          new BackupFailedError(
            `${path.basename(file)} failed (${signal ?? `exit ${code}`}): ${redact(stderr.trim())}`,
          ),
        );
    });
  });
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

async function connect(connectionString: string): Promise<pg.Client> {
  const client = pgClient(connectionString, { application_name: 'perch-backup' });
  try {
    await client.connect();
  } catch (err) {
    throw new StoreUnreachableError(redact(connectionString), (err as Error).message);
  }
  return client;
}

async function describe(client: pg.Client, role: StoreRole): Promise<StoreSnapshot> {
  const q = snapshotQueries[role];
  const schema = (await client.query<{ id: string }>(q.schema)).rows.map((r) => r.id);
  const counts = numbers((await client.query(q.counts)).rows[0] as Record<string, unknown>);
  const files = q.files ? fileRows((await client.query(q.files)).rows) : [];
  return { schema, counts, files };
}

/**
 * Dumps a PostgreSQL store with `pg_dump -Fc` into `target`. The counts, the schema and the file
 * list are read in a repeatable-read transaction whose snapshot pg_dump is given (--snapshot), so
 * the manifest describes exactly what the dump holds, while the front ends keep writing.
 */
export async function dumpPostgres(
  connectionString: string,
  target: string,
  role: StoreRole,
  note: (line: string) => void,
): Promise<StoreSnapshot> {
  const tool = findPgTool('pg_dump');
  const { url, env } = await libpqTarget(connectionString);
  // The snapshot is exported on the host pg_dump dumps.
  const client = await connect(url);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s'))
      .rows[0]!.s;
    const described = await describe(client, role);
    note(`${role} store: pg_dump of ${redact(url)}`);
    const started = Date.now();
    await runTool(
      tool,
      ['--format=custom', `--snapshot=${snapshot}`, '--file', target, '--dbname', url],
      env,
      () => {
        const size = fs.existsSync(target) ? fs.statSync(target).size : 0;
        note(`${role} store: ${mib(size)} dumped (${Math.round((Date.now() - started) / 1000)} s)`);
      },
    );
    await client.query('COMMIT');
    return described;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Refuses a database that holds any table (of Perch or anything else). */
export async function assertEmptyPostgres(connectionString: string): Promise<void> {
  const client = await connect(connectionString);
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT schemaname || '.' || tablename AS name FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 LIMIT 3`,
    );
    if (rows.length > 0) {
      throw new BackupTargetNotEmptyError(
        redact(connectionString),
        `it has tables: ${rows.map((r) => r.name).join(', ')}…; restore into an empty database (createdb)`,
      );
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Restores a pg_dump into an empty database with pg_restore in one transaction (all of it or
 * nothing), owned by the connecting user (--no-owner --no-acl: the dump's roles need not exist
 * here). Returns what the restored store holds.
 */
export async function restorePostgres(
  connectionString: string,
  source: string,
  role: StoreRole,
  note: (line: string) => void,
): Promise<StoreSnapshot> {
  const tool = findPgTool('pg_restore');
  const { url, env } = await libpqTarget(connectionString);
  note(`${role} store: pg_restore into ${redact(url)}`);
  const started = Date.now();
  await runTool(
    tool,
    ['--single-transaction', '--exit-on-error', '--no-owner', '--no-acl', '--dbname', url, source],
    env,
    () => note(`${role} store: restoring (${Math.round((Date.now() - started) / 1000)} s)`),
  );
  const client = await connect(url);
  try {
    return await describe(client, role);
  } finally {
    await client.end().catch(() => undefined);
  }
}
