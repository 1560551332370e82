// An Enterprise Edition topology on loopback against a real PostgreSQL cluster: `perch db install`
// on PostgreSQL stores; `perch topology publish` installs the chat, compliance and backup stores,
// records the topology and the active set, and run again changes nothing; `perch topology get`
// prints it without passwords; `perch serve --topology F --host H` starts front ends that answer
// over HTTPS and WSS with the certificate of the topology, the environment overriding the file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { stringify } from 'yaml';
import { runPerch } from '../cli/helpers.js';
import { freePort } from '../harness/server.js';
import { testCluster, type PostgresCluster } from '../harness/postgres.js';
import { connect } from '../harness/ws-client.js';
import {
  httpsJson,
  selfSignedCertificate,
  startFromTopology,
  type TopologyFrontEnd,
} from './helpers.js';

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/** The database's URL with a password in it (the test cluster trusts loopback and ignores it). */
function withPassword(url: string): string {
  return url.replace('postgres://postgres@', 'postgres://postgres:s3cret-pw@');
}

describe('perch db install on PostgreSQL', () => {
  let cluster: PostgresCluster;
  before(async () => {
    cluster = await testCluster();
  });

  test('creates a chat and a compliance store, then finds them up to date', async () => {
    const chat = await cluster.createDatabase({ empty: true });
    const compliance = await cluster.createDatabase({ empty: true });
    const args = ['db', 'install', '--store', chat.url, '--compliance-store', compliance.url];
    type Result = { state: string; applied: string[]; compliance: { state: string } };
    const first = await runPerch([...args, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const created = JSON.parse(first.stdout) as Result;
    assert.deepEqual([created.state, created.compliance.state], ['created', 'created']);
    assert.ok(created.applied.includes('006'));
    const tables = await query<{ t: string }>(
      chat.url,
      "SELECT table_name AS t FROM information_schema.tables WHERE table_name IN ('topology', 'front_ends', 'messages') ORDER BY 1",
    );
    assert.deepEqual(
      tables.map((r) => r.t),
      ['front_ends', 'messages', 'topology'],
    );
    const again = await runPerch(args);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/is up to date/g)?.length, 2, again.stdout);
  });

  test('a store that cannot be reached is a typed error', async () => {
    const r = await runPerch(['db', 'install', '--store', 'postgres://perch:pw@127.0.0.1:1/perch']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^perch: store_unreachable: cannot reach the store postgres:\/\/perch:\*\*\*@127\.0\.0\.1:1\/perch/m,
    );
    assert.doesNotMatch(r.stderr, /:pw@/);
  });
});

describe('a published enterprise topology, served over TLS', () => {
  let cluster: PostgresCluster;
  let dir: string;
  let file: string;
  let ca: Buffer;
  let chatUrl: string;
  let complianceUrl: string;
  let backupUrl: string;
  const ports: number[] = [];
  const running: TopologyFrontEnd[] = [];
  const adminPassword = 'Pw1!topology-admin';

  before(async () => {
    cluster = await testCluster();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-publish-'));
    const { cert, key } = selfSignedCertificate(dir);
    ca = fs.readFileSync(cert);
    const files = path.join(dir, 'files');
    fs.mkdirSync(files, { mode: 0o700 });
    chatUrl = withPassword((await cluster.createDatabase({ empty: true })).url);
    complianceUrl = withPassword((await cluster.createDatabase({ empty: true })).url);
    backupUrl = withPassword((await cluster.createDatabase({ empty: true })).url);
    ports.push(await freePort(), await freePort());
    file = path.join(dir, 'topology.yaml');
    fs.writeFileSync(
      file,
      stringify({
        version: 1,
        sites: [{ name: 'rome', defaultPool: 'chat1' }],
        stores: [
          { name: 'chat1-store', kind: 'chat', url: chatUrl },
          { name: 'chat1-compliance', kind: 'compliance', url: complianceUrl },
          { name: 'chat1-backup', kind: 'backup', url: backupUrl },
        ],
        pools: [
          {
            name: 'chat1',
            site: 'rome',
            edition: 'enterprise',
            chatStore: 'chat1-store',
            complianceStore: 'chat1-compliance',
            backupStore: 'chat1-backup',
            fileStore: files,
            tls: { cert, key },
            frontEnds: ports.map((port, i) => ({
              name: `fe${i + 1}`,
              host: `fe${i + 1}.test`,
              address: '127.0.0.1',
              port,
              publicUrl: `https://127.0.0.1:${port}`,
              dataDir: path.join(dir, `fe${i + 1}`),
            })),
            activeServers: ['fe1'],
          },
        ],
      }),
    );
  });

  after(async () => {
    await Promise.all(running.map((r) => r.stop()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('publish installs every store and records the topology; a second publish changes nothing', async () => {
    type Published = {
      changed: number;
      steps: { kind: string; subject: string; changed: boolean }[];
    };
    const first = await runPerch(['topology', 'publish', '--file', file, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const r1 = JSON.parse(first.stdout) as Published;
    assert.deepEqual(
      r1.steps.map((s) => [s.kind, s.subject, s.changed]),
      [
        ['store', 'chat1-store', true],
        ['store', 'chat1-compliance', true],
        ['store', 'chat1-backup', true],
        ['topology', 'chat1', true],
        ['active set', 'chat1', true],
      ],
    );
    // Progress: a line per step on standard error; no password anywhere.
    assert.match(first.stderr, /changed {3}store chat1-store: postgres:\/\/postgres:\*\*\*@/);
    assert.doesNotMatch(first.stderr + first.stdout, /s3cret-pw/);

    const second = await runPerch(['topology', 'publish', '--file', file]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.trim(), `Nothing to change: ${file} is published as it is.`);
    assert.equal(second.stderr.match(/^ {2}unchanged /gm)?.length, 5, second.stderr);

    // What the stores hold: one revision, the active set, every schema.
    const revisions = await query<{ revision: number }>(chatUrl, 'SELECT revision FROM topology');
    assert.deepEqual(revisions, [{ revision: 1 }]);
    const pools = await query<{ active_servers: string }>(
      chatUrl,
      "SELECT active_servers FROM pools WHERE name = 'chat1'",
    );
    assert.deepEqual(pools, [{ active_servers: '["fe1"]' }]);
    const backup = await query<{ n: string }>(
      backupUrl,
      'SELECT count(*) AS n FROM perch_migrations',
    );
    assert.ok(Number(backup[0]!.n) >= 5);
    const compliance = await query<{ n: string }>(
      complianceUrl,
      'SELECT count(*) AS n FROM compliance_migrations',
    );
    assert.ok(Number(compliance[0]!.n) >= 1);

    // An active set changed since is put back by the next publish, and only that.
    await query(chatUrl, `UPDATE pools SET active_servers = '["fe2"]' WHERE name = 'chat1'`);
    const third = await runPerch(['topology', 'publish', '--file', file, '--json']);
    assert.equal(third.code, 0, third.stderr);
    const r3 = JSON.parse(third.stdout) as Published;
    assert.deepEqual(
      r3.steps.filter((s) => s.changed).map((s) => s.kind),
      ['active set'],
    );
  });

  test('topology get prints the published topology without passwords', async () => {
    const r = await runPerch(['topology', 'get', '--store', chatUrl, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as {
      revision: number;
      topology: { pools: { name: string; activeServers: string[] }[]; stores: { url: string }[] };
    };
    assert.equal(got.revision, 1);
    assert.deepEqual(
      got.topology.pools.map((p) => [p.name, p.activeServers]),
      [['chat1', ['fe1']]],
    );
    assert.ok(got.topology.stores.every((s) => s.url.includes(':***@')));
    assert.doesNotMatch(r.stdout, /s3cret-pw/);
    const yaml = await runPerch(['topology', 'get', '--store', chatUrl]);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^# revision 1, published /);
    assert.match(yaml.stdout, /^ {6}- name: fe2\n {8}host: fe2.test$/m);

    const none = await cluster.createDatabase();
    const missing = await runPerch(['topology', 'get', '--store', none.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^perch: topology_not_published: /m);
  });

  test('serve --topology --host starts the front end of that host over HTTPS and WSS', async () => {
    const url = `https://127.0.0.1:${ports[0]}`;
    const fe1 = await startFromTopology(
      ['--topology', file, '--host', 'fe1.test'],
      `${url}/healthz`,
      ca,
      { PERCH_ADMIN_PASSWORD: adminPassword, PERCH_POOL_HEARTBEAT_MS: '200' },
    );
    running.push(fe1);
    const health = await httpsJson(`${url}/healthz`, ca);
    assert.deepEqual((health.body as { checks: { pool: unknown } }).checks.pool, {
      name: 'chat1',
      frontEnd: 'fe1',
      state: 'active',
    });
    const signIn = await httpsJson(`${url}/api/v1/sessions`, ca, {
      method: 'POST',
      body: { login: 'admin', password: adminPassword },
    });
    assert.equal(signIn.status, 201, JSON.stringify(signIn.body));
    const token = (signIn.body as { token: string }).token;
    const ws = await connect(`wss://127.0.0.1:${ports[0]}/ws`, { ca });
    try {
      const reply = await ws.request({ type: 'auth', token });
      assert.equal(reply.type, 'reply', JSON.stringify(reply));
    } finally {
      await ws.terminate();
    }
    // Only TLS on that port: a plain HTTP request gets no answer.
    await assert.rejects(fetch(`http://127.0.0.1:${ports[0]}/healthz`));
    // An untrusted certificate is refused by a client that checks.
    await assert.rejects(fetch(`${url}/healthz`));

    // The environment wins over the file: fe2 reports the public URL it is given.
    const fe2 = await startFromTopology(
      ['--topology', file, '--host', 'fe2.test'],
      `https://127.0.0.1:${ports[1]}/healthz`,
      ca,
      {
        PERCH_ADMIN_PASSWORD: adminPassword,
        PERCH_POOL_HEARTBEAT_MS: '200',
        PERCH_PUBLIC_URL: 'https://fe2.override.test:9',
      },
    );
    running.push(fe2);
    const pool = await httpsJson(`${url}/api/v1/pools/chat1`, ca, { token });
    assert.equal(pool.status, 200, JSON.stringify(pool.body));
    const view = pool.body as {
      activeServers: string[];
      frontEnds: { name: string; url: string; state: string }[];
    };
    assert.deepEqual(view.activeServers, ['fe1']);
    assert.deepEqual(
      view.frontEnds.map((f) => [f.name, f.state, f.url]),
      [
        ['fe1', 'active', url],
        ['fe2', 'idle', 'https://fe2.override.test:9'],
      ],
    );
  });

  test('serve --topology with a host the topology lacks is a typed error', async () => {
    const r = await runPerch(['serve', '--topology', file, '--host', 'nowhere.test']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^perch: topology_front_end: the topology has no host nowhere\.test \(it has fe1 on fe1\.test, fe2 on fe2\.test\)$/m,
    );
  });
});
