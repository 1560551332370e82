import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ValidationError } from '../errors.js';
import { readEnv, toConfig } from './config.js';
import { withConfigReference } from './reference.js';

test('defaults match the documented interface', () => {
  const c = toConfig(readEnv({}));
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8080);
  assert.ok(c.dataDir.endsWith('/data'));
});

test('reads only PERCH_* variables and validates them with the variable named', () => {
  const c = toConfig(readEnv({ PERCH_PORT: '9000', PERCH_HOST: '::1', PORT: '1' }));
  assert.equal(c.port, 9000);
  assert.equal(c.host, '::1');
  assert.throws(
    () => toConfig(readEnv({ PERCH_PORT: 'eighty' })),
    (err: unknown) => err instanceof ValidationError && /PERCH_PORT/.test(err.message),
  );
  assert.throws(() => toConfig(readEnv({ PERCH_ADMIN_PASSWORD: 'short' })), /PERCH_ADMIN_PASSWORD/);
});

test('README configuration reference is generated from the schema and up to date', () => {
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.equal(readme, withConfigReference(readme), 'run npm run docs:config');
});

test('PERCH_COMPLIANCE_LEASE_MS: 30 s by default, validated, and longer than two polls', () => {
  assert.equal(toConfig(readEnv({})).complianceLeaseMs, 30_000);
  assert.equal(toConfig(readEnv({ PERCH_COMPLIANCE_LEASE_MS: '3000' })).complianceLeaseMs, 3000);
  for (const bad of ['999', '3600001', '1.5', 'soon']) {
    assert.throws(
      () => toConfig(readEnv({ PERCH_COMPLIANCE_LEASE_MS: bad })),
      (err: unknown) =>
        err instanceof ValidationError && /PERCH_COMPLIANCE_LEASE_MS/.test(err.message),
      bad,
    );
  }
  assert.throws(
    () =>
      toConfig(readEnv({ PERCH_COMPLIANCE_LEASE_MS: '2000', PERCH_COMPLIANCE_POLL_MS: '1000' })),
    /PERCH_COMPLIANCE_LEASE_MS \(2000\) must be more than twice PERCH_COMPLIANCE_POLL_MS \(1000\)/,
  );
});

test('PERCH_XMPP_PEERS: name=host:port pairs, IPv6 in brackets; anything else is refused', () => {
  const ok = 'fe1=chat1.example.org:5222,fe2=[::1]:5223,fe3=10.0.0.3:5222';
  assert.equal(toConfig(readEnv({ PERCH_XMPP_PEERS: ok })).xmppPeers, ok);
  for (const bad of ['fe1=chat1.example.org', 'chat1:5222', 'fe1=::1:5222', 'fe1=a:1,,fe2=b:2']) {
    assert.throws(
      () => toConfig(readEnv({ PERCH_XMPP_PEERS: bad })),
      (err: unknown) => err instanceof ValidationError && /PERCH_XMPP_PEERS/.test(err.message),
      bad,
    );
  }
});

test('PERCH_STORE_POOL_SIZE: 10 by default, a whole number from 1 to 500', () => {
  assert.equal(toConfig(readEnv({})).storePoolSize, 10);
  assert.equal(toConfig(readEnv({ PERCH_STORE_POOL_SIZE: '40' })).storePoolSize, 40);
  for (const bad of ['0', '501', '2.5', 'many']) {
    assert.throws(
      () => toConfig(readEnv({ PERCH_STORE_POOL_SIZE: bad })),
      (err: unknown) => err instanceof ValidationError && /PERCH_STORE_POOL_SIZE/.test(err.message),
      bad,
    );
  }
});
