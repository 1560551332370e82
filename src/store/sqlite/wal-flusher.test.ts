import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SqliteStore, WalFlushError } from './sqlite-store.js';
import { WalFlusher } from './wal-flusher.js';

// The log flush that makes SQLite commits durable off the event loop. fdatasync itself cannot be
// observed (only a power cut would show it missing), so these tests hand the flusher a sync
// they control and check the order of things around it on a real store.

type Callback = (err: NodeJS.ErrnoException | null) => void;

/** A sync that waits until the test ends it; `calls` lists the pending ones. */
function controlledSync() {
  const calls: Callback[] = [];
  return {
    calls,
    sync: (_fd: number, callback: Callback) => void calls.push(callback),
    async next(): Promise<Callback> {
      for (let i = 0; i < 500 && calls.length === 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.ok(calls.length > 0, 'no flush was started');
      return calls.shift()!;
    },
  };
}

async function durableStore(sync: ReturnType<typeof controlledSync>['sync']) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-wal-'));
  const file = path.join(dir, 'perch.db');
  const store = SqliteStore.open({ file });
  await store.migrate();
  // The store's own flusher, with the sync under the test's control.
  (store as unknown as { flusher: WalFlusher }).flusher = new WalFlusher(`${file}-wal`, sync);
  return { store, file, dir };
}

const settled = (p: Promise<unknown>) => {
  const state = { done: false };
  p.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
};

test('a durable store commits, then answers only after a log flush begun after the COMMIT', async () => {
  const sync = controlledSync();
  const { store, file, dir } = await durableStore(sync.sync);
  const reader = SqliteStore.open({ file, synchronous: 'normal' });
  try {
    const first = store.transaction((tx) => tx.setSetting('first', '1'));
    const firstState = settled(first);
    const flush1 = await sync.next();
    // Committed (a fresh connection reads it) but not answered: the flush is under way.
    assert.equal((await reader.getSettings()).first, '1');
    assert.equal(firstState.done, false);
    // The event loop is free: the next batch commits meanwhile and waits for a flush of its own,
    // which starts only when the first ends (one at a time; calls in between share it).
    const second = store.transaction((tx) => tx.setSetting('second', '2'));
    const third = store.transaction((tx) => tx.setSetting('third', '3'));
    const later = [settled(second), settled(third)];
    for (let i = 0; i < 20 && (await reader.getSettings()).third === undefined; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal((await reader.getSettings()).third, '3');
    assert.equal(sync.calls.length, 0, 'a second flush started while the first ran');
    flush1(null);
    await first;
    assert.deepEqual(
      later.map((s) => s.done),
      [false, false],
    );
    (await sync.next())(null);
    await Promise.all([second, third]);
    assert.equal(sync.calls.length, 0, 'the two later batches shared one flush');
  } finally {
    await reader.close();
    const closing = store.close();
    await closing;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed flush fails its transactions with WalFlushError; the store goes on', async () => {
  const sync = controlledSync();
  const { store, dir } = await durableStore(sync.sync);
  try {
    const lost = store.transaction((tx) => tx.setSetting('k', 'v'));
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    (await sync.next())(eio);
    await assert.rejects(lost, (err: unknown) => {
      assert.ok(err instanceof WalFlushError);
      assert.match(err.message, /could not be made durable: EIO/);
      return true;
    });
    const next = store.transaction((tx) => tx.setSetting('k', 'w'));
    (await sync.next())(null);
    await next;
    assert.equal((await store.getSettings()).k, 'w');
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('synchronous full runs SQLite in NORMAL with the flusher; normal has no flusher', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-wal-'));
  try {
    for (const [synchronous, flushed] of [
      ['full', true],
      ['normal', false],
    ] as const) {
      const store = SqliteStore.open({ file: path.join(dir, `${synchronous}.db`), synchronous });
      await store.migrate();
      const inner = store as unknown as {
        raw: { pragma(p: string, o: { simple: true }): unknown };
        flusher?: WalFlusher;
      };
      assert.equal(inner.raw.pragma('synchronous', { simple: true }), 1, synchronous);
      assert.equal(inner.flusher !== undefined, flushed, synchronous);
      // A real flush of the real log file.
      await store.transaction((tx) => tx.setSetting('x', '1'));
      await store.flushLog();
      await store.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a background-checkpointed store leaves the log to checkpoint(), called from another connection', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-wal-'));
  const file = path.join(dir, 'perch.db');
  const store = SqliteStore.open({ file, checkpoints: 'background' });
  const other = SqliteStore.open({ file });
  try {
    await store.migrate();
    const inner = store as unknown as { raw: { pragma(p: string, o: { simple: true }): unknown } };
    assert.equal(inner.raw.pragma('wal_autocheckpoint', { simple: true }), 10_000);
    // More than SQLite's default 1,000 pages of log: an `auto` store would have checkpointed.
    const size = () => fs.statSync(file).size;
    const before = size();
    for (let i = 0; i < 40; i++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          store.transaction((tx) => tx.setSetting(`k-${i}-${j}`, 'x'.repeat(2000))),
        ),
      );
    }
    assert.equal(size(), before, 'the writer checkpointed on its own');
    const done = other.checkpoint();
    assert.equal(done.busy, false);
    assert.ok(done.logPages > 1000, `log pages ${done.logPages}`);
    assert.equal(done.checkpointedPages, done.logPages);
    assert.ok(size() > before, 'the checkpoint copied the log into the database');
    assert.equal(
      Object.keys(await other.getSettings()).filter((k) => k.startsWith('k-')).length,
      2000,
    );
  } finally {
    await other.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
