import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { StoreLocation } from '../store/store-url.js';
import { localCommand, note, oneOf, parseDate } from './common.js';
import { CliError, UsageError } from './errors.js';
import { emit } from './output.js';

interface StoreOptions {
  dataDir?: string;
  storeUrl?: string;
  filesDir?: string;
  json?: boolean;
}

/** `--store-url`, else `--data-dir`, else PERCH_STORE_URL, else PERCH_DATA_DIR or ./data. */
async function locate(opts: StoreOptions): Promise<{ location: StoreLocation; filesDir: string }> {
  const { parseStoreUrl, redact } = await import('../store/store-url.js');
  if (opts.storeUrl !== undefined && opts.dataDir !== undefined) {
    throw new UsageError('give either --store-url or --data-dir');
  }
  const dataDir = path.resolve(opts.dataDir ?? (process.env.PERCH_DATA_DIR || './data'));
  const url =
    opts.storeUrl ?? (opts.dataDir === undefined ? process.env.PERCH_STORE_URL : undefined);
  let location: StoreLocation;
  try {
    location = url
      ? parseStoreUrl(url)
      : { dialect: 'sqlite', file: path.join(dataDir, 'perch.db') };
  } catch (err) {
    throw new UsageError(`--store-url: ${redact((err as Error).message)}`);
  }
  // File bodies sit next to a SQLite store (<data dir>/files); a PostgreSQL store's are on disk too.
  const base = location.dialect === 'sqlite' && url ? path.dirname(location.file) : dataDir;
  const files = opts.filesDir ?? (process.env.PERCH_FILE_STORE_DIR || path.join(base, 'files'));
  return { location, filesDir: path.resolve(files) };
}

/** The migrations recorded in a store, without changing it (an export must not migrate). */
async function appliedMigrations(location: StoreLocation): Promise<string[]> {
  if (location.dialect === 'sqlite') {
    if (!fs.existsSync(location.file)) {
      throw new CliError('store_not_found', `there is no store at ${location.file}`);
    }
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(location.file, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT id FROM perch_migrations ORDER BY id').all() as {
        id: string;
      }[];
      return rows.map((r) => r.id);
    } catch {
      return [];
    } finally {
      db.close();
    }
  }
  const { pgClient } = await import('../store/postgres/connect.js');
  const client = pgClient(location.connectionString);
  try {
    await client.connect();
    const { rows } = await client.query<{ id: string }>(
      'SELECT id FROM perch_migrations ORDER BY id',
    );
    return rows.map((r) => r.id);
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return [];
    throw new CliError('store_unreachable', `cannot read the store: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A date as epoch ms; a date-only `--to` means the end of that day (UTC). */
function toMs(v: string | number, endOfDay: boolean): number {
  if (typeof v === 'number') return v;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v))
    return Date.parse(`${v}T00:00:00Z`) + (endOfDay ? 86_399_999 : 0);
  return Date.parse(v);
}

function progress(verb: string): (counts: Record<string, number>) => void {
  let last = 0;
  return (counts) => {
    const now = Date.now();
    if (now - last < 1000) return;
    last = now;
    note(`perch: ${verb} ${describe(counts)}`);
  };
}

function describe(counts: Record<string, number>): string {
  return (
    Object.entries(counts)
      .filter(([k]) => k !== 'file_bytes')
      .map(([k, v]) => `${v} ${k.replace(/_/g, ' ')}`)
      .join(', ') + (counts.file_bytes ? `, ${counts.file_bytes} bytes of files` : '')
  );
}

async function schema(): Promise<string[]> {
  const { migrations } = await import('../store/migrations/index.js');
  return Object.keys(migrations).sort();
}

function archiveFailure(err: unknown): never {
  if (err instanceof Error && err.name === 'ArchiveError') {
    throw new CliError((err as Error & { code: string }).code, err.message);
  }
  throw err;
}

/** `perch data export|import` (Export-/Import-CsPersistentChatData), offline on a store. */
export function registerDataCommands(program: Command): void {
  const data = program
    .command('data')
    .description('export and import the chat store as an archive, offline (no server needed)');

  const storeOptions = (cmd: Command) =>
    cmd
      .option(
        '--data-dir <dir>',
        'data directory holding perch.db and files/ (default: $PERCH_DATA_DIR or ./data)',
      )
      .option(
        '--store-url <url>',
        'the store instead: postgres://user@host:5432/db or sqlite:///path/perch.db (default: $PERCH_STORE_URL)',
      )
      .option(
        '--files-dir <dir>',
        'where file bodies are (default: PERCH_FILE_STORE_DIR, else <data dir>/files)',
      );

  storeOptions(localCommand(data, 'export', 'write the store to an archive file'))
    .requiredOption('--file <file>', 'archive to write (.jsonl.gz); it must not exist')
    .option(
      '--level <level>',
      'config (no messages or files) or full',
      oneOf('config', 'full'),
      'full',
    )
    .option('--from <date>', 'messages and files from this date or date-time', parseDate)
    .option(
      '--to <date>',
      'messages and files up to this date (the whole day) or date-time',
      parseDate,
    )
    .option('--no-password-hashes', 'leave out password hashes (users then need reset-password)')
    .addHelpText(
      'after',
      `
The archive (docs/data-archive.md) is gzip-compressed JSON lines: configuration and chat
settings, compliance configuration, policies and grants, users and groups with their
memberships and password hashes (argon2id; never session tokens), categories, add-ins, rooms
with their roles and sequence counters and, at level full, messages and files with their bytes.
It is written owner-only (0600): treat it like the database itself. Stop the server first for
an exact snapshot. Progress goes to stderr.

Examples:
  perch data export --data-dir /var/lib/perch --file perch-2024-05.jsonl.gz
  perch data export --store-url postgres://perch@db1/perch --files-dir /srv/perch/files --file a.jsonl.gz
  perch data export --level config --file config.jsonl.gz
  perch data export --from 2024-01-01 --to 2024-03-31 --file q1.jsonl.gz --json`,
    )
    .action(
      async (
        opts: StoreOptions & {
          file: string;
          level: 'config' | 'full';
          from?: string | number;
          to?: string | number;
          passwordHashes: boolean;
        },
      ) => {
        if (opts.level === 'config' && (opts.from !== undefined || opts.to !== undefined)) {
          throw new UsageError(
            '--from and --to select messages and files: use them with --level full',
          );
        }
        const from = opts.from === undefined ? undefined : toMs(opts.from, false);
        const to = opts.to === undefined ? undefined : toMs(opts.to, true);
        if (from !== undefined && to !== undefined && from > to) {
          throw new UsageError('--from is after --to');
        }
        const file = path.resolve(opts.file);
        if (fs.existsSync(file)) throw new CliError('file_exists', `${file} already exists`);
        const { location, filesDir } = await locate(opts);
        const known = await schema();
        const applied = await appliedMigrations(location);
        if (applied.join(',') !== known.join(',')) {
          throw new CliError(
            'store_not_current',
            `the store has migrations ${applied.join(',') || '(none)'}, this Perch ${known.join(',')}; run perch db install (or upgrade Perch) first`,
          );
        }
        const [{ openStore }, { exportArchive }] = await Promise.all([
          import('../store/open-store.js'),
          import('../store/archive.js'),
        ]);
        const store = openStore(location, { poolSize: 2 });
        let counts;
        try {
          counts = await exportArchive(store, file, {
            level: opts.level,
            from,
            to,
            passwordHashes: opts.passwordHashes,
            schema: known,
            filesDir,
            progress: progress('exported'),
          }).catch(archiveFailure);
        } finally {
          await store.close();
        }
        const size = fs.statSync(file).size;
        emit(
          opts.json,
          { file, level: opts.level, from: from ?? null, to: to ?? null, bytes: size, counts },
          () => `Exported to ${file} (${size} bytes, level ${opts.level}): ${describe(counts)}.`,
        );
      },
    );

  storeOptions(localCommand(data, 'import', 'load an archive into an empty store'))
    .requiredOption('--file <file>', 'archive written by perch data export')
    .addHelpText(
      'after',
      `
Loads the archive into an empty store, creating it when there is none (the SQLite file of
--data-dir, or the PostgreSQL database of --store-url after perch db install or on an empty
database), with the ids and room sequences it carries, in one transaction: all of it or
nothing. A store that already holds data is refused (store_not_empty). The archive must come
from the same Perch version (same schema). This is the way from Standard Edition (SQLite) to an
Enterprise pool (PostgreSQL): export the data dir, import with --store-url.

Examples:
  perch data import --data-dir /var/lib/perch-new --file perch-2024-05.jsonl.gz
  perch data import --store-url postgres://perch@db1/perch --files-dir /srv/perch/files --file a.jsonl.gz`,
    )
    .action(async (opts: StoreOptions & { file: string }) => {
      const file = path.resolve(opts.file);
      if (!fs.existsSync(file)) throw new CliError('file_not_found', `there is no file ${file}`);
      const { location, filesDir } = await locate(opts);
      const known = await schema();
      const applied =
        location.dialect === 'sqlite' && !fs.existsSync(location.file)
          ? []
          : await appliedMigrations(location);
      if (applied.some((id) => !known.includes(id))) {
        throw new CliError('store_too_new', 'the target store was migrated by a newer Perch');
      }
      if (location.dialect === 'sqlite') {
        fs.mkdirSync(path.dirname(location.file), { recursive: true, mode: 0o700 });
      }
      fs.mkdirSync(filesDir, { recursive: true, mode: 0o700 });
      const [{ openStore }, { importArchive }] = await Promise.all([
        import('../store/open-store.js'),
        import('../store/archive.js'),
      ]);
      const store = openStore(location, { poolSize: 2 });
      let result;
      try {
        await store.migrate();
        result = await importArchive(store, file, {
          schema: known,
          filesDir,
          progress: progress('imported'),
        }).catch(archiveFailure);
      } finally {
        await store.close();
      }
      const where = location.dialect === 'sqlite' ? location.file : 'the PostgreSQL store';
      emit(
        opts.json,
        {
          file,
          store: location.dialect,
          level: result.header.level,
          exportedAt: result.header.exportedAt,
          counts: result.counts,
        },
        () => `Imported ${file} into ${where}: ${describe(result.counts)}.`,
      );
    });
}
