// The directory the directory suites start from: OUs people/engineering and people/sales,
// users alice and bob (engineering) and carol (sales), and nested groups
// backend ⊂ engineering-all ⊂ staff, with carol directly in staff.
import { SUFFIX } from '../harness/ldap.js';

export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;

export function userDn(uid: string, ou: 'engineering' | 'sales'): string {
  return `uid=${uid},ou=${ou},${PEOPLE}`;
}

export function groupDn(cn: string): string {
  return `cn=${cn},${GROUPS}`;
}

/** The directory password of a fixture user. */
export function passwordOf(uid: string): string {
  return `dir-${uid}-secret`;
}

function user(uid: string, ou: 'engineering' | 'sales', name: string): string {
  return [
    `dn: ${userDn(uid, ou)}`,
    'objectClass: inetOrgPerson',
    `uid: ${uid}`,
    `cn: ${name}`,
    `sn: ${name.split(' ').at(-1)}`,
    `mail: ${uid}@example.org`,
    `userPassword: ${passwordOf(uid)}`,
    '',
    '',
  ].join('\n');
}

function ou(dn: string, name: string): string {
  return `dn: ${dn}\nobjectClass: organizationalUnit\nou: ${name}\n\n`;
}

function group(cn: string, members: string[]): string {
  return [
    `dn: ${groupDn(cn)}`,
    'objectClass: groupOfNames',
    `cn: ${cn}`,
    `description: the ${cn} group`,
    ...members.map((m) => `member: ${m}`),
    '',
    '',
  ].join('\n');
}

export const FIXTURE =
  ou(PEOPLE, 'people') +
  ou(`ou=engineering,${PEOPLE}`, 'engineering') +
  ou(`ou=sales,${PEOPLE}`, 'sales') +
  ou(GROUPS, 'groups') +
  user('alice', 'engineering', 'Alice Archer') +
  user('bob', 'engineering', 'Bob Baker') +
  user('carol', 'sales', 'Carol Cooper') +
  group('backend', [userDn('alice', 'engineering')]) +
  group('engineering-all', [groupDn('backend')]) +
  group('staff', [groupDn('engineering-all'), userDn('carol', 'sales')]);

/** LDIF adding a user (an ldapmodify change record). */
export function addUser(uid: string, ouName: 'engineering' | 'sales', name: string): string {
  const [dn, ...rest] = user(uid, ouName, name).split('\n');
  return [dn, 'changetype: add', ...rest].join('\n');
}
