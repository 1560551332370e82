// The directory sync on a real domain and store against a real slapd: what an initial sync
// creates, StartTLS, and a directory that goes away in the middle of a sync.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadDirectoryConfig } from '../../src/directory/config.js';
import { LdapConnector } from '../../src/directory/ldap-connector.js';
import { syncDirectory } from '../../src/domain/directory/sync.js';
import { buildDomain, testDialects, type TestDomain } from '../harness/domain.js';
import { startLdap, writeDirectoryFile, type LdapServer } from '../harness/ldap.js';
import { FIXTURE, groupDn, passwordOf, userDn } from './fixture.js';

for (const dialect of testDialects()) {
  describe(`directory sync against OpenLDAP (domain, ${dialect})`, () => {
    let ldap: LdapServer;
    let t: TestDomain;

    before(async () => {
      ldap = await startLdap(FIXTURE);
      t = await buildDomain({ dialect });
    });

    after(async () => {
      await t?.close();
      await ldap?.destroy();
    });

    const names = async (groupName: string): Promise<string[]> => {
      const g = (await t.store.getPrincipalByName(groupName))!;
      const members = await t.store.getPrincipals(await t.store.listGroupMembers(g.id));
      return members.map((m) => m.name).sort();
    };

    it('reads users, groups and OUs over StartTLS and makes them principals with their links', async () => {
      t.d.directory = new LdapConnector(
        loadDirectoryConfig(
          writeDirectoryFile(ldap, t.dir, { url: ldap.url, startTls: true, caFile: ldap.caFile }),
        ),
      );
      const phases: string[] = [];
      const r = await syncDirectory(t.d, t.admin, { onProgress: (p) => phases.push(p.phase) });
      assert.deepEqual(phases, ['users', 'disabled users', 'groups', 'organisational units']);
      assert.deepEqual(r.read, { users: 3, groups: 3, ous: 3, skipped: [] });
      assert.deepEqual([...r.created].sort(), [
        'alice',
        'backend',
        'bob',
        'carol',
        'engineering',
        'engineering-all',
        'people',
        'sales',
        'staff',
      ]);
      const alice = (await t.store.getPrincipalByName('alice'))!;
      assert.equal(alice.source, 'ldap');
      assert.equal(alice.displayName, 'Alice Archer');
      assert.equal(alice.email, 'alice@example.org');
      assert.equal(await t.store.getPasswordHash(alice.id), null, 'no password is stored');
      const link = (await t.store.getDirectoryLink(alice.id))!;
      assert.equal(link.dn.toLowerCase(), userDn('alice', 'engineering').toLowerCase());
      assert.match(link.externalId, /^[0-9a-f-]{36}$/, 'entryUUID');
      assert.deepEqual(await names('staff'), ['carol', 'engineering-all']);
      assert.deepEqual(await names('engineering-all'), ['backend']);
      assert.deepEqual(await names('engineering'), ['alice', 'bob']);
      assert.deepEqual(await names('people'), ['engineering', 'sales']);
      // Nested: alice is in backend, engineering-all and staff, and in the OUs above her.
      const ancestry = await t.store.getPrincipals(await t.store.ancestry(alice.id));
      assert.deepEqual(ancestry.map((p) => p.name).sort(), [
        'alice',
        'backend',
        'engineering',
        'engineering-all',
        'people',
        'staff',
      ]);
      // The same directory again changes nothing.
      const again = await syncDirectory(t.d, t.admin);
      assert.deepEqual(
        [again.created, again.updated, again.memberships, again.removed],
        [[], [], [], []],
      );
    });

    it('a directory principal without its link (as a data import leaves it) is taken over, not duplicated', async () => {
      const t2 = await buildDomain({ dialect });
      try {
        t2.d.directory = t.d.directory;
        const imported = await t2.store.createPrincipal(
          { kind: 'user', name: 'alice', displayName: 'Old Name', source: 'ldap' },
          0,
        );
        const local = await t2.store.createPrincipal(
          { kind: 'user', name: 'bob', displayName: 'Local Bob' },
          0,
        );
        const r = await syncDirectory(t2.d, t2.admin);
        assert.ok(!r.created.includes('alice'));
        assert.deepEqual(
          r.conflicts.map((c) => c.name),
          ['bob'],
          'a local user is never taken over',
        );
        const alice = (await t2.store.getPrincipalByName('alice'))!;
        assert.equal(alice.id, imported.id);
        assert.equal(alice.displayName, 'Alice Archer');
        assert.ok(await t2.store.getDirectoryLink(alice.id));
        assert.equal(await t2.store.getDirectoryLink(local.id), undefined);
      } finally {
        await t2.close();
      }
    });

    it('checks a password with a bind as the user', async () => {
      const dn = userDn('bob', 'engineering');
      assert.equal(await t.d.directory!.verifyPassword(dn, passwordOf('bob')), true);
      assert.equal(await t.d.directory!.verifyPassword(dn, 'wrong'), false);
      assert.equal(await t.d.directory!.verifyPassword(dn, ''), false, 'no unauthenticated bind');
    });

    it('a directory that goes away part-way through a sync changes nothing and says so', async () => {
      await ldap.modify(
        `dn: ${groupDn('backend')}\nchangetype: modify\nadd: member\nmember: ${userDn('bob', 'engineering')}\n\n` +
          `dn: ${userDn('carol', 'sales')}\nchangetype: modify\nreplace: cn\ncn: Carol Changed\n`,
      );
      const before = JSON.stringify(await t.store.listPrincipals({ limit: 100, offset: 0 }));
      const backendBefore = await names('backend');
      await assert.rejects(
        syncDirectory(t.d, t.admin, {
          // The outage: slapd dies once the users have been read, before the groups are.
          onProgress: (p) => {
            if (p.phase === 'disabled users') void ldap.stop();
          },
        }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'directory_unavailable');
          assert.match(err.message, /ldap:\/\/127\.0\.0\.1:\d+/);
          assert.doesNotMatch(err.message, new RegExp(ldap.rootPassword));
          return true;
        },
      );
      assert.equal(JSON.stringify(await t.store.listPrincipals({ limit: 100, offset: 0 })), before);
      assert.deepEqual(await names('backend'), backendBefore);
      // Back up: the next sync applies both changes.
      await ldap.start();
      const r = await syncDirectory(t.d, t.admin);
      assert.deepEqual(r.updated, ['carol']);
      assert.deepEqual(r.memberships, [{ group: 'backend', added: ['bob'], removed: [] }]);
    });
  });
}
