/**
 * History and full-text search at scale on SQLite or PostgreSQL:
 * `npm run bench:history -- [--store sqlite|postgres] [--messages 10000000] [--rooms 10000] [--samples 200] [--budget-s 60] [--dir DIR]`.
 *
 * Seeds a store with `--messages` messages spread over `--rooms` open rooms (round robin, so each
 * room holds messages/rooms of them): rooms and users go through the domain, messages through a
 * bulk path with the secondary and full-text indexes built after the rows (see seedSqlite and
 * seedPostgres). The text is drawn from a Zipf-distributed vocabulary, seeded, with marker words
 * at known rates so that searches have known result sizes. Then it measures, through the domain
 * commands a client's `history` and `search` frames call (access checks and compliance records
 * included), warm cache: the latest page of a random room, a deep scroll-back page (`before` a
 * random sequence), and searches (a rare word, a common word, two words, a phrase, a word within
 * one room); then the store's queries alone, and this process's CPU time per query.
 *
 * Progress goes to standard error; the last line of standard output is one JSON object, also
 * written to bench/results/. `--dir` keeps the seeded store there (the SQLite file, or the
 * PostgreSQL cluster, stopped) and reuses it on the next run with the same sizes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Argon2Hasher } from '../src/auth/argon2-hasher.js';
import { createCategory } from '../src/domain/categories/commands.js';
import { actorFor, bootstrap } from '../src/domain/directory/commands.js';
import { createDomain } from '../src/domain/index.js';
import { roomHistory, searchMessages } from '../src/domain/messages/commands.js';
import { createRoom } from '../src/domain/rooms/commands.js';
import { EventBus } from '../src/events.js';
import { DiskFileStore } from '../src/files/disk-file-store.js';
import { createLogger } from '../src/logger.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { messageSearchVector } from '../src/store/postgres/text-search.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { startPostgres } from '../test/harness/postgres.js';
import { Histogram } from './load/histogram.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000000' },
    rooms: { type: 'string', default: '10000' },
    users: { type: 'string', default: '1000' },
    samples: { type: 'string', default: '200' },
    'budget-s': { type: 'string', default: '60' },
    dir: { type: 'string' },
    store: { type: 'string', default: 'sqlite' },
    sync: { type: 'string', default: 'full' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench:history -- [--store sqlite|postgres] [--messages 10000000] [--rooms 10000] [--users 1000]\n' +
      '                         [--samples 200] [--budget-s 60] [--sync full|normal] [--dir DIR]\n',
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
const dialect = values.store;
if (dialect !== 'sqlite' && dialect !== 'postgres')
  throw new Error('--store must be sqlite or postgres');
const sync = values.sync;
if (sync !== 'full' && sync !== 'normal') throw new Error('--sync must be full or normal');

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

async function openDomain(store: Store) {
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

/** Users, the category and the rooms, through the domain as a server would create them. */
async function seedDirectory(store: Store): Promise<{ userIds: number[]; roomIds: number[] }> {
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
  return { userIds, roomIds };
}

/**
 * Message `i` of the seeded history, the same on both dialects: round robin over the rooms, a
 * random author, evenly spaced times up to now, a body from the pool with marker words.
 */
function messageRows(userIds: number[], roomIds: number[]) {
  const rand = prng(20261126);
  const pool = textPool(rand);
  const t0 = Date.UTC(2024, 0, 1);
  const step = Math.max(1, Math.floor((Date.now() - t0) / messageCount));
  return (i: number) => ({
    roomId: roomIds[i % roomCount]!,
    seq: Math.floor(i / roomCount) + 1,
    authorId: userIds[Math.floor(rand() * userIds.length)]!,
    createdAt: t0 + i * step,
    body: messageText(pool, rand),
  });
}

function progress(what: string, done: number, total: number, since: number): void {
  const rate = done / ((Date.now() - since) / 1000);
  log(
    `  ${what} ${done.toLocaleString('en')}/${total.toLocaleString('en')} (${Math.round(rate).toLocaleString('en')}/s, ~${Math.round((total - done) / rate)} s left)`,
  );
}

/** Seeds the SQLite file; returns the seconds it took. */
async function seedSqlite(): Promise<number> {
  const started = Date.now();
  fs.rmSync(file, { force: true });
  const store = SqliteStore.open({ file, synchronous: 'normal' });
  const { userIds, roomIds } = await seedDirectory(store);
  await store.close();

  const raw = new BetterSqlite3(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = OFF');
  raw.pragma('cache_size = -262144');
  // The messages go in with the full-text trigger and the secondary indexes set aside (their
  // definitions are read back from the schema, so they come back exactly as the migrations made
  // them): appending rows by rowid is cheap, while keeping three indexes and FTS5 segments in
  // step row by row at 10 M rows took most of an hour. Indexes are then built by sorting, and
  // the full-text index in id order from its content view, a chunk per transaction, as the
  // schema's trigger would.
  const setAside = raw
    .prepare(
      `SELECT type, name, sql FROM sqlite_master
       WHERE tbl_name = 'messages' AND sql IS NOT NULL
         AND ((type = 'index') OR (type = 'trigger' AND name = 'messages_fts_ai'))`,
    )
    .all() as { type: 'index' | 'trigger'; name: string; sql: string }[];
  for (const o of setAside) raw.exec(`DROP ${o.type.toUpperCase()} ${o.name}`);
  const insert = raw.prepare(
    `INSERT INTO messages (room_id, seq, author_id, created_at, body, title, alert, file_id, client_id, state, edited_at)
     VALUES (?, ?, ?, ?, ?, NULL, 0, NULL, NULL, 'normal', NULL)`,
  );
  const row = messageRows(userIds, roomIds);
  const batch = 50_000;
  const insertBatch = raw.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const m = row(i);
      insert.run(m.roomId, m.seq, m.authorId, m.createdAt, m.body);
    }
  });
  const seedStarted = Date.now();
  for (let i = 0; i < messageCount; i += batch) {
    insertBatch(i, Math.min(i + batch, messageCount));
    const done = Math.min(i + batch, messageCount);
    if ((done / batch) % 10 === 0 || done === messageCount) {
      progress('messages', done, messageCount, seedStarted);
    }
  }
  for (const o of setAside.filter((x) => x.type === 'index')) {
    const t = Date.now();
    raw.exec(o.sql);
    log(`  index ${o.name} built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const ftsStarted = Date.now();
  const indexChunk = raw.prepare(
    `INSERT INTO messages_fts (rowid, title, body, room)
     SELECT id, title, body, room FROM messages_fts_source WHERE id > ? AND id <= ?`,
  );
  const { lo, hi } = raw
    .prepare('SELECT coalesce(min(id), 1) - 1 AS lo, coalesce(max(id), 0) AS hi FROM messages')
    .get() as { lo: number; hi: number };
  const ftsChunk = 500_000;
  for (let from = lo; from < hi; from += ftsChunk) {
    raw.transaction(() => indexChunk.run(from, Math.min(from + ftsChunk, hi)))();
    progress('full-text index', Math.min(from + ftsChunk, hi) - lo, hi - lo, ftsStarted);
  }
  for (const o of setAside.filter((x) => x.type === 'trigger')) raw.exec(o.sql);
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

/**
 * The `search` tsvector the store writes for a body (store/postgres/text-search.ts), computed once
 * per distinct body: bodies come from a pool, and tokenizing each of 10 M of them again took
 * longer than inserting them.
 */
function searchVectors(): (body: string) => string {
  const memo = new Map<string, string>();
  return (body) => {
    let v = memo.get(body);
    if (v === undefined) {
      v = messageSearchVector(null, body);
      if (memo.size < 4 * POOL) memo.set(body, v);
    }
    return v;
  };
}

/**
 * Seeds the PostgreSQL database; returns the seconds it took. Messages go in 10,000 rows a
 * statement (one INSERT ... SELECT FROM unnest of column arrays), each with the `search`
 * tsvector the store writes for every post (store/postgres/text-search.ts), with the secondary
 * and full-text indexes set aside and rebuilt afterwards from their own definitions. The rows
 * reference rooms and users that exist, so the foreign-key triggers are skipped for this
 * connection (session_replication_role = replica); the next batch is built while the server
 * inserts the previous one.
 */
async function seedPostgres(url: string): Promise<number> {
  const started = Date.now();
  const store = PostgresStore.open({ connectionString: url, poolSize: 4 });
  const { userIds, roomIds } = await seedDirectory(store);
  await store.close();

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("SET maintenance_work_mem = '1GB'");
    await client.query('SET session_replication_role = replica');
    const { rows: setAside } = await client.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes
       WHERE schemaname = current_schema() AND tablename = 'messages'
         AND indexname NOT IN (SELECT conname FROM pg_constraint)`,
    );
    for (const i of setAside) await client.query(`DROP INDEX ${pg.escapeIdentifier(i.indexname)}`);
    const row = messageRows(userIds, roomIds);
    const vector = searchVectors();
    const batch = 10_000;
    const seedStarted = Date.now();
    let inFlight: Promise<unknown> = Promise.resolve();
    for (let from = 0; from < messageCount; from += batch) {
      const cols = {
        room: [] as number[],
        seq: [] as number[],
        author: [] as number[],
        at: [] as number[],
        body: [] as string[],
        search: [] as string[],
      };
      for (let i = from; i < Math.min(from + batch, messageCount); i++) {
        const m = row(i);
        cols.room.push(m.roomId);
        cols.seq.push(m.seq);
        cols.author.push(m.authorId);
        cols.at.push(m.createdAt);
        cols.body.push(m.body);
        cols.search.push(vector(m.body));
      }
      await inFlight;
      inFlight = client.query(
        `INSERT INTO messages (room_id, seq, author_id, created_at, body, search)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::tsvector[])`,
        [cols.room, cols.seq, cols.author, cols.at, cols.body, cols.search],
      );
      const done = Math.min(from + batch, messageCount);
      if ((done / batch) % 50 === 0 || done === messageCount) {
        progress('messages', done, messageCount, seedStarted);
      }
    }
    await inFlight;
    await client.query('SET session_replication_role = DEFAULT');
    for (const i of setAside) {
      const t = Date.now();
      await client.query(i.indexdef);
      log(`  index ${i.indexname} built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
    await client.query(
      'UPDATE rooms SET last_seq = (SELECT coalesce(max(seq), 0) FROM messages WHERE room_id = rooms.id)',
    );
    await client.query('VACUUM ANALYZE');
  } finally {
    await client.end();
  }
  return (Date.now() - started) / 1000;
}

// ---------------------------------------------------------------- measuring

/** Runs `run` 3 times to warm up, then `samples` times or until `budgetS` seconds are spent. */
async function measure(name: string, run: () => Promise<unknown>) {
  const started = Date.now();
  const spent = () => (Date.now() - started) / 1000;
  for (let i = 0; i < 3 && spent() < budgetS / 4; i++) await run();
  const h = new Histogram();
  const cpu = process.cpuUsage();
  while (h.count < samples && (h.count === 0 || spent() < budgetS)) {
    const t = process.hrtime.bigint();
    await run();
    h.record(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const used = process.cpuUsage(cpu);
  const s = {
    n: h.count,
    p50: h.quantile(0.5),
    p99: h.quantile(0.99),
    max: h.max,
    cpu: (used.user + used.system) / 1000 / h.count,
  };
  log(
    `  ${name.padEnd(24)} n ${String(s.n).padStart(4)}  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  max ${s.max.toFixed(2)} ms  cpu ${s.cpu.toFixed(2)} ms`,
  );
  return s;
}

let seedSeconds: number | null = null;
let store: Store;
let dbBytes: number;
let cluster: Awaited<ReturnType<typeof startPostgres>> | undefined;
if (dialect === 'postgres') {
  // The test harness's cluster, kept in the bench folder (so that `--dir` keeps it seeded), on
  // disk. Seeding runs with the harness's speed settings (fsync off); measuring restarts it with
  // PostgreSQL's durable defaults (fsync, synchronous_commit and full_page_writes on).
  fs.chmodSync(dir, 0o755); // as root, the cluster runs as the postgres user, which must get in
  const keepDir = path.join(dir, 'pg');
  const database = `perch_bench_${messageCount}_${roomCount}_${userCount}`;
  if (!fs.existsSync(seededMark)) {
    log(`starting a PostgreSQL cluster in ${keepDir}`);
    const seeding = await startPostgres({ keepDir });
    const admin = new pg.Client({ connectionString: seeding.url('postgres') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database}`);
    await admin.query(`CREATE DATABASE ${database} TEMPLATE perch_template`);
    await admin.end();
    log(`seeding ${messageCount.toLocaleString('en')} messages over ${roomCount} rooms`);
    seedSeconds = await seedPostgres(seeding.url(database));
    log(`seeded in ${seedSeconds.toFixed(0)} s`);
    seeding.stop();
    fs.writeFileSync(seededMark, '');
  } else {
    log(`reusing the cluster seeded in ${keepDir}`);
  }
  cluster = await startPostgres({ keepDir, durable: true });
  const url = cluster.url(database);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const settings = await admin.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')",
  );
  for (const s of settings.rows) {
    if (s.setting !== 'on') throw new Error(`measuring needs ${s.name} on, not ${s.setting}`);
  }
  const size = await admin.query<{ b: string }>('SELECT pg_database_size(current_database()) AS b');
  dbBytes = Number(size.rows[0]!.b);
  await admin.end();
  store = PostgresStore.open({ connectionString: url });
  await store.migrate();
} else {
  if (!fs.existsSync(seededMark)) {
    log(`seeding ${messageCount.toLocaleString('en')} messages over ${roomCount} rooms in ${dir}`);
    seedSeconds = await seedSqlite();
    log(`seeded in ${seedSeconds.toFixed(0)} s`);
  } else {
    log(`reusing the store seeded in ${dir}`);
  }
  dbBytes = fs.statSync(file).size;
  store = SqliteStore.open({ file, synchronous: sync });
}
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

/**
 * Checks a sample of the seeded store through the domain's own reads, as a client would see it:
 * each sampled room's latest page ends at its last sequence with no gap, and a phrase search
 * for a message's whole text within its room finds that message (the full-text index holds
 * what the server would have indexed for it). Throws on the first difference.
 */
async function verifySample(): Promise<void> {
  const sample = prng(99);
  const minSeq = Math.floor(messageCount / roomCount);
  for (let k = 0; k < 20; k++) {
    const roomId = roomIds[Math.floor(sample() * roomIds.length)]!;
    const page = await roomHistory(d, user, roomId, { limit: 5 });
    const seqs = page.messages.map((m) => m.seq);
    const expected = Array.from({ length: 5 }, (_, i) => page.lastSeq - 4 + i);
    if (page.lastSeq < minSeq || seqs.join() !== expected.join()) {
      throw new Error(`room ${roomId}: last sequence ${page.lastSeq}, latest page ${seqs.join()}`);
    }
    const m = page.messages[Math.floor(sample() * page.messages.length)]!;
    const found = await searchMessages(d, user, { query: `"${m.text}"`, rooms: [roomId] });
    if (!found.messages.some((x) => x.id === m.id)) {
      throw new Error(`room ${roomId}: a search for the text of message ${m.seq} misses it`);
    }
  }
  log('  a sample of 20 rooms checked through the domain (latest pages, full-text matches)');
}
await verifySample();

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
  // The store's queries alone, without the access check, the compliance record and its durable
  // commit that the domain commands add: what the query itself costs.
  store_history_latest: await measure('store: history query', () =>
    store.history({ roomId: pick(), limit: 51 }),
  ),
  store_search_medium: await measure('store: search medium', () =>
    store.searchMessages({
      viewer: user,
      terms: [MARKERS.medium[0]],
      limit: 50,
      offset: 0,
      countLimit: 999,
    }),
  ),
  store_search_two_words: await measure('store: search two words', () =>
    store.searchMessages({
      viewer: user,
      terms: [MARKERS.medium[0], words[3]!],
      limit: 50,
      offset: 0,
      countLimit: 999,
    }),
  ),
};
await store.close();
cluster?.stop();
if (!values.dir) fs.rmSync(dir, { recursive: true, force: true });

const ms = (s: { n: number; p50: number; p99: number; max: number; cpu: number }) => ({
  n: s.n,
  p50_ms: +s.p50.toFixed(3),
  p99_ms: +s.p99.toFixed(3),
  max_ms: +s.max.toFixed(3),
  // This process's CPU per query: the whole query on SQLite (in process), the client side only
  // on PostgreSQL.
  cpu_ms: +s.cpu.toFixed(3),
});
const summary = {
  bench: 'history',
  store: dialect,
  sqlite_synchronous: dialect === 'sqlite' ? sync : null,
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
  `history-${dialect}-${messageCount}msg-${summary.date.replace(/[:.]/g, '-')}.json`,
);
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
log(`results written to ${path.relative(process.cwd(), out)}`);
process.stdout.write(`${JSON.stringify(summary)}\n`);
