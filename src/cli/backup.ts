import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { localCommand, note } from './common.js';
import { emit } from './output.js';

interface LocationOptions {
  dataDir?: string;
  store?: string;
  complianceStore?: string;
  filesDir?: string;
  complianceOutputDir?: string;
  json?: boolean;
}

/**
 * The server's configuration as `perch serve` reads it (PERCH_* variables), with the flags
 * winning; `--data-dir` without `--store` means the SQLite stores of that folder.
 */
async function configFor(opts: LocationOptions): Promise<Config> {
  const { readEnv, toConfig } = await import('../config/config.js');
  const raw: Partial<Record<keyof Config, unknown>> = { ...readEnv(process.env) };
  if (opts.dataDir !== undefined) {
    raw.dataDir = opts.dataDir;
    if (opts.store === undefined) delete raw.storeUrl;
    if (opts.complianceStore === undefined) delete raw.complianceStoreUrl;
  }
  if (opts.store !== undefined) raw.storeUrl = opts.store;
  if (opts.complianceStore !== undefined) raw.complianceStoreUrl = opts.complianceStore;
  if (opts.filesDir !== undefined) raw.fileStoreDir = opts.filesDir;
  if (opts.complianceOutputDir !== undefined) raw.complianceOutputDir = opts.complianceOutputDir;
  return toConfig(raw);
}

function locationOptions(cmd: Command): Command {
  return cmd
    .option(
      '--data-dir <dir>',
      'data directory (perch.db, compliance.db, files/, compliance/) (default: $PERCH_DATA_DIR or ./data)',
    )
    .option(
      '--store <url>',
      'chat store instead of <data dir>/perch.db: postgres://user@host:5432/db (several hosts: the primary is used) or sqlite:///path/perch.db (default: $PERCH_STORE_URL)',
    )
    .option(
      '--compliance-store <url>',
      'compliance store instead of <data dir>/compliance.db (default: $PERCH_COMPLIANCE_STORE_URL)',
    )
    .option(
      '--files-dir <dir>',
      'uploaded file bodies (default: $PERCH_FILE_STORE_DIR, else <data dir>/files)',
    )
    .option(
      '--compliance-output-dir <dir>',
      'compliance adapter output (default: $PERCH_COMPLIANCE_OUTPUT_DIR, else as perch serve)',
    );
}

/** The chat store as shown to people (never a password). */
async function where(config: Config): Promise<string> {
  const { redact } = await import('../store/store-url.js');
  return config.storeUrl === undefined
    ? path.join(config.dataDir, 'perch.db')
    : redact(config.storeUrl);
}

/** `perch backup create|restore|verify`: backups of both editions, taken while the server runs. */
export function registerBackupCommands(program: Command): void {
  const backup = program
    .command('backup')
    .description(
      'back up the chat and compliance stores, uploaded files and compliance output while the server runs, and restore them into empty stores',
    );

  locationOptions(localCommand(backup, 'create', 'write a backup into a new or empty folder'))
    .requiredOption('--out <dir>', 'backup folder to write (new, or empty)')
    .addHelpText(
      'after',
      `
Run it next to a running server (no stop needed), with the server's environment or the same
flags. A SQLite store (Standard Edition) is copied through SQLite's online backup API in one
read transaction: a consistent snapshot while posts go on. A PostgreSQL store (Enterprise pool)
is dumped with pg_dump -Fc from the primary. Then come the compliance store, the bodies of the
uploaded files the chat snapshot lists, and the compliance adapter output; manifest.json
(Perch version, schema, counts, size and SHA-256 of every file) is written last. Everything is
owner-only. Progress goes to stderr. See docs/operations/backup.md.

Examples:
  perch backup create --data-dir /var/lib/perch --out /backups/perch-$(date +%F)
  PERCH_STORE_URL=postgres://perch@db1:5432,db2:5432/pool1 \\
  PERCH_COMPLIANCE_STORE_URL=postgres://perch@db1:5432,db2:5432/pool1_compliance \\
  PERCH_FILE_STORE_DIR=/srv/perch/files perch backup create --out /backups/pool1 --json`,
    )
    .action(async (opts: LocationOptions & { out: string }) => {
      const config = await configFor(opts);
      const [{ storagePaths }, { createBackup, describeCounts }, { version }] = await Promise.all([
        import('../config/paths.js'),
        import('../store/backup/backup.js'),
        import('../version.js'),
      ]);
      const out = path.resolve(opts.out);
      note(`perch: backup of ${await where(config)} into ${out}`);
      const manifest = await createBackup({
        out,
        paths: storagePaths(config),
        version,
        note: (line) => note(`perch: ${line}`),
      });
      emit(
        opts.json,
        {
          dir: out,
          ...manifest,
          // The per-file lists stay in manifest.json.
          files: { count: manifest.files.count, bytes: manifest.files.bytes },
          complianceOutput: manifest.complianceOutput && {
            count: manifest.complianceOutput.count,
            bytes: manifest.complianceOutput.bytes,
          },
        },
        () =>
          `Backed up to ${out}: ${describeCounts(manifest.chat.counts)}; ${manifest.files.count} file bodies (${manifest.files.bytes} bytes)` +
          (manifest.compliance
            ? `; compliance ${describeCounts(manifest.compliance.counts)}`
            : '') +
          (manifest.complianceOutput
            ? `; ${manifest.complianceOutput.count} compliance output files`
            : '') +
          '.',
      );
    });

  locationOptions(
    localCommand(backup, 'restore', 'restore a backup into an empty data dir or empty databases'),
  )
    .requiredOption('--from <dir>', 'backup folder written by perch backup create')
    .addHelpText(
      'after',
      `
Checks manifest.json and the size and SHA-256 of every part before writing anything, then
refuses any target that is not empty (backup_target_not_empty). A Standard Edition backup goes
into a data dir (--data-dir, default as perch serve) without perch.db or compliance.db and
whose files/ and compliance/ are missing or empty; an
Enterprise backup into empty PostgreSQL databases (--store, and --compliance-store when the
backup holds a compliance store) created with createdb, through pg_restore in one transaction,
with the files into --files-dir. The restored stores' counts are read back and compared with the
manifest. Then start the server on them (a backup from an older Perch is migrated on start).

Examples:
  perch backup restore --from /backups/perch-2024-05-01 --data-dir /var/lib/perch-restored
  perch backup restore --from /backups/pool1 --store postgres://perch@db1/pool1_new \\
    --compliance-store postgres://perch@db1/pool1_compliance_new --files-dir /srv/perch/files-new`,
    )
    .action(async (opts: LocationOptions & { from: string }) => {
      const config = await configFor(opts);
      const [{ storagePaths }, { restoreBackup, describeCounts }, chat, compliance] =
        await Promise.all([
          import('../config/paths.js'),
          import('../store/backup/backup.js'),
          import('../store/migrations/index.js'),
          import('../compliance/migrations/index.js'),
        ]);
      const from = path.resolve(opts.from);
      const result = await restoreBackup({
        from,
        paths: storagePaths(config),
        known: {
          chat: Object.keys(chat.migrations).sort(),
          compliance: Object.keys(compliance.complianceMigrations).sort(),
        },
        note: (line) => note(`perch: ${line}`),
      });
      emit(
        opts.json,
        {
          from,
          perch: result.manifest.perch,
          createdAt: result.manifest.createdAt,
          chat: result.chat,
          compliance: result.compliance,
          files: result.files,
          complianceOutput: result.complianceOutput,
        },
        () =>
          `Restored ${from} (taken ${result.manifest.createdAt} by Perch ${result.manifest.perch}): ${describeCounts(result.chat)}; ${result.files} file bodies` +
          (result.compliance ? `; compliance ${describeCounts(result.compliance)}` : '') +
          '.',
      );
    });

  localCommand(backup, 'verify', 'check a backup against its manifest, changing nothing')
    .requiredOption('--from <dir>', 'backup folder written by perch backup create')
    .addHelpText(
      'after',
      `
Reads manifest.json (refused if it was edited) and checks the size and SHA-256 of every part
and file, as restore does before writing; run it where a backup is copied to.

Example:
  perch backup verify --from /backups/perch-2024-05-01`,
    )
    .action(async (opts: { from: string; json?: boolean }) => {
      const { verifyBackup, describeCounts } = await import('../store/backup/backup.js');
      const from = path.resolve(opts.from);
      const m = await verifyBackup(from, (line) => note(`perch: ${line}`));
      emit(
        opts.json,
        {
          from,
          ok: true,
          perch: m.perch,
          createdAt: m.createdAt,
          chat: m.chat.counts,
          files: m.files.count,
        },
        () =>
          `${from}: every part matches its manifest (taken ${m.createdAt} by Perch ${m.perch}: ${describeCounts(m.chat.counts)}).`,
      );
    });
}
