import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frontEndFromTopology } from './front-end.js';
import { topologySchema } from './schema.js';

const topology = topologySchema.parse({
  version: 1,
  sites: [{ name: 'rome', defaultPool: 'chat1' }],
  stores: [{ name: 'chat1-store', kind: 'chat', url: 'postgres://perch@db1:5432/perch' }],
  pools: [
    {
      name: 'chat1',
      site: 'rome',
      edition: 'enterprise',
      chatStore: 'chat1-store',
      fileStore: '/srv/perch/files',
      directory: '/etc/perch/directory.yaml',
      frontEnds: [{ name: 'fe1', host: 'fe1.example.org', port: 8443 }],
    },
  ],
});

test("a pool's directory file becomes PERCH_DIRECTORY_FILE of its front ends", () => {
  const { settings } = frontEndFromTopology(topology, { host: 'fe1.example.org' });
  assert.equal(settings.directoryFile, '/etc/perch/directory.yaml');
});

test("a front end's xmppPort becomes its PERCH_XMPP_PORT; without one there is no gateway", () => {
  assert.equal(
    frontEndFromTopology(topology, { host: 'fe1.example.org' }).settings.xmppPort,
    undefined,
  );
  const pool = topology.pools[0]!;
  const withXmpp = {
    ...topology,
    pools: [{ ...pool, frontEnds: [{ ...pool.frontEnds[0]!, xmppPort: 5222 }] }],
  };
  const { settings } = frontEndFromTopology(topologySchema.parse(withXmpp), {
    host: 'fe1.example.org',
  });
  assert.equal(settings.xmppPort, '5222');
});

test("an enterprise pool's XMPP listeners become PERCH_XMPP_PEERS of each of its front ends", () => {
  const pool = topology.pools[0]!;
  const withXmpp = topologySchema.parse({
    ...topology,
    pools: [
      {
        ...pool,
        frontEnds: [
          { ...pool.frontEnds[0]!, xmppPort: 5222 },
          { name: 'fe2', host: 'fe2.example.org', port: 8443 },
          { name: 'fe3', host: 'fe3.example.org', port: 8443, xmppPort: 5223 },
        ],
      },
    ],
  });
  for (const frontEnd of ['fe1', 'fe2', 'fe3'])
    assert.equal(
      frontEndFromTopology(withXmpp, { frontEnd }).settings.xmppPeers,
      'fe1=fe1.example.org:5222,fe3=fe3.example.org:5223',
    );
  assert.equal(frontEndFromTopology(topology, { frontEnd: 'fe1' }).settings.xmppPeers, undefined);
});

test('the directory file must be an absolute path', () => {
  const pool = { ...topology.pools[0]!, directory: 'directory.yaml' };
  const parsed = topologySchema.safeParse({ ...topology, pools: [pool] });
  assert.equal(parsed.success, false);
  assert.deepEqual(parsed.error!.issues[0]!.path, ['pools', 0, 'directory']);
});

test('with a backup site, every front end is given the replicas too; the backup site uses its file store', () => {
  const dr = topologySchema.parse({
    version: 1,
    sites: [
      { name: 'rome', defaultPool: 'chat1' },
      { name: 'milan', defaultPool: 'chat1' },
    ],
    stores: [
      { name: 'chat', kind: 'chat', url: 'postgres://perch@db1:5432,db2:5432/perch' },
      { name: 'comp', kind: 'compliance', url: 'postgres://perch@db1:5432,db2:5432/comp' },
      { name: 'backup', kind: 'backup', url: 'postgres://perch@db3:5432/perch' },
      { name: 'backup-comp', kind: 'compliance', url: 'postgres://perch@db3:5432/comp' },
    ],
    pools: [
      {
        name: 'chat1',
        site: 'rome',
        edition: 'enterprise',
        chatStore: 'chat',
        complianceStore: 'comp',
        backupStore: 'backup',
        backupSite: 'milan',
        backupComplianceStore: 'backup-comp',
        fileStore: '/srv/rome/files',
        backupFileStore: '/srv/milan/files',
        frontEnds: [
          { name: 'fe1', host: 'fe1', port: 8443 },
          { name: 'fe3', host: 'fe3', port: 8443, site: 'milan' },
        ],
      },
    ],
  });
  const rome = frontEndFromTopology(dr, { frontEnd: 'fe1' }).settings;
  const milan = frontEndFromTopology(dr, { frontEnd: 'fe3' }).settings;
  for (const settings of [rome, milan]) {
    assert.equal(settings.storeUrl, 'postgres://perch@db1:5432,db2:5432,db3:5432/perch');
    assert.equal(settings.complianceStoreUrl, 'postgres://perch@db1:5432,db2:5432,db3:5432/comp');
  }
  assert.equal(rome.fileStoreDir, '/srv/rome/files');
  assert.equal(milan.fileStoreDir, '/srv/milan/files');
});
