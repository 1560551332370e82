import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BackupManifestError, BackupNotFoundError } from '../../errors.js';

/**
 * The manifest of a backup folder (`manifest.json`, written last: a folder without one is an
 * unfinished backup). It says which Perch and schema wrote each part, what each holds, and the
 * size and SHA-256 of every file; `digest` is the SHA-256 of the rest of the manifest, so that
 * an edited manifest is found as surely as a damaged part. docs/operations/backup.md.
 */
export const BACKUP_FORMAT = 'perch-backup';
export const BACKUP_VERSION = 1;
export const MANIFEST = 'manifest.json';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in hex');
const count = z.number().int().min(0);

/** A relative path inside a backup folder: no `..`, not absolute, no empty segment. */
const relativePath = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (p) =>
      !path.isAbsolute(p) &&
      p.split('/').every((s) => s !== '' && s !== '.' && s !== '..') &&
      !p.includes('\\') &&
      !p.includes('\0'),
    'a relative path inside the backup',
  );

const storePart = z.object({
  /** `sqlite`: a copy made by SQLite's online backup; `pg_dump`: pg_dump's custom format. */
  kind: z.enum(['sqlite', 'pg_dump']),
  file: z.enum(['chat.db', 'chat.dump', 'compliance.db', 'compliance.dump']),
  bytes: count,
  sha256,
  /** The migrations the store had. */
  schema: z.array(z.string().regex(/^\d{3}$/)),
  /** Rows in the copy: rooms, messages, files, users (chat); records (compliance). */
  counts: z.record(z.string(), count),
});

const folderPart = z.object({
  count,
  bytes: count,
  entries: z.array(z.object({ path: relativePath, bytes: count, sha256 })),
});

export const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  version: z.literal(BACKUP_VERSION),
  perch: z.string(),
  edition: z.enum(['standard', 'enterprise']),
  createdAt: z.string().datetime(),
  finishedAt: z.string().datetime(),
  chat: storePart,
  compliance: storePart.nullable(),
  /** Uploaded file bodies under `files/`, by storage key. */
  files: folderPart,
  /** The compliance adapter output and eDiscovery exports under `compliance-output/`. */
  complianceOutput: folderPart.nullable(),
  digest: sha256,
});

export type Manifest = z.infer<typeof manifestSchema>;
export type StorePart = z.infer<typeof storePart>;
export type FolderPart = z.infer<typeof folderPart>;

function digestOf(rest: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

/** Writes the manifest (temp name, fsync, rename), with its digest. */
export async function writeManifest(dir: string, m: Omit<Manifest, 'digest'>): Promise<Manifest> {
  const full: Manifest = { ...m, digest: digestOf(m) };
  const tmp = path.join(dir, `.${MANIFEST}.tmp`);
  const handle = await fs.promises.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(full, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, path.join(dir, MANIFEST));
  return full;
}

/**
 * Reads and checks a backup folder's manifest: BackupNotFoundError when the folder or the
 * manifest is missing, BackupManifestError when it is not a valid manifest or its digest does not
 * match its content (it was edited).
 */
export async function readManifest(dir: string): Promise<Manifest> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(dir);
  } catch {
    throw new BackupNotFoundError(dir, 'there is no such folder');
  }
  if (!stat.isDirectory()) throw new BackupNotFoundError(dir, 'it is not a folder');
  let text: string;
  try {
    text = await fs.promises.readFile(path.join(dir, MANIFEST), 'utf8');
  } catch {
    throw new BackupNotFoundError(
      dir,
      `it has no ${MANIFEST} (the manifest is written last: an unfinished backup has none)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new BackupManifestError(`${MANIFEST} is not JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BackupManifestError(`${MANIFEST} is not a JSON object`);
  }
  const { digest, ...rest } = raw as Record<string, unknown>;
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BackupManifestError(`${issue.path.join('.') || 'manifest'}: ${issue.message}`);
  }
  if (digest !== digestOf(rest)) {
    throw new BackupManifestError(
      'its digest does not match its content: it was changed after the backup was written',
    );
  }
  return parsed.data;
}
