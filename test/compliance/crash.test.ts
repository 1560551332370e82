import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openSqliteComplianceStore } from '../../src/compliance/sqlite-compliance-store.js';
import { setComplianceConfig } from '../../src/domain/compliance/config.js';
import { joinRooms, postMessage } from '../../src/domain/messages/commands.js';
import { withDomain, buildCategory, buildRoom, buildUsers } from '../harness/domain-factories.js';
import { assertExactlyOnce, readJsonlOutput, readXmlOutput } from './helpers.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker-child.ts');

/** Runs the worker child; when it reports its crash point, kills it with SIGKILL. */
function runChild(dataDir: string, crashAt: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dataDir, String(crashAt)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('CRASH')) p.kill('SIGKILL');
    });
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (out.includes('CRASH') && signal === 'SIGKILL') resolve(out.trim());
      else if (code === 0 && out.includes('DONE')) resolve(out.trim());
      else reject(new Error(`worker child failed (${code ?? signal}): ${out}\n${err}`));
    });
  });
}

test('kill -9 of the worker at every step of capture and runs: no gap, no duplicate', async () => {
  await withDomain(async (t) => {
    const { alice } = await buildUsers(t, ['alice']);
    await buildCategory(t, { name: 'c', allowed: ['alice'] });
    const rooms = [
      await buildRoom(t, { name: 'r1', category: 'c', privacy: 'open' }),
      await buildRoom(t, { name: 'r2', category: 'c', privacy: 'open' }),
    ];
    await joinRooms(
      t.d,
      alice,
      rooms.map((r) => ({ roomId: r.id })),
    );
    await setComplianceConfig(t.d, t.admin, {
      maxRecordsPerRun: 5,
      adapters: [
        { name: 'xml', type: 'xml', oneChatRoomPerOutputFile: true },
        { name: 'jsonl', type: 'jsonl', createFileAttachmentsManifest: true },
      ],
    });
    const crashes = new Set<string>();
    let posted = 0;
    for (let k = 1; k <= 24; k++) {
      for (let i = 0; i < 3; i++) {
        posted += 1;
        await postMessage(t.d, alice, rooms[posted % 2]!.id, { text: `post ${posted}` });
      }
      const out = await runChild(t.dir, k);
      if (out.startsWith('CRASH')) crashes.add(out.split(' ')[1]!);
    }
    await runChild(t.dir, 0);
    // Every kind of step was interrupted at least once.
    for (const step of [
      'capture:copied',
      'capture:deleted',
      'run:begun',
      'run:file-written',
      'run:file-renamed',
      'run:translated',
      'run:committed',
    ]) {
      assert.ok(crashes.has(step), `never crashed at ${step}: ${[...crashes].join(', ')}`);
    }
    assert.equal(await t.store.countActivity(), 0);
    const cs = openSqliteComplianceStore({ file: path.join(t.dir, 'compliance.db') });
    const ids = (await cs.readRecords(0, 1_000_000)).map((r) => r.id);
    const outboxIds = (await cs.readRecords(0, 1_000_000)).map((r) => r.outboxId);
    await cs.close();
    // Each outbox row captured once (the unique key), whatever ids the store handed out.
    assert.equal(new Set(outboxIds).size, outboxIds.length);
    const xml = readXmlOutput(path.join(t.dir, 'compliance', 'xml'));
    const jsonl = readJsonlOutput(path.join(t.dir, 'compliance', 'jsonl'));
    assertExactlyOnce(
      xml.map((r) => r.recordId),
      ids,
      'xml',
    );
    assertExactlyOnce(
      jsonl.map((r) => r.recordId),
      ids,
      'jsonl',
    );
    // Each post captured once, in order.
    const chats = jsonl.filter((r) => r.type === 'CHAT').map((r) => r.content);
    assert.deepEqual(
      chats,
      Array.from({ length: posted }, (_, i) => `post ${i + 1}`),
    );
  });
});
