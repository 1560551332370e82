import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadDirectoryConfig, readBindPassword } from './config.js';

function write(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-dircfg-'));
  const file = path.join(dir, 'directory.yaml');
  fs.writeFileSync(file, text);
  return file;
}

const minimal = `url: ldaps://dc1.example.org
bindDn: cn=perch,dc=example,dc=org
bindPasswordFile: secret
users:
  baseDn: ou=people,dc=example,dc=org
`;

test('a minimal file gets the OpenLDAP defaults and paths relative to itself', () => {
  const file = write(minimal);
  const c = loadDirectoryConfig(file);
  assert.equal(c.bindPasswordFile, path.join(path.dirname(file), 'secret'));
  assert.deepEqual(c.users.attributes, {
    id: 'entryUUID',
    login: 'uid',
    displayName: 'cn',
    email: 'mail',
  });
  assert.equal(c.users.filter, '(objectClass=inetOrgPerson)');
  assert.equal(c.startTls, false);
  assert.equal(c.groups, undefined);
  fs.writeFileSync(c.bindPasswordFile!, 's3cret\n');
  assert.equal(readBindPassword(c, {}), 's3cret');
});

test('every problem of a bad file is named, and the error has a stable code', () => {
  const file = write(
    'url: http://dc1\nbindDn: x\nbindPasswordFile: a\nbindPasswordEnv: B\nusers: { baseDn: o, filter: "uid=x" }\n',
  );
  assert.throws(
    () => loadDirectoryConfig(file),
    (err: Error & { code?: string; details?: { problems: string[] } }) => {
      assert.equal(err.code, 'directory_config_invalid');
      const problems = err.details!.problems.join('\n');
      assert.match(problems, /^url: /m);
      assert.match(problems, /^users\.filter: an LDAP filter in parentheses/m);
      return true;
    },
  );
  assert.throws(
    () => loadDirectoryConfig(write(minimal.replace('bindPasswordFile: secret', ''))),
    /exactly one of bindPasswordFile and bindPasswordEnv/,
  );
  assert.throws(
    () => loadDirectoryConfig(write(`${minimal}startTls: true\n`)),
    /startTls is for ldap:\/\/ URLs/,
  );
  assert.throws(() => loadDirectoryConfig('/nonexistent/directory.yaml'), {
    code: 'directory_config_invalid',
  });
});

test('a password from the environment; a missing variable is a typed error naming it only', () => {
  const c = loadDirectoryConfig(
    write(minimal.replace('bindPasswordFile: secret', 'bindPasswordEnv: PERCH_LDAP_PASSWORD')),
  );
  assert.equal(readBindPassword(c, { PERCH_LDAP_PASSWORD: 'from-env' }), 'from-env');
  assert.throws(() => readBindPassword(c, {}), {
    code: 'directory_config_invalid',
    message: /PERCH_LDAP_PASSWORD is not set/,
  });
});
