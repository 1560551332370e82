/**
 * A throwaway OpenLDAP server for tests: Debian's slapd with a generated slapd.conf in a temp
 * folder (schemas core, cosine, inetorgperson; an mdb database for dc=example,dc=org), listening
 * on free loopback ports for ldap:// (StartTLS offered) and ldaps://, with a self-signed
 * certificate for 127.0.0.1. The directory is changed with ldap-utils' ldapmodify, as an
 * administrator would. Stopped and removed when the process exits, however it exits.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './server.js';
import { selfSignedCertificate } from './tls.js';

const run = promisify(execFile);

export const SUFFIX = 'dc=example,dc=org';
export const ROOT_DN = `cn=admin,${SUFFIX}`;

export interface LdapServer {
  readonly dir: string;
  /** ldap://127.0.0.1:port (plain; StartTLS available). */
  readonly url: string;
  /** ldaps://127.0.0.1:port. */
  readonly ldapsUrl: string;
  /** The PEM certificate the server presents (self-signed; a client trusts it as its CA). */
  readonly caFile: string;
  readonly rootDn: string;
  readonly rootPassword: string;
  /** Applies LDIF change records (changetype add/modify/delete/modrdn) with ldapmodify. */
  modify(ldif: string): Promise<void>;
  /** Kills slapd (an outage); start() brings it back on the same ports and data. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops slapd and removes its folder. */
  destroy(): Promise<void>;
}

/** slapd: PATH, else /usr/sbin where Debian puts it. */
export function findSlapd(): string {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin']) {
    const file = path.join(dir, 'slapd');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  throw new Error(
    'slapd was not found on PATH or in /usr/sbin. Install the Debian packages `slapd` and ' +
      '`ldap-utils` (apt-get install slapd ldap-utils; .ci/run does this when they are missing).',
  );
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

function waitForPort(port: number, proc: ChildProcess, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        reject(new Error(`slapd exited (${proc.exitCode ?? proc.signalCode}) before listening`));
        return;
      }
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`slapd did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Starts slapd with a base tree (the suffix and the given LDIF entries, added offline). */
export async function startLdap(entries = ''): Promise<LdapServer> {
  const slapd = findSlapd();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-ldap-'));
  const db = path.join(dir, 'db');
  fs.mkdirSync(db);
  const { cert, key } = selfSignedCertificate(dir);
  const rootPassword = 'root-secret';
  const conf = path.join(dir, 'slapd.conf');
  fs.writeFileSync(
    conf,
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      `pidfile ${path.join(dir, 'slapd.pid')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'moduleload refint',
      `TLSCertificateFile ${cert}`,
      `TLSCertificateKeyFile ${key}`,
      'database mdb',
      'maxsize 67108864',
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw ${rootPassword}`,
      `directory ${db}`,
      'index objectClass eq',
      // As Active Directory does, a renamed or deleted entry is renamed or removed in groups.
      'overlay refint',
      'refint_attributes member',
      // Users may bind (authentication), read only what the service account reads.
      'access to attrs=userPassword by self write by anonymous auth by * none',
      'access to * by * read',
      '',
    ].join('\n'),
  );
  const base = `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n`;
  const ldif = path.join(dir, 'base.ldif');
  fs.writeFileSync(ldif, base + entries);
  // slapadd loads the tree offline, before slapd starts; it fills in entryUUID itself.
  execFileSync(path.join(path.dirname(slapd), 'slapadd'), ['-f', conf, '-l', ldif], {
    stdio: 'pipe',
  });
  const port = await freePort();
  const ldapsPort = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;
  let proc: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    // -d 0: stay in the foreground (so the test owns the process) without debug output.
    const p = spawn(slapd, ['-f', conf, '-h', `${url}/ ${ldapsUrl}/`, '-d', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    p.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    live.add(p);
    p.once('exit', () => live.delete(p));
    proc = p;
    try {
      await waitForPort(port, p, 20_000);
      await waitForPort(ldapsPort, p, 20_000);
    } catch (err) {
      p.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${stderr}`);
    }
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    dir,
    url,
    ldapsUrl,
    caFile: cert,
    rootDn: ROOT_DN,
    rootPassword,
    async modify(changes: string) {
      const child = run('ldapmodify', ['-x', '-H', url, '-D', ROOT_DN, '-w', rootPassword]);
      child.child.stdin!.end(changes);
      await child;
    },
    stop,
    start,
    async destroy() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A directory connection file for Perch pointing at this server, with the secret in a file. */
export function writeDirectoryFile(
  server: LdapServer,
  dir: string,
  overrides: Record<string, unknown> = {},
): string {
  const secret = path.join(dir, 'ldap-bind-password');
  fs.writeFileSync(secret, `${server.rootPassword}\n`, { mode: 0o600 });
  const config = {
    url: server.ldapsUrl,
    caFile: server.caFile,
    bindDn: server.rootDn,
    bindPasswordFile: secret,
    timeoutMs: 5000,
    users: {
      baseDn: `ou=people,${SUFFIX}`,
      filter: '(objectClass=inetOrgPerson)',
      disabledFilter: '(employeeType=disabled)',
    },
    groups: { baseDn: `ou=groups,${SUFFIX}`, filter: '(objectClass=groupOfNames)' },
    organizationalUnits: { baseDn: `ou=people,${SUFFIX}` },
    ...overrides,
  };
  const file = path.join(dir, 'directory.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}
