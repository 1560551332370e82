// Disaster recovery across sites, following docs/operations/disaster-recovery.md step by step on
// loopback: site rome holds the chat store's primary (one durable PostgreSQL cluster with the
// chat and compliance databases) and front end fe1; site milan holds an asynchronous streaming
// replica of that cluster and the idle front end fe2. Posts flow through fe1; every rome process
// is killed with SIGKILL; `perch pool failover` promotes milan and makes fe2 active; the client
// moves to fe2 and keeps posting. Then rome is rebuilt as a replica of milan, `perch pool
// failback` switches back while posts flow, and milan is rebuilt as a replica of rome: the pool
// is Normal, and nothing acknowledged after the failover is lost. The posts lost by the failover
// (acknowledged in rome, not yet replicated) and the replication lag just before the kill are
// measured and printed, as are the times without service.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { stringify } from 'yaml';
import { envNames, type Config } from '../../src/config/config.js';
import type { PoolDrState } from '../../src/topology/disaster-recovery.js';
import { frontEndFromTopology } from '../../src/topology/front-end.js';
import type { Topology } from '../../src/topology/schema.js';
import { runPerch } from '../cli/helpers.js';
import { adminHttp, buildCategory, buildRoom, buildUsers, Http } from '../e2e/helpers.js';
import {
  killCluster,
  rebuildStandby,
  startPostgres,
  startStandby,
  stopCluster,
  type PostgresCluster,
  type Standby,
} from '../harness/postgres.js';
import { cleanup, startServer, type TestServer } from '../harness/server.js';

let rome: PostgresCluster;
let milan: Standby;
let dir: string;
let topologyFile: string;
let chatDb: string;
/** rome's WAL sender while it is stopped (continued in after() if the test fails first). */
let senderPid: number | undefined;
const servers: TestServer[] = [];

const POOL = 'pool1';
const adminPassword = 'Pw1!dr-admin-password';

/** The deployment: rome's primary and milan's replica of it, one front end in each site. */
function deployment(chatDb: string, complianceDb: string, ports = { fe1: 1, fe2: 2 }): Topology {
  const on = (c: { host: string; port: number }, db: string) =>
    `postgres://postgres@${c.host}:${c.port}/${db}`;
  return {
    version: 1,
    sites: [
      { name: 'rome', defaultPool: POOL },
      { name: 'milan', defaultPool: POOL },
    ],
    stores: [
      { name: 'chat', kind: 'chat', url: on(rome, chatDb) },
      { name: 'compliance', kind: 'compliance', url: on(rome, complianceDb) },
      { name: 'chat-backup', kind: 'backup', url: on(milan, chatDb) },
      { name: 'compliance-backup', kind: 'compliance', url: on(milan, complianceDb) },
    ],
    pools: [
      {
        name: POOL,
        site: 'rome',
        edition: 'enterprise',
        chatStore: 'chat',
        complianceStore: 'compliance',
        backupStore: 'chat-backup',
        backupSite: 'milan',
        backupComplianceStore: 'compliance-backup',
        fileStore: path.join(dir, 'files-rome'),
        backupFileStore: path.join(dir, 'files-milan'),
        frontEnds: [
          { name: 'fe1', host: '127.0.0.1', address: '127.0.0.1', port: ports.fe1 },
          { name: 'fe2', host: '127.0.0.2', address: '127.0.0.1', port: ports.fe2, site: 'milan' },
        ],
        activeServers: ['fe1'],
      },
    ],
  };
}

/** The environment `perch serve --topology` gives a front end (its stores, file store, pool). */
function frontEndEnv(topology: Topology, name: string): Record<string, string> {
  const { settings } = frontEndFromTopology(topology, { frontEnd: name });
  const env: Record<string, string> = { PERCH_POOL_HEARTBEAT_MS: '500' };
  for (const key of [
    'storeUrl',
    'complianceStoreUrl',
    'fileStoreDir',
    'pool',
    'frontEnd',
  ] as (keyof Config)[]) {
    env[envNames[key]] = settings[key]!;
  }
  return env;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-dr-'));
  for (const site of ['files-rome', 'files-milan'])
    fs.mkdirSync(path.join(dir, site), { mode: 0o700 });
  // Durable: synchronous_commit on, as a deployment runs it.
  rome = await startPostgres({ durable: true });
  const chat = await rome.createDatabase();
  chatDb = chat.name;
  const compliance = await rome.createDatabase({ empty: true });
  // Milan: an asynchronous streaming replica of rome's whole cluster (both databases).
  milan = await startStandby(rome, { synchronous: false });
  const draft = deployment(chat.name, compliance.name);
  const start = (name: string) =>
    startServer({
      storeUrl: frontEndEnv(draft, name).PERCH_STORE_URL,
      adminPassword,
      startDeadlineMs: 90_000,
      env: frontEndEnv(draft, name),
    });
  servers.push(await start('fe1'));
  servers.push(await start('fe2'));
  const topology = deployment(chat.name, compliance.name, {
    fe1: servers[0]!.port,
    fe2: servers[1]!.port,
  });
  topologyFile = path.join(dir, 'topology.yaml');
  fs.writeFileSync(topologyFile, stringify(topology));
});

after(async () => {
  try {
    if (senderPid !== undefined) process.kill(senderPid, 'SIGCONT');
  } catch {
    // Gone with its cluster.
  }
  for (const s of servers) await cleanup(s).catch(() => {});
  milan?.stop();
  rome?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Ack {
  text: string;
  at: number;
  via: string;
}

/**
 * Posts one message after another until told to stop, through the first front end that takes
 * it: a failed post (no answer, an error, front_end_idle) is sent again with the same clientId
 * (never written twice) to the next front end after 100 ms, as a client moves on.
 */
function poster(frontEnds: { name: string; http: Http }[], roomId: number) {
  const acks: Ack[] = [];
  let failures = 0;
  let stopping = false;
  let current = 0;
  const done = (async () => {
    for (let i = 0; !stopping && i < 20_000; i++) {
      const text = `post ${i}`;
      for (let attempt = 0; !stopping; attempt++) {
        const fe = frontEnds[current]!;
        const answer = await fe.http
          .call('POST', `/api/v1/rooms/${roomId}/messages`, { text, clientId: `c-${i}` })
          .catch(() => ({ status: 0, body: {} }));
        if (answer.status === 200 || answer.status === 201) {
          acks.push({ text, at: Date.now(), via: fe.name });
          break;
        }
        failures += 1;
        if (attempt > 3_000) throw new Error(`post ${i} failed for five minutes: ${answer.status}`);
        current = (current + 1) % frontEnds.length;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  })();
  return {
    acks,
    failures: () => failures,
    async stop() {
      stopping = true;
      await done;
    },
  };
}

async function until(what: string, check: () => boolean, deadlineMs = 120_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `perch pool ...` with the topology; fails the test on a non-zero exit. */
async function perchPool(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await runPerch(['pool', ...args, '--pool', POOL, '--topology', topologyFile]);
  assert.equal(r.code, 0, `perch pool ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

async function poolState(): Promise<PoolDrState> {
  return JSON.parse((await perchPool(['state', '--json'])).stdout) as PoolDrState;
}

/** Every message of a room, oldest first, a page of 500 at a time. */
async function allMessages(http: Http, roomId: number): Promise<string[]> {
  const texts: string[] = [];
  for (let after = 0; ;) {
    const page = await http.ok<{ messages: { text: string; seq: number }[] }>(
      'GET',
      `/api/v1/rooms/${roomId}/messages?after=${after}&limit=500`,
    );
    texts.push(...page.messages.map((m) => m.text));
    if (page.messages.length < 500) return texts;
    after = page.messages.at(-1)!.seq;
  }
}

const started = Date.now();
/** Where the time goes, in the test's output. */
function mark(what: string): void {
  process.stdout.write(`# ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}\n`);
}

/** The longest time between two acknowledgements from `from` on: the time without service. */
function longestGap(acks: Ack[], from: number, to = Infinity): number {
  const times = acks.map((a) => a.at);
  let gap = 0;
  for (let i = 1; i < times.length; i++) {
    if (times[i]! >= from && times[i - 1]! <= to) gap = Math.max(gap, times[i]! - times[i - 1]!);
  }
  return gap;
}

test('cross-site failover with rome killed, failback with rome rebuilt: Normal, nothing acknowledged after the failover lost', async () => {
  const [fe1, fe2] = servers as [TestServer, TestServer];
  const hostOf = (c: { host: string; port: number }) => `${c.host}:${c.port}`;

  // Runbook "Before a disaster": validate and publish; the pool is Normal, milan streams.
  const validated = await runPerch(['topology', 'validate', '--file', topologyFile, '--offline']);
  assert.equal(validated.code, 0, validated.stdout + validated.stderr);
  const published = await runPerch(['topology', 'publish', '--file', topologyFile]);
  assert.equal(published.code, 0, published.stderr);
  assert.match(published.stderr, /chat-backup.*replica on .*: its schema arrives by replication/);
  const normal = await poolState();
  assert.equal(normal.state, 'normal');
  assert.deepEqual(normal.primary, { host: hostOf(rome), site: 'rome' });
  assert.deepEqual(normal.activeServers, ['fe1']);
  const replica = normal.hosts.find((h) => h.host === hostOf(milan))!;
  assert.equal(replica.role, 'standby');
  assert.equal(replica.site, 'milan');
  assert.equal(replica.receiver, 'streaming');
  assert.equal(normal.replication[0]?.syncState, 'async');

  mark('published; Normal');
  const admin = await adminHttp(fe1);
  const { alice } = await buildUsers(fe1, admin, ['alice']);
  await buildCategory(admin, { name: 'General', allowed: ['alice'] });
  const room = await buildRoom(admin, { name: 'Lobby', category: 'General', members: ['alice'] });
  const via = (s: TestServer, name: string) => ({ name, http: new Http(s.url, alice.token) });
  const posting = poster([via(fe1, 'fe1'), via(fe2, 'fe2')], room.id);

  // While rome answers, a failover is refused, saying how to fence it.
  const refused = await runPerch(['pool', 'failover', '--pool', POOL, '--topology', topologyFile]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /failover_refused: .*still answers as the primary.*fence it first/);

  // Runbook step 1 happens to us: rome is lost while milan lags behind. A link that falls
  // behind is made by stopping rome's WAL sender (SIGSTOP) while posts go on: their WAL never
  // leaves rome. The lag is read on rome just before the kill, what milan replayed right after.
  await until('40 posts through fe1', () => posting.acks.length >= 40);
  const onMilan = async <T>(sql: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: `postgres://postgres@${hostOf(milan)}/${chatDb}` });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows[0] as T;
    } finally {
      await c.end();
    }
  };
  const onRome = async <T>(sql: string) => {
    const c = new pg.Client({ connectionString: rome.url('postgres') });
    await c.connect();
    try {
      return (await c.query(sql)).rows[0] as T;
    } finally {
      await c.end();
    }
  };
  senderPid = (await onRome<{ pid: number }>('SELECT pid FROM pg_stat_replication')).pid;
  process.kill(senderPid, 'SIGSTOP');
  const pausedAt = posting.acks.length;
  await until('20 posts while rome sends nothing', () => posting.acks.length >= pausedAt + 20);
  const lag = await onRome<{ bytes: number; unsent: number; seconds: number | null }>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS bytes,
            pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::float8 AS unsent,
            EXTRACT(epoch FROM now() - reply_time)::float8 AS seconds FROM pg_stat_replication`,
  );
  mark('killing rome');
  await Promise.all([killCluster(rome), fe1.kill9()]);
  const killedAt = Date.now();
  const ackedBeforeKill = posting.acks.filter((a) => a.at <= killedAt);
  const replayed = (
    await onMilan<{ seq: number }>('SELECT last_seq::int AS seq FROM rooms WHERE id = $1', [
      room.id,
    ])
  ).seq;
  senderPid = undefined; // killed with rome

  // Step 3: a failover asking for a backup no older than 0 s is refused, and says why.
  const behind = await runPerch([
    'pool',
    'failover',
    '--pool',
    POOL,
    '--topology',
    topologyFile,
    '--max-lag',
    '0',
  ]);
  assert.equal(behind.code, 1);
  assert.match(
    behind.stderr,
    /failover_refused: the backup store's newest transaction is .* old, more than --max-lag 0 s/,
  );

  // Step 4: fail over.
  mark('failover refused twice; failing over');
  const failedOver = await perchPool(['failover']);
  const failoverDoneAt = Date.now();
  assert.match(failedOver.stderr, new RegExp(`changed +promote: promoted ${hostOf(milan)}`));
  assert.match(failedOver.stderr, /changed +state: Normal -> FailedOver/);
  assert.match(failedOver.stderr, /changed +active set: fe2 \(site milan\)/);
  const again = await perchPool(['failover']);
  assert.match(again.stderr, /unchanged promote: .* is the primary already/);
  assert.doesNotMatch(again.stderr, /^changed/m);

  mark('failed over');
  const state = await poolState();
  assert.equal(state.state, 'failed-over');
  assert.deepEqual(state.primary, { host: hostOf(milan), site: 'milan' });
  assert.deepEqual(state.activeServers, ['fe2']);
  assert.equal(state.fileStore, path.join(dir, 'files-milan'));
  assert.equal(state.complianceStore, 'compliance-backup');

  // The client moved to fe2 and posts there.
  await until(
    '30 posts through fe2 after the failover',
    () => posting.acks.filter((a) => a.at > killedAt && a.via === 'fe2').length >= 30,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${fe2.logs().slice(-6000)}`);
  });
  const kept = new Set(await allMessages(new Http(fe2.url, alice.token), room.id));
  const lost = ackedBeforeKill.filter((a) => !kept.has(a.text));
  // What is lost is the tail that had not reached milan: everything before it is there.
  const firstLost = lost.length === 0 ? ackedBeforeKill.length : ackedBeforeKill.indexOf(lost[0]!);
  assert.deepEqual(
    lost.map((a) => a.text),
    ackedBeforeKill.slice(firstLost).map((a) => a.text),
    'only the newest posts, those not yet replicated, are lost',
  );
  // Posts are the room's sequence 1..n: milan had replayed the first `replayed` at the kill.
  // Lost are at most the rest (WAL already on its way over the link arrives after the kill).
  const behindAtKill = ackedBeforeKill.length - replayed;
  assert.ok(lost.length <= behindAtKill, `${lost.length} lost, ${behindAtKill} not replayed`);
  const lastBefore = ackedBeforeKill.at(-1)!;
  const firstAfter = posting.acks.find((a) => a.at > killedAt)!;
  process.stdout.write(
    `# cross-site failover: replication lag just before the kill ${lag.bytes} bytes ` +
      `(${lag.unsent} not sent), ${(lag.seconds ?? 0).toFixed(1)} s since milan's last reply ` +
      `(pg_stat_replication); ` +
      `${behindAtKill} acknowledged posts not replayed on milan at the kill; ` +
      `${lost.length} of ${ackedBeforeKill.length} acknowledged posts lost ` +
      `(window ${lost.length > 0 ? lastBefore.at - lost[0]!.at : 0} ms); without service ` +
      `${firstAfter.at - lastBefore.at} ms (kill to failover done ${failoverDoneAt - killedAt} ms)\n`,
  );

  // Failback, step 1: rome's server is rebuilt as a replica of milan, its front end restarted.
  mark('posting through fe2; rebuilding rome');
  await Promise.all([rebuildStandby(rome, milan), fe1.restart()]);
  const rebuilt = await poolState();
  const romeHost = rebuilt.hosts.find((h) => h.host === hostOf(rome))!;
  assert.equal(romeHost.role, 'standby');

  // Step 2: fail back while posts flow through fe2.
  mark('rome rebuilt, fe1 restarted');
  const acksBeforeFailback = posting.acks.length;
  const failbackStartedAt = Date.now();
  const back = await perchPool(['failback']);
  const failbackDoneAt = Date.now();
  assert.match(back.stderr, /changed +synchronous: .* waits for .* on every commit/);
  assert.match(back.stderr, new RegExp(`changed +fence: ${hostOf(milan)} refuses writes now`));
  assert.match(back.stderr, new RegExp(`changed +promote: promoted ${hostOf(rome)}`));
  assert.match(back.stderr, /changed +state: FailedOver -> Normal/);
  assert.match(back.stderr, /changed +active set: fe1 \(site rome\)/);
  assert.match(back.stderr, /backup site: .* is read-only: rebuild it as a replica/);
  mark('failed back');
  const backAgain = await perchPool(['failback']);
  assert.doesNotMatch(backAgain.stderr, /^changed/m);

  // Step 3: milan is rebuilt as a replica of rome again.
  mark('rebuilding milan');
  await stopCluster(milan);
  await rebuildStandby(milan, rome);

  await until(
    '30 posts through fe1 after the failback',
    () => posting.acks.filter((a) => a.at > failbackDoneAt && a.via === 'fe1').length >= 30,
  );
  mark('posted through fe1');
  await posting.stop();

  const final = await poolState();
  assert.equal(final.state, 'normal');
  assert.deepEqual(final.primary, { host: hostOf(rome), site: 'rome' });
  assert.deepEqual(final.activeServers, ['fe1']);
  assert.equal(final.fileStore, path.join(dir, 'files-rome'));
  const milanAgain = final.hosts.find((h) => h.host === hostOf(milan))!;
  assert.equal(milanAgain.role, 'standby');

  // Every post acknowledged after the failover is there once; before it, all but the lost tail.
  const texts = await allMessages(new Http(fe1.url, alice.token), room.id);
  assert.equal(new Set(texts).size, texts.length, 'no post twice');
  const lostTexts = new Set(lost.map((a) => a.text));
  assert.deepEqual(
    texts,
    posting.acks.filter((a) => !lostTexts.has(a.text)).map((a) => a.text),
    'history is every acknowledged post but the lost tail, in order',
  );
  process.stdout.write(
    `# failback: without service ${longestGap(posting.acks, failbackStartedAt, failbackDoneAt)} ms ` +
      `(failback command ${failbackDoneAt - failbackStartedAt} ms, ` +
      `${posting.acks.length - acksBeforeFailback} posts acknowledged since it began); ` +
      `${posting.acks.length} acknowledged in all, ${posting.failures()} failed attempts\n`,
  );
});
