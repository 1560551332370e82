/**
 * Seeds a Standard Edition data dir for a load run directly through the store and domain: users
 * with pre-issued session tokens (so that the run measures chat, not thousands of argon2
 * sign-ins), categories and rooms with their members. Sign-in itself is timed separately on a
 * sample of users by the orchestrator.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { Argon2Hasher } from '../../src/auth/argon2-hasher.js';
import { createCategory } from '../../src/domain/categories/commands.js';
import { actorFor, bootstrap, hashToken } from '../../src/domain/directory/commands.js';
import { createDomain } from '../../src/domain/index.js';
import { createRoom } from '../../src/domain/rooms/commands.js';
import { EventBus } from '../../src/events.js';
import { DiskFileStore } from '../../src/files/disk-file-store.js';
import { createLogger } from '../../src/logger.js';
import { openStore } from '../../src/store/open-store.js';

export type Scenario = 'rooms20' | 'room1000' | 'mixed' | 'solo';

export interface SeededUser {
  login: string;
  token: string;
  /** Rooms the user joins. */
  rooms: number[];
  /** Rooms where the user may post. */
  postable: number[];
}

export interface SeedPlan {
  users: SeededUser[];
  rooms: { id: number; name: string; members: number }[];
  password: string;
}

export interface RoomSpec {
  name: string;
  type: 'normal' | 'auditorium';
  privacy: 'open' | 'closed';
  members: number[];
  presenters: number[];
}

/** Room layout per scenario, as lists of user indexes. */
function layout(scenario: Scenario, n: number, rand: () => number): RoomSpec[] {
  const range = (a: number, b: number) =>
    Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
  if (scenario === 'solo') {
    // One room per user: a post reaches its poster only (bench:throughput).
    return range(0, n).map((r) => ({
      name: `solo-${r}`,
      type: 'normal',
      privacy: 'closed',
      members: [r],
      presenters: [],
    }));
  }
  if (scenario === 'rooms20') {
    return range(0, Math.ceil(n / 20)).map((r) => ({
      name: `team-${r}`,
      type: 'normal',
      privacy: 'closed',
      members: range(r * 20, Math.min(n, r * 20 + 20)),
      presenters: [],
    }));
  }
  if (scenario === 'room1000') {
    return range(0, Math.ceil(n / 1000)).map((r) => ({
      name: `hall-${r}`,
      type: 'normal',
      privacy: 'closed',
      members: range(r * 1000, Math.min(n, r * 1000 + 1000)),
      presenters: [],
    }));
  }
  // mixed: every user in one or two team rooms of 10–50, one in ten in a 1,000-member
  // auditorium, and one open room followed by up to 5,000 users.
  const specs: RoomSpec[] = [];
  let i = 0;
  while (i < n) {
    const size = 10 + Math.floor(rand() * 41);
    specs.push({
      name: `team-${specs.length}`,
      type: 'normal',
      privacy: 'closed',
      members: range(i, Math.min(n, i + size)),
      presenters: [],
    });
    i += size;
  }
  const teams = specs.length;
  for (let t = 0; t < teams; t += 3) {
    const other = specs[Math.floor(rand() * teams)]!;
    specs[t]!.members.push(...other.members.slice(0, 5));
  }
  for (let a = 0; a * 10_000 < n; a++) {
    const members = range(a * 10_000, Math.min(n, a * 10_000 + 1000));
    specs.push({
      name: `auditorium-${a}`,
      type: 'auditorium',
      privacy: 'closed',
      members,
      presenters: members.slice(0, 10),
    });
  }
  specs.push({
    name: 'town-square',
    type: 'normal',
    privacy: 'open',
    members: range(0, Math.min(n, 5000)),
    presenters: [],
  });
  return specs;
}

/**
 * Seeds the store of `dataDir` (perch.db), or the PostgreSQL database `storeUrl` (already
 * migrated or empty) when given. `rooms`, when given, replaces the scenario's room layout
 * (bench:xmpp's rooms of given sizes).
 */
export async function seed(
  dataDir: string,
  scenario: Scenario,
  n: number,
  log: (line: string) => void,
  storeUrl?: string,
  rooms?: RoomSpec[],
): Promise<SeedPlan> {
  let state = 42;
  const rand = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const store = openStore(storeUrl ?? `sqlite://${path.join(dataDir, 'perch.db')}`, {
    sqliteSynchronous: 'normal',
    poolSize: 4,
  });
  await store.migrate();
  const quiet = createLogger('silent');
  const hasher = new Argon2Hasher({ memoryCost: 4096, timeCost: 1 });
  const d = createDomain({
    store,
    events: new EventBus(quiet),
    hasher,
    files: new DiskFileStore(path.join(dataDir, 'files')),
    secret: crypto.randomBytes(32),
    log: quiet,
  });
  const password = 'bench-password';
  await bootstrap(d, password);
  const admin = await actorFor(d, (await store.getPrincipalByName('admin'))!);
  // One real argon2 hash shared by every bench user: each can still sign in with the password.
  const hash = await hasher.hash(password);
  const now = Date.now();
  const users: SeededUser[] = [];
  const ids: number[] = [];
  for (let start = 0; start < n; start += 2000) {
    await store.transaction(async (tx) => {
      for (let i = start; i < Math.min(n, start + 2000); i++) {
        const login = `u${i}`;
        const p = await tx.createPrincipal(
          { kind: 'user', name: login, displayName: `User ${i}`, passwordHash: hash },
          now,
        );
        const token = crypto.randomBytes(24).toString('base64url');
        await tx.createSession(hashToken(token), p.id, now, now + 7 * 86_400_000);
        users.push({ login, token, rooms: [], postable: [] });
        ids.push(p.id);
      }
    });
    log(`  seeded ${Math.min(n, start + 2000)}/${n} users`);
  }
  const everyone = await store.createPrincipal(
    { kind: 'group', name: 'everyone', displayName: 'Everyone' },
    now,
  );
  for (let start = 0; start < ids.length; start += 5000)
    await store.addGroupMembers(everyone.id, ids.slice(start, start + 5000));
  await createCategory(d, admin, {
    name: 'Bench',
    allowed: ['everyone', 'admin'],
    creators: ['admin'],
  });
  const seeded: SeedPlan['rooms'] = [];
  const specs = rooms ?? layout(scenario, n, rand);
  for (const [k, spec] of specs.entries()) {
    const room = await createRoom(d, admin, {
      name: spec.name,
      category: 'Bench',
      privacy: spec.privacy,
      type: spec.type,
      members: spec.privacy === 'open' ? [] : [...new Set(spec.members)].map((i) => `u${i}`),
      presenters: spec.presenters.map((i) => `u${i}`),
    });
    for (const i of new Set(spec.members)) {
      users[i]!.rooms.push(room.id);
      // In the big open room only one user in a hundred posts (announcements), as in real
      // deployments; otherwise a third of all posts would each fan out to 5,000 users.
      const speaks = spec.privacy !== 'open' || i % 100 === 0;
      if ((spec.type === 'normal' && speaks) || spec.presenters.includes(i))
        users[i]!.postable.push(room.id);
    }
    seeded.push({ id: room.id, name: spec.name, members: new Set(spec.members).size });
    if ((k + 1) % 200 === 0) log(`  seeded ${k + 1}/${specs.length} rooms`);
  }
  await store.close();
  return { users, rooms: seeded, password };
}
