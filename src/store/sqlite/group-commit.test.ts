import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SqliteStore } from './sqlite-store.js';

async function openStore(): Promise<{ store: SqliteStore; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-gc-'));
  const store = SqliteStore.open({ file: path.join(dir, 'perch.db') });
  await store.migrate();
  return { store, dir };
}

test('concurrent transactions commit together, and a failing one rolls back alone', async () => {
  const { store, dir } = await openStore();
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.setSetting(`key-${i}`, String(i));
          if (i % 10 === 3) throw new Error(`fail ${i}`);
          return i;
        }),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 5);
    for (const r of failed) assert.match(String((r as PromiseRejectedResult).reason), /fail \d+3?/);
    const settings = await store.getSettings();
    for (let i = 0; i < 50; i++) {
      assert.equal(settings[`key-${i}`], i % 10 === 3 ? undefined : String(i), `key-${i}`);
    }
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a transaction answers only after its commit is visible to a fresh connection', async () => {
  const { store, dir } = await openStore();
  try {
    await store.transaction((tx) => tx.setSetting('durable', 'yes'));
    const other = SqliteStore.open({ file: path.join(dir, 'perch.db') });
    assert.equal((await other.getSettings()).durable, 'yes');
    await other.close();
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
