/**
 * Acknowledged posts per second through the domain on a real SQLite file (no network):
 * `npm run bench:store-posts -- --posts 20000 --concurrency 64 --rooms 50 --sync full`.
 * Prints one JSON line with the rate; the durability setting is part of the result.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Argon2Hasher } from '../src/auth/argon2-hasher.js';
import { createCategory } from '../src/domain/categories/commands.js';
import { actorFor, bootstrap } from '../src/domain/directory/commands.js';
import { createDomain } from '../src/domain/index.js';
import { postMessage } from '../src/domain/messages/commands.js';
import { createRoom } from '../src/domain/rooms/commands.js';
import { EventBus } from '../src/events.js';
import { DiskFileStore } from '../src/files/disk-file-store.js';
import { createLogger } from '../src/logger.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const { values } = parseArgs({
  options: {
    posts: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    rooms: { type: 'string', default: '50' },
    sync: { type: 'string', default: 'full' },
  },
});
const posts = Number(values.posts);
const concurrency = Number(values.concurrency);
const roomCount = Number(values.rooms);
const sync = values.sync === 'normal' ? 'normal' : 'full';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-'));
const store = SqliteStore.open({ file: path.join(dir, 'perch.db'), synchronous: sync });
await store.migrate();
const log = createLogger('silent');
const d = createDomain({
  store,
  events: new EventBus(log),
  hasher: new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
  files: new DiskFileStore(path.join(dir, 'files')),
  secret: crypto.randomBytes(32),
  log,
});
await bootstrap(d, 'bench-password');
const admin = await actorFor(d, (await store.getPrincipalByName('admin'))!);
const user = await store.createPrincipal(
  { kind: 'user', name: 'poster', displayName: 'Poster' },
  Date.now(),
);
await createCategory(d, admin, {
  name: 'Bench',
  allowed: ['poster', 'admin'],
  creators: ['admin'],
});
const rooms: number[] = [];
for (let i = 0; i < roomCount; i++) {
  rooms.push(
    (await createRoom(d, admin, { name: `bench-${i}`, category: 'Bench', privacy: 'open' })).id,
  );
}
const actor = await actorFor(d, user);
process.stderr.write(
  `posting ${posts} messages, ${concurrency} at a time, into ${roomCount} rooms (synchronous=${sync})\n`,
);
let next = 0;
const started = process.hrtime.bigint();
async function worker(): Promise<void> {
  while (next < posts) {
    const i = next++;
    await postMessage(d, actor, rooms[i % rooms.length]!, {
      text: `message ${i} ${'x'.repeat(100)}`,
      clientId: `c${i}`,
    });
    if (i > 0 && i % 5000 === 0) process.stderr.write(`  ${i} posted\n`);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await store.close();
fs.rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  `${JSON.stringify({ bench: 'store-posts', posts, concurrency, rooms: roomCount, synchronous: sync, seconds: +seconds.toFixed(2), posts_per_s: Math.round(posts / seconds) })}\n`,
);
