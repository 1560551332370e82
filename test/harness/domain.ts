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
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Principal } from '../../src/store/store.js';

export interface TestDomain {
  d: Domain;
  store: SqliteStore;
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
 * A real domain on a real SQLite file in a temp folder, with argon2 at low cost so that tests
 * stay fast. Nothing is mocked.
 */
export async function buildDomain(): Promise<TestDomain> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-domain-'));
  const store = SqliteStore.open({ file: path.join(dir, 'perch.db'), synchronous: 'normal' });
  await store.migrate();
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
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
