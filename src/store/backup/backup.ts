/**
 * `perch backup create|restore`: a consistent copy of a server's chat store, compliance store,
 * uploaded files and compliance adapter output, taken while the server runs, and its restore into
 * empty stores. docs/operations/backup.md describes the folder and the guarantees.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { StoragePaths } from '../../config/paths.js';
import {
  BackupChecksumError,
  BackupFailedError,
  BackupIncompatibleError,
  BackupTargetNotEmptyError,
} from '../../errors.js';
import { describeLocation } from '../install.js';
import type { StoreLocation } from '../store-url.js';
import { copyFile, ensureParent, folderPart, hashFile, listFiles, verifyFile } from './copy.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  readManifest,
  writeManifest,
  type FolderPart,
  type Manifest,
  type StorePart,
} from './manifest.js';
import { assertEmptyPostgres, dumpPostgres, restorePostgres } from './postgres.js';
import { backupSqlite, describeSqlite, type StoreRole, type StoreSnapshot } from './snapshot.js';

const FILES = 'files';
const COMPLIANCE_OUTPUT = 'compliance-output';

/** An adapter's or export's file being written (temp name, then renamed): not yet output. */
function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

export interface CreateOptions {
  /** The backup folder: created, or an existing empty one. */
  out: string;
  paths: StoragePaths;
  /** The Perch version recorded in the manifest. */
  version: string;
  note: (line: string) => void;
  now?: () => Date;
}

async function storePart(
  location: StoreLocation,
  role: StoreRole,
  out: string,
  note: (line: string) => void,
): Promise<{ part: StorePart; snapshot: StoreSnapshot }> {
  const kind = location.dialect === 'sqlite' ? 'sqlite' : 'pg_dump';
  const file = `${role}.${kind === 'sqlite' ? 'db' : 'dump'}` as StorePart['file'];
  const target = path.join(out, file);
  const snapshot =
    location.dialect === 'sqlite'
      ? await backupSqlite(location.file, target, role, note)
      : await dumpPostgres(location.connectionString, target, role, note);
  fs.chmodSync(target, 0o600);
  const { bytes, sha256 } = await hashFile(target);
  note(`${role} store: ${bytes} bytes, ${describeCounts(snapshot.counts)}`);
  return {
    part: { kind, file, bytes, sha256, schema: snapshot.schema, counts: snapshot.counts },
    snapshot,
  };
}

export function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
}

/** Prints a progress line at most once a second, and always the last. */
function ticker(note: (line: string) => void): (line: string, last?: boolean) => void {
  let at = 0;
  return (line, last = false) => {
    const now = Date.now();
    if (!last && now - at < 1000) return;
    at = now;
    note(line);
  };
}

/** Whether a folder is missing or empty. */
function isEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/**
 * Writes a backup of everything `paths` names into `opts.out`, in this order: the chat store
 * (one snapshot), the compliance store, the bodies of the files that snapshot lists, the
 * compliance output; the manifest last. On failure everything written is removed.
 */
export async function createBackup(opts: CreateOptions): Promise<Manifest> {
  const out = path.resolve(opts.out);
  if (!isEmptyDir(out)) {
    throw new BackupTargetNotEmptyError(out, 'a backup goes into a new or empty folder');
  }
  const { chat, compliance, fileStoreDir, complianceOutputDir } = opts.paths;
  if (chat.dialect === 'sqlite' && !fs.existsSync(chat.file)) {
    throw new BackupFailedError(`there is no chat store at ${chat.file}`);
  }
  const createdDir = !fs.existsSync(out);
  fs.mkdirSync(out, { recursive: true, mode: 0o700 });
  fs.chmodSync(out, 0o700);
  const now = opts.now ?? (() => new Date());
  const createdAt = now().toISOString();
  try {
    // Chat before compliance: an event the compliance worker moves in between is then in both
    // copies, and moving it again after a restore is a no-op (keyed by its outbox id); the other
    // order could lose it.
    const { part: chatPart, snapshot } = await storePart(chat, 'chat', out, opts.note);
    let compliancePart: StorePart | null = null;
    if (compliance.dialect === 'postgres' || fs.existsSync(compliance.file)) {
      compliancePart = (await storePart(compliance, 'compliance', out, opts.note)).part;
    } else {
      opts.note(`compliance store: none at ${compliance.file}; left out`);
    }
    const files = await copyBodies(snapshot.files, fileStoreDir, path.join(out, FILES), opts.note);
    const complianceOutput = fs.existsSync(complianceOutputDir)
      ? await copyFolder(
          complianceOutputDir,
          path.join(out, COMPLIANCE_OUTPUT),
          'compliance output',
          opts.note,
        )
      : null;
    if (!complianceOutput) opts.note(`compliance output: none at ${complianceOutputDir}`);
    return await writeManifest(out, {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      perch: opts.version,
      edition: chat.dialect === 'sqlite' ? 'standard' : 'enterprise',
      createdAt,
      finishedAt: now().toISOString(),
      chat: chatPart,
      compliance: compliancePart,
      files,
      complianceOutput,
    });
  } catch (err) {
    if (createdDir) await fs.promises.rm(out, { recursive: true, force: true });
    else
      for (const name of await fs.promises.readdir(out).catch(() => [])) {
        await fs.promises.rm(path.join(out, name), { recursive: true, force: true });
      }
    throw err;
  }
}

/**
 * Copies the bodies of the files a chat snapshot lists, checking each against the size and
 * SHA-256 its row records. A body uploaded after the snapshot is not in it, and is not copied.
 */
async function copyBodies(
  rows: StoreSnapshot['files'],
  from: string,
  to: string,
  note: (line: string) => void,
): Promise<FolderPart> {
  await fs.promises.mkdir(to, { mode: 0o700 });
  const tick = ticker(note);
  const entries: FolderPart['entries'] = [];
  let bytes = 0;
  for (const row of rows) {
    if (!/^[0-9a-f]{32}$/.test(row.key)) {
      throw new BackupFailedError(`file ${row.id} has a bad storage key ${row.key}`);
    }
    let got: { bytes: number; sha256: string };
    try {
      got = await copyFile(path.join(from, row.key), path.join(to, row.key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new BackupFailedError(
          `the body of file ${row.id} is not in ${from}: its room was deleted or purged during the backup, or the file store is elsewhere (--files-dir); run the backup again`,
        );
      }
      throw err;
    }
    if (got.bytes !== row.size || got.sha256 !== row.sha256) {
      throw new BackupFailedError(
        `the body of file ${row.id} (${path.join(from, row.key)}) does not match its size and SHA-256 in the store`,
      );
    }
    entries.push({ path: row.key, ...got });
    bytes += got.bytes;
    tick(`files: ${entries.length} of ${rows.length} copied (${bytes} bytes)`);
  }
  tick(`files: ${entries.length} of ${rows.length} copied (${bytes} bytes)`, true);
  return folderPart(entries);
}

/** Copies every finished file under a folder (writers' temp files left out), owner-only. */
async function copyFolder(
  from: string,
  to: string,
  label: string,
  note: (line: string) => void,
): Promise<FolderPart> {
  await fs.promises.mkdir(to, { mode: 0o700 });
  const names = await listFiles(from, isTempName);
  const tick = ticker(note);
  const entries: FolderPart['entries'] = [];
  let bytes = 0;
  for (const rel of names) {
    await ensureParent(to, rel);
    let got: { bytes: number; sha256: string };
    try {
      got = await copyFile(path.join(from, rel), path.join(to, rel));
    } catch (err) {
      // Removed since it was listed (a fenced-off adapter run's files): not output any more.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    entries.push({ path: rel, ...got });
    bytes += got.bytes;
    tick(`${label}: ${entries.length} of ${names.length} files copied (${bytes} bytes)`);
  }
  tick(`${label}: ${entries.length} files copied (${bytes} bytes)`, true);
  return folderPart(entries);
}

/** Where a backup is restored to; every store and folder must be empty. */
export interface RestoreOptions {
  from: string;
  paths: StoragePaths;
  /** The migrations this Perch knows, per store: a backup of a newer schema is refused. */
  known: Record<StoreRole, string[]>;
  note: (line: string) => void;
}

export interface RestoreResult {
  manifest: Manifest;
  /** What the restored stores hold, read back from them. */
  chat: StoreSnapshot['counts'];
  compliance: StoreSnapshot['counts'] | null;
  files: number;
  complianceOutput: number;
}

/** Checks every part of a backup against its manifest: sizes and SHA-256, nothing written. */
export async function verifyBackup(dir: string, note: (line: string) => void): Promise<Manifest> {
  const from = path.resolve(dir);
  const manifest = await readManifest(from);
  for (const part of [manifest.chat, manifest.compliance]) {
    if (part) await verifyFile(part.file, path.join(from, part.file), part);
  }
  note('stores: checksums match');
  for (const [folder, part] of [
    [FILES, manifest.files],
    [COMPLIANCE_OUTPUT, manifest.complianceOutput],
  ] as const) {
    if (!part) continue;
    const tick = ticker(note);
    let n = 0;
    for (const e of part.entries) {
      await verifyFile(`${folder}/${e.path}`, path.join(from, folder, e.path), e);
      tick(`${folder}: ${++n} of ${part.entries.length} checked`);
    }
    const extra = (await listFiles(path.join(from, folder))).filter(
      (p) => !part.entries.some((e) => e.path === p),
    );
    if (extra.length > 0) {
      throw new BackupChecksumError(`${folder}/${extra[0]}`, 'a file the manifest does not list');
    }
    tick(`${folder}: ${part.entries.length} files, checksums match`, true);
  }
  return manifest;
}

function checkSchema(part: StorePart, role: StoreRole, known: string[]): void {
  const newer = part.schema.filter((id) => !known.includes(id));
  if (newer.length > 0) {
    throw new BackupIncompatibleError(
      `the ${role} store in this backup was migrated by a newer Perch (migrations ${newer.join(', ')}); restore it with that version`,
    );
  }
}

function checkTarget(part: StorePart, role: StoreRole, location: StoreLocation): void {
  const want = part.kind === 'sqlite' ? 'sqlite' : 'postgres';
  if (location.dialect === want) return;
  throw new BackupIncompatibleError(
    want === 'sqlite'
      ? `this backup holds a SQLite ${role} store: restore it into a data dir (--data-dir${role === 'compliance' ? ' or --compliance-store sqlite:///…' : ''}); perch data export/import moves data between SQLite and PostgreSQL`
      : `this backup holds a PostgreSQL ${role} store: give ${role === 'chat' ? '--store' : '--compliance-store'} postgres://… naming an empty database`,
  );
}

function checkCounts(
  role: StoreRole,
  restored: StoreSnapshot,
  part: StorePart,
): StoreSnapshot['counts'] {
  for (const [k, n] of Object.entries(part.counts)) {
    if (restored.counts[k] !== n) {
      throw new BackupChecksumError(
        `${role} store`,
        `${restored.counts[k]} ${k} restored, the manifest says ${n}`,
      );
    }
  }
  return restored.counts;
}

/**
 * Restores a backup: verifies the manifest and every part first, checks that every target store
 * and folder is empty, and only then writes. A SQLite store is copied (temp name, rename); a
 * PostgreSQL one goes through pg_restore in one transaction. The restored stores' counts are
 * read back and compared with the manifest. On failure what was written is removed.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const from = path.resolve(opts.from);
  const manifest = await verifyBackup(from, opts.note);
  const { chat, compliance, fileStoreDir, complianceOutputDir } = opts.paths;
  checkSchema(manifest.chat, 'chat', opts.known.chat);
  checkTarget(manifest.chat, 'chat', chat);
  if (manifest.compliance) {
    checkSchema(manifest.compliance, 'compliance', opts.known.compliance);
    checkTarget(manifest.compliance, 'compliance', compliance);
  }
  // Every target empty before anything is written.
  const targets: [string, StoreLocation | undefined][] = [
    ['chat', chat],
    ['compliance', manifest.compliance ? compliance : undefined],
  ];
  for (const [, location] of targets) {
    if (!location) continue;
    if (location.dialect === 'postgres') await assertEmptyPostgres(location.connectionString);
    else if (fs.existsSync(location.file)) {
      throw new BackupTargetNotEmptyError(location.file, 'the store already exists');
    }
  }
  for (const dir of [fileStoreDir, manifest.complianceOutput ? complianceOutputDir : undefined]) {
    if (dir && !isEmptyDir(dir)) throw new BackupTargetNotEmptyError(dir, 'it holds files');
  }
  const created: string[] = [];
  const restoredDbs: { location: StoreLocation }[] = [];
  try {
    const restoreStore = async (part: StorePart, role: StoreRole, location: StoreLocation) => {
      const source = path.join(from, part.file);
      let restored: StoreSnapshot;
      if (location.dialect === 'sqlite') {
        await fs.promises.mkdir(path.dirname(location.file), { recursive: true, mode: 0o700 });
        const tmp = `${location.file}.restore-tmp`;
        created.push(tmp, location.file);
        opts.note(`${role} store: copying to ${location.file}`);
        const got = await copyFile(source, tmp);
        if (got.sha256 !== part.sha256) {
          throw new BackupChecksumError(part.file, 'it changed while it was being restored');
        }
        await fs.promises.rename(tmp, location.file);
        restored = describeSqlite(location.file, role, false);
      } else {
        // pg_restore runs in one transaction: a failed one leaves the database empty.
        restored = await restorePostgres(location.connectionString, source, role, opts.note);
        restoredDbs.push({ location });
      }
      const counts = checkCounts(role, restored, part);
      opts.note(
        `${role} store: restored to ${describeLocation(location)}: ${describeCounts(counts)}`,
      );
      return counts;
    };
    const chatCounts = await restoreStore(manifest.chat, 'chat', chat);
    const complianceCounts = manifest.compliance
      ? await restoreStore(manifest.compliance, 'compliance', compliance)
      : null;
    const copyBack = async (folder: string, part: FolderPart, to: string) => {
      if (!fs.existsSync(to)) created.push(to);
      await fs.promises.mkdir(to, { recursive: true, mode: 0o700 });
      fs.chmodSync(to, 0o700);
      const tick = ticker(opts.note);
      let n = 0;
      for (const e of part.entries) {
        await ensureParent(to, e.path);
        const got = await copyFile(path.join(from, folder, e.path), path.join(to, e.path));
        created.push(path.join(to, e.path));
        if (got.sha256 !== e.sha256) {
          throw new BackupChecksumError(
            `${folder}/${e.path}`,
            'it changed while it was being restored',
          );
        }
        tick(`${folder}: ${++n} of ${part.entries.length} restored`);
      }
      tick(`${folder}: ${part.entries.length} files restored to ${to}`, true);
    };
    await copyBack(FILES, manifest.files, fileStoreDir);
    if (manifest.complianceOutput) {
      await copyBack(COMPLIANCE_OUTPUT, manifest.complianceOutput, complianceOutputDir);
    }
    return {
      manifest,
      chat: chatCounts,
      compliance: complianceCounts,
      files: manifest.files.count,
      complianceOutput: manifest.complianceOutput?.count ?? 0,
    };
  } catch (err) {
    for (const p of created.reverse()) await fs.promises.rm(p, { recursive: true, force: true });
    for (const db of restoredDbs) {
      opts.note(
        `the restore failed after ${describeLocation(db.location)} was written: drop and create that database before trying again`,
      );
    }
    throw err;
  }
}
