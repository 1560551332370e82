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

test('the directory file must be an absolute path', () => {
  const pool = { ...topology.pools[0]!, directory: 'directory.yaml' };
  const parsed = topologySchema.safeParse({ ...topology, pools: [pool] });
  assert.equal(parsed.success, false);
  assert.deepEqual(parsed.error!.issues[0]!.path, ['pools', 0, 'directory']);
});
