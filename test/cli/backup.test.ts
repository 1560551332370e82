// perch backup create|restore: a backup taken while a real server serves posts over WebSocket,
// restored into empty stores and served again (Standard Edition on SQLite, an Enterprise store on
// PostgreSQL), and the inputs a restore must refuse before it touches anything.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  adminHttp,
  buildCategory,
  buildRoom,
  buildUsers,
  Http,
  openClient,
  signIn,
  type TestUser,
} from '../e2e/helpers.js';
import { testCluster } from '../harness/postgres.js';
import { cleanup, startServer, tempDir, type TestServer } from '../harness/server.js';
import type { WsClient } from '../harness/ws-client.js';
import { compiledEntry, runPerch, type CliResult } from './helpers.js';

let work: string;
const servers: TestServer[] = [];
const databases: string[] = [];

before(async () => {
  work = await tempDir('perch-backup-');
  // Built now: the first runPerch builds the CLI synchronously, and a build blocking this
  // process in the middle of the traffic would leave the clients' pings unanswered (the server
  // then drops them).
  if (process.env.PERCH_CLI_FROM_SOURCE !== '1') compiledEntry();
});

after(async () => {
  for (const s of servers) await cleanup(s);
  if (databases.length > 0) {
    const cluster = await testCluster();
    for (const name of databases) await cluster.dropDatabase(name);
  }
  await cleanup(work);
});

async function perchJson<T>(args: string[]): Promise<T> {
  const r = await runPerch([...args, '--json']);
  assert.equal(r.code, 0, `perch ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function fails(r: CliResult, code: string): void {
  assert.equal(r.code, 1, `expected exit 1 (${code}), got ${r.code}: ${r.stdout} ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`perch: ${code}: `));
}

/** Waits for `check` to hold, polling; fails with `what` after the deadline. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Ack {
  roomId: number;
  seq: number;
  text: string;
  at: number;
}

/**
 * Clients posting over WebSocket, each a request at a time (about eight a second each, under
 * the per-connection limit), recording every post the server acknowledged and when.
 */
class Traffic {
  readonly acks: Ack[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  private readonly errors: unknown[] = [];

  constructor(clients: { ws: WsClient; roomId: number; name: string }[]) {
    this.loops = clients.map(async ({ ws, roomId, name }) => {
      try {
        await this.post(ws, roomId, name);
      } catch (err) {
        this.running = false;
        this.errors.push(err);
      }
    });
  }

  private async post(ws: WsClient, roomId: number, name: string): Promise<void> {
    for (let i = 0; this.running; i += 1) {
      const text = `${name} post ${i} ${randomBytes(4).toString('hex')}`;
      const answer = await ws.request({ type: 'post', roomId, text });
      if (answer.type === 'reply') {
        const seq = (answer.data as { seq: number }).seq;
        this.acks.push({ roomId, seq, text, at: Date.now() });
      } else assert.equal(answer.code, 'rate_limited', JSON.stringify(answer));
      await new Promise((r) => setTimeout(r, 120));
    }
  }

  async count(n: number): Promise<void> {
    await until(`${n} acknowledged posts`, () => this.acks.length >= n || !this.running);
  }

  /** Stops posting; fails with the server's log if a client failed (it waits for every one). */
  async stop(server: TestServer): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    if (this.errors.length > 0) {
      assert.fail(`a client failed: ${String(this.errors[0])}\n${server.logs().slice(-8000)}`);
    }
  }
}

/** Every message of a room, oldest first, through the history API. */
async function history(http: Http, roomId: number): Promise<{ seq: number; text: string }[]> {
  const out: { seq: number; text: string }[] = [];
  for (let after = 0; ;) {
    const page = await http.ok<{ messages: { seq: number; text: string }[]; more: boolean }>(
      'GET',
      `/api/v1/rooms/${roomId}/messages?after=${after}&limit=500`,
    );
    out.push(...page.messages);
    if (page.messages.length === 0 || !page.more) return out;
    after = page.messages.at(-1)!.seq;
  }
}

async function download(server: TestServer, user: TestUser, fileId: number): Promise<Buffer> {
  const http = new Http(server.url, await signIn(server, user.login, `password-${user.login}`));
  const link = await http.ok<{ url: string }>('GET', `/api/v1/files/${fileId}/link`);
  const res = await fetch(`${server.url}${link.url}`);
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

interface Scene {
  server: TestServer;
  admin: Http;
  users: Record<'alice' | 'bob', TestUser>;
  rooms: number[];
  fileId: number;
  fileBytes: Buffer;
}

/**
 * A server with two users, two rooms, an uploaded file, a word to search for, and the JSON-lines
 * compliance adapter having written its first output.
 */
async function buildScene(server: TestServer): Promise<Scene> {
  const admin = await adminHttp(server);
  const users = await buildUsers(server, admin, ['alice', 'bob'] as const);
  await buildCategory(admin, { name: 'General', allowed: ['alice', 'bob'], fileUpload: true });
  const rooms = [
    (await buildRoom(admin, { name: 'Plans', category: 'General', privacy: 'open' })).id,
    (await buildRoom(admin, { name: 'Ops', category: 'General', privacy: 'open' })).id,
  ];
  await admin.ok('PATCH', '/api/v1/compliance/config', {
    adapters: [{ name: 'jsonl', type: 'jsonl' }],
  });
  const fileBytes = randomBytes(300_000);
  const res = await fetch(`${server.url}/api/v1/rooms/${rooms[0]}/files?name=plan.bin`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${users.alice.token}`,
      'content-type': 'application/octet-stream',
    },
    body: fileBytes,
  });
  assert.equal(res.status, 201, await res.clone().text());
  const fileId = ((await res.json()) as { message: { file: { id: number } } }).message.file.id;
  await users.bob.http.ok('POST', `/api/v1/rooms/${rooms[1]}/messages`, {
    text: 'the zqbackupword quarterly plan',
  });
  return { server, admin, users, rooms, fileId, fileBytes };
}

interface CreateAnswer {
  dir: string;
  edition: string;
  chat: { kind: string; counts: Record<string, number>; schema: string[] };
  compliance: { kind: string; counts: Record<string, number> } | null;
  files: { count: number; bytes: number };
  complianceOutput: { count: number } | null;
}

/**
 * Posts through four WebSocket clients, takes a backup in the middle of it, stops the posts,
 * and returns the backup's answer, the posts acknowledged before the backup started, and all.
 */
async function backupUnderTraffic(
  scene: Scene,
  outputDir: string,
  args: string[],
): Promise<{ created: CreateAnswer; before: Ack[]; all: Ack[]; during: number }> {
  const { server, users, rooms } = scene;
  await until('the compliance adapter output', () => {
    try {
      return fs.readdirSync(path.join(outputDir, 'jsonl')).some((f) => f.endsWith('.jsonl'));
    } catch {
      return false;
    }
  });
  const clients: { ws: WsClient; roomId: number; name: string }[] = [];
  for (const [i, user] of [users.alice, users.bob, users.alice, users.bob].entries()) {
    const ws = await openClient(server, user.token);
    const roomId = rooms[i % 2]!;
    const joined = await ws.request({ type: 'join', roomId });
    assert.equal(joined.type, 'reply', JSON.stringify(joined));
    clients.push({ ws, roomId, name: `${user.login}${i}` });
  }
  const traffic = new Traffic(clients);
  try {
    await traffic.count(40);
    const started = Date.now();
    const before = [...traffic.acks];
    const created = await perchJson<CreateAnswer>(['backup', 'create', ...args]);
    const finished = Date.now();
    const during = traffic.acks.filter((a) => a.at > started && a.at < finished).length;
    await traffic.count(traffic.acks.length + 10);
    return { created, before, all: traffic.acks, during };
  } finally {
    await traffic.stop(server);
    for (const c of clients) await c.ws.close();
  }
}

/**
 * The restored server against the original: the same rooms, every post acknowledged before the
 * backup started, nothing but acknowledged posts and no gap in any room's sequence, the file's
 * bytes, sign-in and search.
 */
async function checkRestored(
  restored: TestServer,
  scene: Scene,
  run: { created: CreateAnswer; before: Ack[]; all: Ack[] },
): Promise<void> {
  const admin = await adminHttp(restored);
  const alice = new Http(restored.url, await signIn(restored, 'alice', 'password-alice'));
  await signIn(restored, 'bob', 'password-bob');
  const rooms = async (server: TestServer) => {
    const http = new Http(server.url, await signIn(server, 'alice', 'password-alice'));
    const answer = await http.ok<unknown>('GET', '/api/v1/rooms');
    const list = (Array.isArray(answer) ? answer : (answer as { rooms: unknown[] }).rooms) as {
      id: number;
      name: string;
      privacy: string;
    }[];
    return list.map((r) => ({ id: r.id, name: r.name, privacy: r.privacy }));
  };
  assert.deepEqual(await rooms(restored), await rooms(scene.server), 'the same rooms');

  const acked = new Map(run.all.map((a) => [`${a.roomId}:${a.seq}`, a.text]));
  let messages = 0;
  for (const roomId of scene.rooms) {
    const got = await history(alice, roomId);
    messages += got.length;
    assert.deepEqual(
      got.map((m) => m.seq),
      got.map((_, i) => i + 1),
      `room ${roomId}: sequences 1..n with no gap`,
    );
    const bySeq = new Map(got.map((m) => [m.seq, m.text]));
    for (const a of run.before.filter((x) => x.roomId === roomId)) {
      assert.equal(
        bySeq.get(a.seq),
        a.text,
        `room ${roomId} seq ${a.seq} acknowledged before the backup`,
      );
    }
    for (const m of got) {
      const want = acked.get(`${roomId}:${m.seq}`);
      // The rest were posted before the traffic (the upload's message, the searched one).
      if (want !== undefined) assert.equal(m.text, want, `room ${roomId} seq ${m.seq}`);
    }
  }
  assert.equal(messages, run.created.chat.counts.messages, 'the messages the manifest counts');
  assert.ok(messages >= run.before.length + 2);

  assert.deepEqual(await download(restored, scene.users.alice, scene.fileId), scene.fileBytes);
  const found = await alice.ok<{ messages?: { text: string }[]; results?: { text: string }[] }>(
    'GET',
    '/api/v1/search/messages?query=zqbackupword',
  );
  assert.match(JSON.stringify(found), /the zqbackupword quarterly plan/);
  // The compliance configuration came back with the compliance store's records.
  const config = await admin.ok<{ adapters: { name: string }[] }>(
    'GET',
    '/api/v1/compliance/config',
  );
  assert.deepEqual(
    config.adapters.map((a) => a.name),
    ['jsonl'],
  );
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function mode(p: string): number {
  return fs.statSync(p).mode & 0o777;
}

describe('perch backup', () => {
  let sqliteBackup: string;
  let restoredDir: string;

  test('Standard Edition: a backup taken mid-traffic restores into an empty data dir and serves the same rooms, posts, files, users and search', async () => {
    const server = await startServer({
      dialect: 'sqlite',
      env: { PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS: '1', PERCH_COMPLIANCE_POLL_MS: '50' },
    });
    servers.push(server);
    const scene = await buildScene(server);
    sqliteBackup = path.join(work, 'sqlite-backup');
    const run = await backupUnderTraffic(scene, path.join(server.dataDir, 'compliance'), [
      '--data-dir',
      server.dataDir,
      '--out',
      sqliteBackup,
    ]);
    assert.ok(run.during > 0, 'posts were acknowledged while the backup ran');
    const { created } = run;
    assert.equal(created.edition, 'standard');
    assert.equal(created.chat.kind, 'sqlite');
    assert.equal(created.chat.counts.rooms, 2);
    assert.equal(created.chat.counts.files, 1);
    assert.equal(created.chat.counts.users, 3);
    assert.ok(created.chat.counts.messages! >= run.before.length + 2);
    assert.equal(created.compliance?.kind, 'sqlite');
    assert.ok(created.compliance!.counts.records! > 0);
    assert.equal(created.files.count, 1);
    assert.equal(created.files.bytes, scene.fileBytes.length);
    assert.ok(created.complianceOutput!.count >= 1);
    // Owner-only, and no -wal/-shm left beside the copies.
    assert.deepEqual(fs.readdirSync(sqliteBackup).sort(), [
      'chat.db',
      'compliance-output',
      'compliance.db',
      'files',
      'manifest.json',
    ]);
    assert.equal(mode(sqliteBackup), 0o700);
    for (const f of ['chat.db', 'compliance.db', 'manifest.json']) {
      assert.equal(mode(path.join(sqliteBackup, f)), 0o600, f);
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(sqliteBackup, 'manifest.json'), 'utf8'));
    assert.equal(manifest.format, 'perch-backup');
    assert.equal(manifest.perch, JSON.parse(fs.readFileSync('package.json', 'utf8')).version);
    assert.equal(manifest.chat.sha256, sha(path.join(sqliteBackup, 'chat.db')));
    const body = path.join(sqliteBackup, 'files', manifest.files.entries[0].path);
    assert.equal(mode(body), 0o600);
    assert.deepEqual(fs.readFileSync(body), scene.fileBytes);

    restoredDir = path.join(work, 'restored');
    const restore = await runPerch([
      'backup',
      'restore',
      '--from',
      sqliteBackup,
      '--data-dir',
      restoredDir,
      '--json',
    ]);
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stderr, /checksums match/);
    assert.match(restore.stderr, /chat store: restored/);
    const restored = JSON.parse(restore.stdout) as { chat: Record<string, number>; files: number };
    assert.deepEqual(restored.chat, created.chat.counts);
    assert.equal(restored.files, 1);
    assert.equal(mode(path.join(restoredDir, 'perch.db')), 0o600);
    assert.equal(mode(path.join(restoredDir, 'files')), 0o700);
    assert.ok(fs.readdirSync(path.join(restoredDir, 'compliance', 'jsonl')).length >= 1);

    const again = await startServer({ dataDir: restoredDir, adminPassword: server.adminPassword });
    servers.push(again);
    await checkRestored(again, scene, run);
    await again.stop();
  });

  test('restore refuses a missing folder, a damaged part, an edited manifest and a non-empty target, writing nothing', async () => {
    assert.ok(sqliteBackup, 'the round trip test ran first');
    const fresh = path.join(work, 'never-written');
    fails(
      await runPerch(['backup', 'restore', '--from', path.join(work, 'nope'), '--data-dir', fresh]),
      'backup_not_found',
    );
    const verified = await perchJson<{ ok: boolean }>(['backup', 'verify', '--from', sqliteBackup]);
    assert.equal(verified.ok, true);

    const damaged = (name: string, change: (dir: string) => void): string => {
      const dir = path.join(work, name);
      fs.cpSync(sqliteBackup, dir, { recursive: true });
      change(dir);
      return dir;
    };
    const flip = (file: string, at: number) => {
      const bytes = fs.readFileSync(file);
      bytes[at] = bytes[at]! ^ 0xff;
      fs.writeFileSync(file, bytes);
    };
    const chatFlipped = damaged('chat-flipped', (d) => flip(path.join(d, 'chat.db'), 5000));
    const bodyFlipped = damaged('body-flipped', (d) => {
      const [key] = fs.readdirSync(path.join(d, 'files'));
      flip(path.join(d, 'files', key!), 10);
    });
    const edited = damaged('manifest-edited', (d) => {
      const file = path.join(d, 'manifest.json');
      const m = JSON.parse(fs.readFileSync(file, 'utf8'));
      m.chat.counts.messages += 1;
      fs.writeFileSync(file, JSON.stringify(m, null, 2));
    });
    const notJson = damaged('manifest-garbled', (d) =>
      fs.writeFileSync(path.join(d, 'manifest.json'), '{"format": "perch-backup",'),
    );
    const unfinished = damaged('unfinished', (d) => fs.rmSync(path.join(d, 'manifest.json')));
    const [a, b, c, d, e] = await Promise.all(
      [chatFlipped, bodyFlipped, edited, notJson, unfinished].map((from) =>
        runPerch(['backup', 'restore', '--from', from, '--data-dir', fresh]),
      ),
    );
    fails(a!, 'backup_checksum_mismatch');
    assert.match(a!.stderr, /chat\.db/);
    fails(b!, 'backup_checksum_mismatch');
    assert.match(b!.stderr, /files\//);
    fails(c!, 'backup_manifest_invalid');
    assert.match(c!.stderr, /changed after the backup was written/);
    fails(d!, 'backup_manifest_invalid');
    fails(e!, 'backup_not_found');
    assert.equal(fs.existsSync(fresh), false, 'nothing was written');

    // Over the data dir restored before: refused, and it is left as it was.
    const before = sha(path.join(restoredDir, 'perch.db'));
    fails(
      await runPerch(['backup', 'restore', '--from', sqliteBackup, '--data-dir', restoredDir]),
      'backup_target_not_empty',
    );
    assert.equal(sha(path.join(restoredDir, 'perch.db')), before);
    // A backup never writes into a folder that holds something.
    fails(
      await runPerch(['backup', 'create', '--data-dir', restoredDir, '--out', sqliteBackup]),
      'backup_target_not_empty',
    );
    // A SQLite backup does not go into a PostgreSQL database.
    const cluster = await testCluster();
    const db = await cluster.createDatabase({ empty: true });
    databases.push(db.name);
    fails(
      await runPerch(['backup', 'restore', '--from', sqliteBackup, '--store', db.url]),
      'backup_incompatible',
    );
  });

  test('Enterprise store: pg_dump mid-traffic from the primary of a host list, pg_restore into empty databases, served again', async () => {
    const cluster = await testCluster();
    const compliance = await cluster.createDatabase({ empty: true });
    databases.push(compliance.name);
    const server = await startServer({
      dialect: 'postgres',
      env: {
        PERCH_COMPLIANCE_STORE_URL: compliance.url,
        PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS: '1',
        PERCH_COMPLIANCE_POLL_MS: '50',
      },
    });
    servers.push(server);
    const scene = await buildScene(server);
    // Two hosts, as a primary and its standby are given: the backup finds the primary.
    const hostList = (url: string) =>
      url.replace(
        `${cluster.host}:${cluster.port}`,
        `${cluster.host}:${cluster.port},${cluster.host}:${cluster.port}`,
      );
    const out = path.join(work, 'pg-backup');
    const run = await backupUnderTraffic(scene, path.join(server.dataDir, 'compliance'), [
      '--data-dir',
      server.dataDir,
      '--store',
      hostList(server.storeUrl!),
      '--compliance-store',
      compliance.url,
      '--out',
      out,
    ]);
    assert.equal(run.created.edition, 'enterprise');
    assert.equal(run.created.chat.kind, 'pg_dump');
    assert.equal(run.created.compliance?.kind, 'pg_dump');
    assert.equal(run.created.chat.counts.files, 1);
    assert.equal(run.created.files.bytes, scene.fileBytes.length);
    assert.ok(
      fs.readFileSync(path.join(out, 'chat.dump')).subarray(0, 5).equals(Buffer.from('PGDMP')),
    );

    const chat2 = await cluster.createDatabase({ empty: true });
    const compliance2 = await cluster.createDatabase({ empty: true });
    databases.push(chat2.name, compliance2.name);
    const files2 = path.join(work, 'pg-restored');
    const args = ['backup', 'restore', '--from', out, '--store', chat2.url, '--data-dir', files2];
    // The compliance store of this backup is PostgreSQL: it needs a database named for it.
    fails(await runPerch(args), 'backup_incompatible');
    const restored = await perchJson<{ chat: Record<string, number> }>([
      ...args,
      '--compliance-store',
      compliance2.url,
    ]);
    assert.deepEqual(restored.chat, run.created.chat.counts);
    // Not twice into the same database.
    const other = await cluster.createDatabase({ empty: true });
    databases.push(other.name);
    fails(
      await runPerch([
        ...args,
        '--compliance-store',
        other.url,
        '--files-dir',
        path.join(work, 'x'),
      ]),
      'backup_target_not_empty',
    );

    const again = await startServer({
      storeUrl: chat2.url,
      dataDir: files2,
      adminPassword: server.adminPassword,
      env: { PERCH_COMPLIANCE_STORE_URL: compliance2.url },
    });
    servers.push(again);
    await checkRestored(again, scene, run);
    await again.stop();
  });
});
