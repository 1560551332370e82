import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Argon2Hasher } from '../../src/auth/argon2-hasher.js';
import { actorFor, bootstrap } from '../../src/domain/directory/commands.js';
import type { DomainEvent } from '../../src/domain/events.js';
import { createDomain } from '../../src/domain/index.js';
import type { Actor, Domain } from '../../src/domain/types.js';
import { EventBus } from '../../src/events.js';
import { DiskFileStore } from '../../src/files/disk-file-store.js';
import { createLogger } from '../../src/logger.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Dialect, Principal, Store } from '../../src/store/store.js';
import { testCluster } from './postgres.js';

/**
 * The store dialect a test runs on when it does not say: PERCH_TEST_DIALECT (`sqlite` or
 * `postgres`), else SQLite.
 */
export function defaultDialect(): Dialect {
  const value = process.env.PERCH_TEST_DIALECT;
  if (value === undefined || value === '') return 'sqlite';
  if (value === 'sqlite' || value === 'postgres') return value;
  throw new Error(`PERCH_TEST_DIALECT must be sqlite or postgres, not "${value}"`);
}

/**
 * The dialects that suites covering every dialect run on: PERCH_TEST_DIALECT when set, else both.
 */
export function testDialects(): Dialect[] {
  return process.env.PERCH_TEST_DIALECT ? [defaultDialect()] : ['sqlite', 'postgres'];
}

/** A fresh, migrated, empty store: a file in `dir` on SQLite, a new database on PostgreSQL. */
export async function buildStore(
  dialect: Dialect,
  dir: string,
): Promise<{ store: Store; url: string; drop(): Promise<void> }> {
  if (dialect === 'sqlite') {
    const file = path.join(dir, 'perch.db');
    const store = SqliteStore.open({ file, synchronous: 'normal' });
    await store.migrate();
    return { store, url: file, drop: async () => {} };
  }
  const cluster = await testCluster();
  const { name, url } = await cluster.createDatabase();
  const store = PostgresStore.open({ connectionString: url, poolSize: 4 });
  await store.migrate();
  return { store, url, drop: () => cluster.dropDatabase(name) };
}

export interface TestDomain {
  d: Domain;
  store: Store;
  dialect: Dialect;
  /** The SQLite file, or the PostgreSQL connection string, of the store. */
  storeUrl: string;
  bus: EventBus;
  /** Every event published so far, in order. */
  events: DomainEvent[];
  dir: string;
  admin: Actor & { chatEnabled: boolean };
  /** Creates a user (password `password-<login>`) and returns it with its actor. */
  buildUser(
    login: string,
    opts?: { isAdmin?: boolean; displayName?: string },
  ): Promise<{ user: Principal; actor: Actor & { chatEnabled: boolean } }>;
  /** Creates a group containing the given principals (by name). */
  buildGroup(name: string, members?: string[]): Promise<Principal>;
  /** Re-reads an actor after directory changes (group membership, policies). */
  refresh(actor: Actor): Promise<Actor & { chatEnabled: boolean }>;
  close(): Promise<void>;
}

/**
 * A real domain on a real store (a SQLite file in a temp folder, or a fresh database in this
 * process's PostgreSQL cluster), with argon2 at low cost so that tests stay fast. Nothing is
 * mocked.
 */
export async function buildDomain(opts: { dialect?: Dialect } = {}): Promise<TestDomain> {
  const dialect = opts.dialect ?? defaultDialect();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-domain-'));
  const { store, url: storeUrl, drop } = await buildStore(dialect, dir);
  const log = createLogger('silent');
  const bus = new EventBus(log);
  const events: DomainEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const d = createDomain({
    store,
    events: bus,
    hasher: new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
    files: new DiskFileStore(path.join(dir, 'files')),
    secret: crypto.randomBytes(32),
    log,
  });
  await bootstrap(d, 'admin-password');
  const adminUser = (await store.getPrincipalByName('admin'))!;
  const admin = await actorFor(d, adminUser);
  return {
    d,
    store,
    dialect,
    storeUrl,
    bus,
    events,
    dir,
    admin,
    async buildUser(login, opts = {}) {
      const user = await store.createPrincipal(
        {
          kind: 'user',
          name: login,
          displayName: opts.displayName ?? login,
          isAdmin: opts.isAdmin ?? false,
          passwordHash: await d.hasher.hash(`password-${login}`),
        },
        d.clock(),
      );
      return { user, actor: await actorFor(d, user) };
    },
    async buildGroup(name, members = []) {
      const group = await store.createPrincipal(
        { kind: 'group', name, displayName: name },
        d.clock(),
      );
      const ps = await store.getPrincipalsByNames(members);
      await store.addGroupMembers(
        group.id,
        ps.map((p) => p.id),
      );
      d.access.invalidateDirectory();
      return group;
    },
    async refresh(actor) {
      d.access.invalidateDirectory();
      return actorFor(d, (await store.getPrincipal(actor.userId))!);
    },
    async close() {
      await store.close();
      await drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
