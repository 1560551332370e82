import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FileStore } from '../domain/types.js';

/** Keeps uploaded files in a folder readable by the server's user only, named by random keys. */
export class DiskFileStore implements FileStore {
  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }

  async put(data: Buffer): Promise<{ key: string; sha256: string; size: number }> {
    const key = crypto.randomBytes(16).toString('hex');
    const sha256 = crypto.createHash('sha256').update(data).digest('hex');
    const handle = await fs.promises.open(this.path(key), 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { key, sha256, size: data.length };
  }

  path(key: string): string {
    if (!/^[0-9a-f]{32}$/.test(key)) throw new Error('invalid file key');
    return path.join(this.dir, key);
  }

  async remove(key: string): Promise<void> {
    await fs.promises.rm(this.path(key), { force: true });
  }
}
