// High availability in a site: the chat store on a PostgreSQL primary with a synchronous
// standby; a pool of two front ends given both hosts. The primary crashes while posts flow
// through fe1, `perch pool promote` makes the standby the primary, and the front ends find it by
// themselves. Every post fe1 acknowledged is in the store afterwards, once, and a client on fe2
// (whose LISTEN connection broke too) receives every one live, in order, with no gap.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runPerch } from '../cli/helpers.js';
import {
  adminHttp,
  ask,
  buildCategory,
  buildRoom,
  buildUsers,
  openClient,
} from '../e2e/helpers.js';
import {
  crashCluster,
  startPostgres,
  startStandby,
  type PostgresCluster,
  type Standby,
} from '../harness/postgres.js';
import { assertNothingLost, outage, poster, startHaPool, until, type HaPool } from './helpers.js';

let primary: PostgresCluster;
let standby: Standby;
let storeUrl: string;
let pool: HaPool;

before(async () => {
  // Durable: synchronous_commit on, so that a commit waits for the synchronous standby.
  primary = await startPostgres({ durable: true });
  const db = await primary.createDatabase();
  standby = await startStandby(primary, { synchronous: true });
  storeUrl = `postgres://postgres@${primary.host}:${primary.port},${standby.host}:${standby.port}/${db.name}`;
  pool = await startHaPool(storeUrl);
});

after(async () => {
  await pool?.stop();
  standby?.stop();
  primary?.stop();
});

test('the primary crashes mid-traffic: promote the synchronous standby, nothing acknowledged is lost', async () => {
  const { fe1, fe2 } = pool;
  const admin = await adminHttp(fe1);
  const { alice } = await buildUsers(fe1, admin, ['alice']);
  await buildCategory(admin, { name: 'General', allowed: ['alice'] });
  const room = await buildRoom(admin, { name: 'Lobby', category: 'General', members: ['alice'] });

  // Asked while the primary is up, promote changes nothing.
  const idle = await runPerch(['pool', 'promote', '--store', storeUrl, '--json']);
  assert.equal(idle.code, 0, idle.stderr);
  assert.equal((JSON.parse(idle.stdout) as { action: string }).action, 'none');

  // alice also listens on fe2: live delivery across front ends must survive the failover.
  const listener = await openClient(fe2, alice.token);
  await ask(listener, { type: 'join', roomId: room.id });

  const posting = poster(alice.http, room.id);
  await until('30 posts before the crash', () => posting.acks.length >= 30);
  await crashCluster(primary);
  const crashedAt = Date.now();
  const before = posting.acks.filter((a) => a.at <= crashedAt).length;

  const promoted = await runPerch(['pool', 'promote', '--store', storeUrl]);
  assert.equal(promoted.code, 0, promoted.stderr);
  assert.match(promoted.stdout, new RegExp(`Promoted 127\\.0\\.0\\.1:${standby.port}`));
  assert.match(promoted.stdout, /unreachable/);

  await until('30 posts after the promotion', () => posting.acks.length >= before + 30).catch(
    (err: unknown) => {
      throw new Error(`${(err as Error).message}\n${fe1.logs().slice(-6000)}`);
    },
  );
  await posting.stop();
  // Reported, not asserted: timings on a shared machine are noise.
  process.stdout.write(
    `# without service for ${outage(posting.acks, crashedAt)} ms (crash to promote done to first ack), ` +
      `${posting.failures()} failed attempts, ${posting.acks.length} acknowledged posts\n`,
  );
  await assertNothingLost(alice.http, room.id, posting.acks, listener);
  await listener.close();

  // The crashed host stays down; asked again, promote finds the new primary and does nothing.
  const again = await runPerch(['pool', 'promote', '--store', storeUrl]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /is the primary; nothing to do/);
});
