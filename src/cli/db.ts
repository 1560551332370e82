import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { InstallResult } from '../store/install.js';
import { parseStoreUrl, type StoreLocation } from '../store/store-url.js';
import { localCommand } from './common.js';
import { UsageError } from './errors.js';
import { emit, stdio } from './output.js';

function storeUrl(value: string): string {
  try {
    parseStoreUrl(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

function complianceUrl(value: string): string {
  if (!/^(postgres|postgresql|sqlite):\/\//i.test(value.trim())) {
    throw new InvalidArgumentError(
      'a compliance store URL is postgres://… or sqlite:///path/compliance.db',
    );
  }
  return storeUrl(value);
}

/** One line per store, as `perch db install` and `perch topology publish` print it. */
export function installLine(r: InstallResult): string {
  const what = r.role === 'chat' ? 'store' : 'compliance store';
  return r.state === 'created'
    ? `Created the ${what} ${r.store} (schema ${r.schema}).`
    : r.state === 'migrated'
      ? `Migrated the ${what} ${r.store}: applied ${r.applied.join(', ')}.`
      : `${r.store} is up to date (schema ${r.schema}); nothing to do.`;
}

/** `perch db install` (Install-CsDatabase): creates or migrates stores, offline. */
export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('the store itself, offline (no server needed)');

  localCommand(
    db,
    'install',
    'create a chat store (SQLite or PostgreSQL) and optionally a compliance store, or migrate them to this version',
  )
    .option(
      '--data-dir <dir>',
      'data directory holding perch.db (default: $PERCH_DATA_DIR or ./data)',
    )
    .option(
      '--store <url>',
      'chat store URL instead: sqlite:///path/perch.db or postgres://user@host:5432/db (default: $PERCH_STORE_URL)',
      storeUrl,
    )
    .option(
      '--compliance-store <url>',
      'also install this compliance store: postgres://… or sqlite:///path/compliance.db',
      complianceUrl,
    )
    .addHelpText(
      'after',
      `
Idempotent: on an up-to-date store it changes nothing. It refuses a store that a newer Perch
has migrated (no downgrades). A PostgreSQL database must exist (createdb) and be PostgreSQL 15
or later; give its password through PGPASSWORD or ~/.pgpass rather than in the URL. Stop the
servers first when upgrading in place. \`perch topology publish\` runs this for every store of a
topology.

Examples:
  perch db install --data-dir /var/lib/perch
  perch db install --store postgres://perch@db.example.org/perch_pool1 \\
    --compliance-store postgres://perch@db.example.org/perch_pool1_compliance
  PERCH_DATA_DIR=./data perch db install --json`,
    )
    .action(
      async (opts: {
        dataDir?: string;
        store?: string;
        complianceStore?: string;
        json?: boolean;
      }) => {
        if (opts.store !== undefined && opts.dataDir !== undefined) {
          throw new UsageError('give either --store or --data-dir');
        }
        const envStore = process.env.PERCH_STORE_URL || undefined;
        const dataDir = path.resolve(opts.dataDir ?? (process.env.PERCH_DATA_DIR || './data'));
        const location: StoreLocation =
          opts.store !== undefined
            ? parseStoreUrl(opts.store)
            : opts.dataDir === undefined && envStore !== undefined
              ? parseStoreUrl(envStore)
              : { dialect: 'sqlite', file: path.join(dataDir, 'perch.db') };
        const { installStore } = await import('../store/install.js');
        const chat = await installStore('chat', location);
        if (!opts.json) stdio.out(installLine(chat));
        const compliance =
          opts.complianceStore === undefined
            ? undefined
            : await installStore('compliance', parseStoreUrl(opts.complianceStore));
        if (compliance && !opts.json) stdio.out(installLine(compliance));
        if (opts.json) {
          emit(
            true,
            {
              ...(location.dialect === 'sqlite'
                ? { dataDir: path.dirname(location.file), file: location.file }
                : {}),
              ...chat,
              ...(compliance ? { compliance } : {}),
            },
            () => '',
          );
        }
      },
    );
}
