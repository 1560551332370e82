import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { localCommand } from './common.js';
import { CliError } from './errors.js';
import { emit } from './output.js';

/** Migrations recorded in an existing store file, or undefined when it has none yet. */
async function appliedMigrations(file: string): Promise<string[] | undefined> {
  if (!fs.existsSync(file)) return undefined;
  const { default: Database } = await import('better-sqlite3');
  let db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const table = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'perch_migrations'")
      .get();
    if (!table) return [];
    return (
      db.prepare('SELECT id FROM perch_migrations ORDER BY id').all() as { id: string }[]
    ).map((r) => r.id);
  } catch (err) {
    throw new CliError(
      'store_unreadable',
      `${file} is not a readable Perch store: ${(err as Error).message}`,
    );
  } finally {
    db?.close();
  }
}

/** `perch db install` (Install-CsDatabase): creates or migrates a store, offline. */
export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('the store itself, offline (no server needed)');

  localCommand(db, 'install', 'create a SQLite store, or migrate one to this version')
    .option(
      '--data-dir <dir>',
      'data directory holding perch.db (default: $PERCH_DATA_DIR or ./data)',
    )
    .addHelpText(
      'after',
      `
Idempotent: on an up-to-date store it changes nothing. It refuses a store that a newer Perch
has migrated (no downgrades). Stop the server first when upgrading in place.

Examples:
  perch db install --data-dir /var/lib/perch
  PERCH_DATA_DIR=./data perch db install --json`,
    )
    .action(async (opts: { dataDir?: string; json?: boolean }) => {
      const dataDir = path.resolve(opts.dataDir ?? (process.env.PERCH_DATA_DIR || './data'));
      const file = path.join(dataDir, 'perch.db');
      const { migrations } = await import('../store/migrations/index.js');
      const known = Object.keys(migrations).sort();
      const before = await appliedMigrations(file);
      const unknown = (before ?? []).filter((id) => !known.includes(id));
      if (unknown.length > 0) {
        throw new CliError(
          'store_too_new',
          `${file} was migrated by a newer Perch (migrations ${unknown.join(', ')}); upgrade Perch instead`,
          { unknown },
        );
      }
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const { SqliteStore } = await import('../store/sqlite/sqlite-store.js');
      const store = SqliteStore.open({ file });
      let applied: string[];
      try {
        applied = await store.migrate();
      } finally {
        await store.close();
      }
      const state =
        before === undefined ? 'created' : applied.length > 0 ? 'migrated' : 'up-to-date';
      emit(opts.json, { dataDir, file, state, applied, schema: known.at(-1) ?? null }, () =>
        state === 'created'
          ? `Created the store ${file} (schema ${known.at(-1)}).`
          : state === 'migrated'
            ? `Migrated ${file}: applied ${applied.join(', ')}.`
            : `${file} is up to date (schema ${known.at(-1)}); nothing to do.`,
      );
    });
}
