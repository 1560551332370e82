import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BackupChecksumError } from '../../errors.js';
import type { FolderPart } from './manifest.js';

const CHUNK = 1024 * 1024;

/**
 * Copies one file to a new owner-only file (never over an existing one), fsynced, and returns
 * its size and SHA-256 as read. The source may be a live file: what was read is what was hashed.
 */
export async function copyFile(
  source: string,
  target: string,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const input = await fs.promises.open(source, 'r');
  try {
    const output = await fs.promises.open(target, 'wx', 0o600);
    try {
      const buf = Buffer.alloc(CHUNK);
      let bytes = 0;
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, CHUNK, bytes);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        await output.write(chunk);
        bytes += bytesRead;
      }
      await output.sync();
      return { bytes, sha256: hash.digest('hex') };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/** Size and SHA-256 of a file. */
export async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: CHUNK })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Throws BackupChecksumError unless `file` has the size and SHA-256 the manifest records. */
export async function verifyFile(
  part: string,
  file: string,
  want: { bytes: number; sha256: string },
): Promise<void> {
  let got: { bytes: number; sha256: string };
  try {
    got = await hashFile(file);
  } catch (err) {
    throw new BackupChecksumError(part, `cannot read it: ${(err as Error).message}`);
  }
  if (got.bytes !== want.bytes) {
    throw new BackupChecksumError(part, `${got.bytes} bytes, the manifest says ${want.bytes}`);
  }
  if (got.sha256 !== want.sha256) {
    throw new BackupChecksumError(part, 'its SHA-256 differs from the manifest');
  }
}

/**
 * Regular files under `dir`, as paths relative to it with `/` separators, sorted; a missing
 * folder has none. `skip` leaves out names (a writer's temp files).
 */
export async function listFiles(dir: string, skip?: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(path.join(dir, rel), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      if (skip?.(e.name)) continue;
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk('');
  return out.sort();
}

/** Adds up a folder part's entries. */
export function folderPart(entries: FolderPart['entries']): FolderPart {
  return {
    count: entries.length,
    bytes: entries.reduce((n, e) => n + e.bytes, 0),
    entries,
  };
}

/** Creates the folders of a relative path under `root`, owner-only. */
export async function ensureParent(root: string, rel: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(path.join(root, rel)), { recursive: true, mode: 0o700 });
}
