/**
 * History and full-text search at scale on SQLite:
 * `npm run bench:history -- [--messages 10000000] [--rooms 10000] [--samples 200] [--budget-s 60] [--dir DIR]`.
 *
 * Seeds a store with `--messages` messages spread over `--rooms` open rooms (round robin, so each
 * room holds messages/rooms of them) through a bulk path: rooms and users go through the domain,
 * messages through one prepared INSERT on a second connection in transactions of 50,000 rows
 * with synchronous=OFF (the full-text index is kept by the schema's own triggers, as for every
 * post). The text is drawn from a Zipf-distributed vocabulary, seeded, with marker words at
 * known rates so that searches have known result sizes. Then it measures, through the domain
 * commands a client's `history` and `search` frames call (access checks included), warm cache:
 * the latest page of a random room, a deep scroll-back page (`before` a random sequence), and
 * searches (a rare word, a common word, two words, a phrase, a word within one room).
 *
 * Progress goes to standard error; the last line of standard output is one JSON object, also
 * written to bench/results/. `--dir` keeps the seeded store there and reuses it on the next run
 * with the same sizes (seeding 10 million messages takes minutes).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import { Argon2Hasher } from '../src/auth/argon2-hasher.js';
import { createCategory } from '../src/domain/categories/commands.js';
import { actorFor, bootstrap } from '../src/domain/directory/commands.js';
import { createDomain } from '../src/domain/index.js';
import { roomHistory, searchMessages } from '../src/domain/messages/commands.js';
import { createRoom } from '../src/domain/rooms/commands.js';
import { EventBus } from '../src/events.js';
import { DiskFileStore } from '../src/files/disk-file-store.js';
import { createLogger } from '../src/logger.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { Histogram } from './load/histogram.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000000' },
    rooms: { type: 'string', default: '10000' },
    users: { type: 'string', default: '1000' },
    samples: { type: 'string', default: '200' },
    'budget-s': { type: 'string', default: '60' },
    dir: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench:history -- [--messages 10000000] [--rooms 10000] [--users 1000] [--samples 200] [--budget-s 60] [--dir DIR]\n',
  );
  process.exit(0);
}
const messageCount = Number(values.messages);
const roomCount = Number(values.rooms);
const userCount = Number(values.users);
const samples = Number(values.samples);
const budgetS = Number(values['budget-s']);
for (const [name, v] of Object.entries({ messageCount, roomCount, userCount, samples, budgetS })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
}
if (messageCount < roomCount) throw new Error('--messages must be at least --rooms');

const log = (line: string) => process.stderr.write(`${line}\n`);
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = values.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-history-'));
const file = path.join(dir, 'perch.db');
const seededMark = path.join(dir, `seeded-${messageCount}-${roomCount}-${userCount}`);

// ---------------------------------------------------------------- text with known word rates

/** mulberry32: a small seeded generator, so that every run writes the same text. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VOCABULARY = 20_000;
/** Pronounceable made-up words, none of them a marker word. */
const words = Array.from({ length: VOCABULARY }, (_, i) => {
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'so', 'de', 'pa', 'gu', 'fe'];
  let w = '';
  let k = i + 12;
  while (k > 0) {
    w += syllables[k % 12];
    k = Math.floor(k / 12);
  }
  return w;
});
/** Cumulative Zipf (s = 1) weights over the vocabulary, for inverse sampling. */
const cumulative = (() => {
  const c = new Float64Array(VOCABULARY);
  let sum = 0;
  for (let i = 0; i < VOCABULARY; i++) c[i] = sum += 1 / (i + 1);
  for (let i = 0; i < VOCABULARY; i++) c[i]! /= sum;
  return c;
})();
function zipfWord(r: number): string {
  let lo = 0;
  let hi = VOCABULARY - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! < r) lo = mid + 1;
    else hi = mid;
  }
  return words[lo]!;
}
/** Marker words and how often a message carries one. */
const MARKERS = {
  rare: ['zqrare', 1e-5],
  medium: ['zqmedium', 1e-3],
  phrase: ['quarterly roadmap review', 1e-4],
} as const;

/** Bodies are drawn from a pool (generating each one costs more than inserting it). */
const POOL = 1 << 16;
function textPool(rand: () => number): string[] {
  return Array.from({ length: POOL }, () => {
    const n = 6 + Math.floor(rand() * 20);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(zipfWord(rand()));
    return parts.join(' ');
  });
}

function messageText(pool: string[], rand: () => number): string {
  let text = pool[Math.floor(rand() * POOL)]!;
  for (const [marker, rate] of Object.values(MARKERS)) if (rand() < rate) text += ` ${marker}`;
  return text;
}

// ---------------------------------------------------------------- seeding

async function openDomain(store: SqliteStore) {
  const quiet = createLogger('silent');
  return createDomain({
    store,
    events: new EventBus(quiet),
    hasher: new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
    files: new DiskFileStore(path.join(dir, 'files')),
    secret: crypto.randomBytes(32),
    log: quiet,
  });
}

async function seed(): Promise<number> {
  const started = Date.now();
  fs.rmSync(file, { force: true });
  const store = SqliteStore.open({ file, synchronous: 'normal' });
  await store.migrate();
  const d = await openDomain(store);
  await bootstrap(d, crypto.randomBytes(12).toString('hex'));
  const admin = await actorFor(d, (await store.getPrincipalByName('admin'))!);
  const logins = Array.from({ length: userCount }, (_, i) => `user${i}`);
  for (let i = 0; i < userCount; i += 256) {
    await Promise.all(
      logins
        .slice(i, i + 256)
        .map((name) =>
          store.createPrincipal({ kind: 'user', name, displayName: name }, Date.now()),
        ),
    );
  }
  await createCategory(d, admin, {
    name: 'History',
    allowed: ['admin', ...logins],
    creators: ['admin'],
  });
  for (let i = 0; i < roomCount; i += 256) {
    await Promise.all(
      Array.from({ length: Math.min(256, roomCount - i) }, (_, k) =>
        createRoom(d, admin, { name: `history-${i + k}`, category: 'History', privacy: 'open' }),
      ),
    );
    if ((i / 256) % 10 === 0) log(`  rooms ${Math.min(i + 256, roomCount)}/${roomCount}`);
  }
  const userIds = (await store.listPrincipals({ kind: 'user', limit: userCount + 10, offset: 0 }))
    .filter((p) => p.name.startsWith('user'))
    .map((p) => p.id);
  const roomIds = (await store.listRooms({ limit: roomCount + 10, offset: 0 })).map((r) => r.id);
  await store.close();

  const raw = new BetterSqlite3(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = OFF');
  raw.pragma('cache_size = -262144');
  const insert = raw.prepare(
    `INSERT INTO messages (room_id, seq, author_id, created_at, body, title, alert, file_id, client_id, state, edited_at)
     VALUES (?, ?, ?, ?, ?, NULL, 0, NULL, NULL, 'normal', NULL)`,
  );
  const rand = prng(20261126);
  const pool = textPool(rand);
  const t0 = Date.UTC(2024, 0, 1);
  const step = Math.max(1, Math.floor((Date.now() - t0) / messageCount));
  const batch = 50_000;
  const insertBatch = raw.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const room = i % roomCount;
      insert.run(
        roomIds[room],
        Math.floor(i / roomCount) + 1,
        userIds[Math.floor(rand() * userIds.length)],
        t0 + i * step,
        messageText(pool, rand),
      );
    }
  });
  const seedStarted = Date.now();
  for (let i = 0; i < messageCount; i += batch) {
    insertBatch(i, Math.min(i + batch, messageCount));
    const done = Math.min(i + batch, messageCount);
    if ((done / batch) % 10 === 0 || done === messageCount) {
      const rate = done / ((Date.now() - seedStarted) / 1000);
      log(
        `  messages ${done.toLocaleString('en')}/${messageCount.toLocaleString('en')} (${Math.round(rate).toLocaleString('en')}/s, ~${Math.round((messageCount - done) / rate)} s left)`,
      );
    }
  }
  raw
    .prepare(
      'UPDATE rooms SET last_seq = (SELECT coalesce(max(seq), 0) FROM messages WHERE room_id = rooms.id)',
    )
    .run();
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.exec('ANALYZE');
  raw.close();
  fs.writeFileSync(seededMark, '');
  return (Date.now() - started) / 1000;
}

// ---------------------------------------------------------------- measuring

/** Runs `run` 3 times to warm up, then `samples` times or until `budgetS` seconds are spent. */
async function measure(name: string, run: () => Promise<unknown>) {
  const started = Date.now();
  const spent = () => (Date.now() - started) / 1000;
  for (let i = 0; i < 3 && spent() < budgetS / 4; i++) await run();
  const h = new Histogram();
  while (h.count < samples && (h.count === 0 || spent() < budgetS)) {
    const t = process.hrtime.bigint();
    await run();
    h.record(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const s = { n: h.count, p50: h.quantile(0.5), p99: h.quantile(0.99), max: h.max };
  log(
    `  ${name.padEnd(22)} n ${String(s.n).padStart(4)}  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  max ${s.max.toFixed(2)} ms`,
  );
  return s;
}

let seedSeconds: number | null = null;
if (!fs.existsSync(seededMark)) {
  log(`seeding ${messageCount.toLocaleString('en')} messages over ${roomCount} rooms in ${dir}`);
  seedSeconds = await seed();
  log(`seeded in ${seedSeconds.toFixed(0)} s`);
} else {
  log(`reusing the store seeded in ${dir}`);
}
const dbBytes = fs.statSync(file).size;
const store = SqliteStore.open({ file });
const d = await openDomain(store);
const user = await actorFor(d, (await store.getPrincipalByName('user1'))!);
const roomIds = (await store.listRooms({ limit: roomCount + 10, offset: 0 })).map((r) => r.id);
const perRoom = Math.floor(messageCount / roomCount);
const rand = prng(7);
const pick = () => roomIds[Math.floor(rand() * roomIds.length)]!;
const counts: Record<string, number> = {};
const search =
  (query: string, extra: Record<string, unknown> = {}) =>
  async () => {
    const r = await searchMessages(d, user, { query, ...extra });
    counts[query] = r.count;
    return r;
  };

log(`measuring: 3 warm-up runs, then ${samples} samples or ${budgetS} s, whichever ends first`);
const results = {
  history_latest: await measure('history latest page', () => roomHistory(d, user, pick(), {})),
  history_scrollback: await measure('history scroll-back', () =>
    roomHistory(d, user, pick(), { before: 2 + Math.floor(rand() * Math.max(1, perRoom - 1)) }),
  ),
  search_rare: await measure('search rare word', search(MARKERS.rare[0])),
  search_medium: await measure('search medium word', search(MARKERS.medium[0])),
  search_common: await measure('search common word', search(words[0]!)),
  search_two_words: await measure('search two words', search(`${MARKERS.medium[0]} ${words[3]}`)),
  search_phrase: await measure('search phrase', search(`"${MARKERS.phrase[0]}"`)),
  search_in_room: await measure('search word in a room', () =>
    searchMessages(d, user, { query: words[1]!, rooms: [pick()] }),
  ),
};
await store.close();
if (!values.dir) fs.rmSync(dir, { recursive: true, force: true });

const ms = (s: { n: number; p50: number; p99: number; max: number }) => ({
  n: s.n,
  p50_ms: +s.p50.toFixed(3),
  p99_ms: +s.p99.toFixed(3),
  max_ms: +s.max.toFixed(3),
});
const summary = {
  bench: 'history',
  store: 'sqlite',
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  loadavg: os.loadavg().map((v) => +v.toFixed(2)),
  messages: messageCount,
  rooms: roomCount,
  users: userCount,
  samples,
  seed_seconds: seedSeconds === null ? null : +seedSeconds.toFixed(1),
  db_mb: Math.round(dbBytes / 2 ** 20),
  match_counts: counts,
  ...Object.fromEntries(Object.entries(results).map(([k, v]) => [k, ms(v)])),
};
const out = path.join(
  here,
  'results',
  `history-sqlite-${messageCount}msg-${summary.date.replace(/[:.]/g, '-')}.json`,
);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
log(`results written to ${path.relative(process.cwd(), out)}`);
process.stdout.write(`${JSON.stringify(summary)}\n`);
