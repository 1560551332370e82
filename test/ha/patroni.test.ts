// Automatic failover in a site: the chat store on three PostgreSQL nodes managed by Patroni with
// etcd (examples/patroni/patroni.yml: synchronous_mode and synchronous_mode_strict on), a pool
// of two front ends given every node. While posts flow through fe1, the leader's machine dies
// (Patroni and PostgreSQL killed with SIGKILL); Patroni promotes the synchronous standby by
// itself, and the front ends find it. Every post fe1 acknowledged is in the store once, a
// client on fe2 receives every one live, in order, with no gap; the dead node, started again,
// rejoins as a replica of the new leader with every post. `perch pool promote` refuses to act
// behind Patroni's back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { runPerch } from '../cli/helpers.js';
import {
  adminHttp,
  ask,
  buildCategory,
  buildRoom,
  buildUsers,
  openClient,
} from '../e2e/helpers.js';
import { documentedCommands, perchOnPath } from '../harness/doc-commands.js';
import { startPatroni, type PatroniCluster, type PatroniNode } from '../harness/patroni.js';
import { assertNothingLost, outage, poster, startHaPool, until, type HaPool } from './helpers.js';

const SECTION = '## Automatic failover with Patroni, step by step';

let cluster: PatroniCluster;
let dir: string | undefined;
/** What the runbook's commands printed. */
let runbook: string;
let storeUrl: string;
let database: string;
let pool: HaPool;

before(async () => {
  const started = Date.now();
  cluster = await startPatroni({ nodes: 3 });
  process.stdout.write(`# etcd and 3 Patroni nodes healthy after ${Date.now() - started} ms\n`);
  database = `perch_patroni_${process.pid}`;
  // The runbook's bash step that creates the role (it asks for a password; loopback trusts).
  const leader = await cluster.waitHealthy();
  const admin = new pg.Client({ connectionString: cluster.nodeUrl(leader, 'postgres') });
  await admin.connect();
  await admin.query('CREATE ROLE perch LOGIN').finally(() => admin.end());
  runbook = runRunbook();
  storeUrl = cluster.storeUrl(database, 'perch');
  pool = await startHaPool(storeUrl);
  process.stdout.write(`# two front ends up after ${Date.now() - started} ms\n`);
});

/**
 * The sh blocks of the runbook's Patroni section, as one bash script, with this cluster's config
 * file, hosts and database in place of the example's; returns their output.
 */
function runRunbook(): string {
  const commands = documentedCommands('docs/operations/high-availability.md', SECTION);
  assert.ok(commands.some((c) => c.startsWith('perch db install')));
  const replace: [string, string][] = [
    ['/etc/patroni/config.yml', cluster.configFile(cluster.nodes[0]!)],
    ['db1.example.org:5432,db2.example.org:5432,db3.example.org:5432', cluster.hostList],
    ['perch_pool1', database],
  ];
  const script = [
    'set -euo pipefail',
    ...commands.map((c) => replace.reduce((line, [from, to]) => line.split(from).join(to), c)),
  ].join('\n');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PERCH_') && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-ha-doc-'));
  env.PATH = `${perchOnPath(dir)}${path.delimiter}${process.env.PATH ?? ''}`;
  const r = spawnSync('bash', ['-c', script], {
    cwd: dir,
    env,
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `the documented commands failed:\n${script}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

after(async () => {
  await pool?.stop();
  cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The Patroni role of a node as the cluster's REST API reports it. */
async function roleOf(node: PatroniNode): Promise<string | undefined> {
  return (await cluster.members()).find((m) => m.name === node.name)?.role;
}

/** The texts of the room's messages as stored on one node (a standby answers reads). */
async function textsOn(node: PatroniNode, roomId: number): Promise<string[]> {
  const client = new pg.Client({ connectionString: cluster.nodeUrl(node, database) });
  await client.connect();
  try {
    const r = await client.query<{ body: string }>(
      'SELECT body FROM messages WHERE room_id = $1 ORDER BY seq',
      [roomId],
    );
    return r.rows.map((row) => row.body);
  } finally {
    await client.end();
  }
}

test("the runbook's commands ran: patronictl lists a leader, a sync standby and a replica; the store is installed", () => {
  const roles = [...runbook.matchAll(/\| node\d +\| [\d.:]+ +\| ([A-Za-z ]+?) +\| (\w+) /g)];
  assert.deepEqual(roles.map((m) => m[1]).sort(), ['Leader', 'Replica', 'Sync Standby'], runbook);
  assert.ok(
    roles.every((m) => m[2] === 'running' || m[2] === 'streaming'),
    runbook,
  );
  assert.match(runbook, /CREATE DATABASE/);
});

test('perch pool promote refuses a store that Patroni manages', async () => {
  const refused = await runPerch(['pool', 'promote', '--store', storeUrl]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /store_managed_by_patroni/);
  assert.match(refused.stderr, /patronictl switchover/);
  for (const node of cluster.nodes) assert.match(refused.stderr, new RegExp(`:${node.port}`));
  // Nothing was touched: the leader still leads, with its synchronous standby.
  const leader = await cluster.waitHealthy();
  assert.equal((await cluster.members()).filter((m) => m.role === 'leader').length, 1);
  assert.equal(await roleOf(leader), 'leader');
});

test('the leader machine dies mid-traffic: Patroni promotes the sync standby, nothing acknowledged is lost, the old node rejoins', async () => {
  const { fe1, fe2 } = pool;
  const admin = await adminHttp(fe1);
  const { alice } = await buildUsers(fe1, admin, ['alice']);
  await buildCategory(admin, { name: 'General', allowed: ['alice'] });
  const room = await buildRoom(admin, { name: 'Lobby', category: 'General', members: ['alice'] });

  const leader = await cluster.waitHealthy();
  const syncStandby = (await cluster.members()).find((m) => m.role === 'sync_standby')!;

  // alice also listens on fe2: live delivery across front ends must survive the failover.
  const listener = await openClient(fe2, alice.token);
  await ask(listener, { type: 'join', roomId: room.id });

  const posting = poster(alice.http, room.id);
  await until('30 posts before the failure', () => posting.acks.length >= 30);
  await cluster.kill(leader);
  const killedAt = Date.now();
  const before = posting.acks.filter((a) => a.at <= killedAt).length;

  const newLeader = await cluster.waitHealthy({ except: leader });
  const promotedAt = Date.now();
  assert.equal(newLeader.name, syncStandby.name, 'Patroni promoted the synchronous standby');

  await until('30 posts after the failover', () => posting.acks.length >= before + 30).catch(
    (err: unknown) => {
      throw new Error(`${(err as Error).message}\n${fe1.logs().slice(-6000)}`);
    },
  );
  await posting.stop();
  // Reported, not asserted: timings on a shared machine are noise.
  process.stdout.write(
    `# without service for ${outage(posting.acks, killedAt)} ms (leader killed to first ack; ` +
      `Patroni had a new leader with a streaming sync standby after ${promotedAt - killedAt} ms), ` +
      `${posting.failures()} failed attempts, ${posting.acks.length} acknowledged posts\n`,
  );
  await assertNothingLost(alice.http, room.id, posting.acks, listener);
  await listener.close();

  // The dead machine comes back: Patroni rewinds its data if it must and makes it a replica.
  await cluster.start(leader);
  const texts = posting.acks.map((a) => a.text);
  const rejoinedAt = Date.now();
  for (;;) {
    const role = await roleOf(leader).catch(() => undefined);
    if (role === 'replica' || role === 'sync_standby') {
      const stored = await textsOn(leader, room.id).catch(() => []);
      if (stored.length === texts.length) break;
    }
    if (Date.now() - rejoinedAt > 90_000) {
      const log = fs.readFileSync(path.join(leader.dir, 'patroni.log'), 'utf8').slice(-4000);
      assert.fail(`${leader.name} did not rejoin as a replica within 90 s (role ${role})\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.deepEqual(await textsOn(leader, room.id), texts, 'the old leader has every post');
  assert.equal(await roleOf(newLeader), 'leader', 'the new leader stays leader');
  const log = fs.readFileSync(path.join(leader.dir, 'patroni.log'), 'utf8');
  process.stdout.write(
    `# ${leader.name} rejoined as a replica after ${Date.now() - rejoinedAt} ms` +
      `${/running pg_rewind/.test(log) ? ' (rewound with pg_rewind)' : ''}\n`,
  );
});
