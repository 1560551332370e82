import assert from 'node:assert/strict';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { createCategory, type CategoryView } from '../../src/domain/categories/commands.js';
import { SignInThrottle } from '../../src/domain/directory/throttle.js';
import { createRoom, type RoomView } from '../../src/domain/rooms/commands.js';
import type { Actor } from '../../src/domain/types.js';
import { PerchError } from '../../src/errors.js';
import { buildDomain, type TestDomain } from './domain.js';

/**
 * Runs `fn` with a fresh domain and always closes it. Tests that share one domain across many
 * cases use `buildDomain()` in `before`/`after` instead.
 */
export async function withDomain(fn: (t: TestDomain) => Promise<void>): Promise<void> {
  const t = await buildDomain();
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** Awaits `promise` and checks that it rejects with a PerchError carrying `code`. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<PerchError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected ${code}, but the call succeeded`);
  assert.ok(caught instanceof PerchError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  return caught;
}

/** Replaces the domain clock (and the sign-in throttle that reads it) by a settable one. */
export function useFakeClock(t: TestDomain, start = Date.UTC(2024, 0, 15, 12)) {
  const clock = { now: start };
  t.d.clock = () => clock.now;
  t.d.throttle = new SignInThrottle(t.d.clock);
  return clock;
}

/** Users by login; each gets the password `password-<login>` (see buildDomain). */
export async function buildUsers<const L extends string>(
  t: TestDomain,
  logins: readonly L[],
): Promise<Record<L, Actor & { chatEnabled: boolean }>> {
  const out = {} as Record<L, Actor & { chatEnabled: boolean }>;
  for (const login of logins) out[login] = (await t.buildUser(login)).actor;
  return out;
}

/** A category made by the administrator; lists default to nothing, history on. */
export function buildCategory(
  t: TestDomain,
  input: {
    name: string;
    allowed?: string[];
    denied?: string[];
    creators?: string[];
    fileUpload?: boolean;
    invitations?: boolean;
    history?: boolean;
  },
): Promise<CategoryView> {
  return createCategory(t.d, t.admin, input);
}

/** A room made by `actor` (the administrator by default, who is in no scope and so no manager). */
export function buildRoom(
  t: TestDomain,
  input: Record<string, unknown> & { name: string; category: string },
  actor: Actor = t.admin,
): Promise<RoomView> {
  return createRoom(t.d, actor, input);
}

/** A category `General` in which the given users are allowed, and the first one is a creator. */
export async function buildWorld<const L extends string>(
  t: TestDomain,
  logins: readonly L[],
  category: Partial<Parameters<typeof buildCategory>[1]> = {},
) {
  const users = await buildUsers(t, logins);
  const cat = await buildCategory(t, {
    name: 'General',
    allowed: [...logins],
    creators: logins.slice(0, 1),
    ...category,
  });
  return { users, category: cat };
}

export interface ActivityRow {
  id: number;
  kind: string;
  actor_id: number | null;
  room_id: number | null;
  payload: Record<string, unknown>;
}

/**
 * Reads the compliance outbox through a second connection to the store, so that a test sees
 * exactly what has been committed.
 */
export async function activityRows(t: TestDomain, afterId = 0): Promise<ActivityRow[]> {
  const query =
    'SELECT id, kind, actor_id, room_id, payload FROM activity_outbox WHERE id > $1 ORDER BY id';
  let rows: (Omit<ActivityRow, 'payload'> & { payload: string })[];
  if (t.dialect === 'sqlite') {
    const db = new BetterSqlite3(t.storeUrl, { readonly: true });
    try {
      rows = db.prepare(query.replace('$1', '?')).all(afterId) as typeof rows;
    } finally {
      db.close();
    }
  } else {
    const client = new pg.Client({ connectionString: t.storeUrl });
    await client.connect();
    try {
      const result = await client.query<(typeof rows)[number]>(query, [afterId]);
      // int8 columns arrive as strings from a plain client.
      rows = result.rows.map((r) => ({
        ...r,
        id: Number(r.id),
        actor_id: r.actor_id === null ? null : Number(r.actor_id),
        room_id: r.room_id === null ? null : Number(r.room_id),
      }));
    } finally {
      await client.end();
    }
  }
  return rows.map((r) => ({ ...r, payload: JSON.parse(r.payload) as Record<string, unknown> }));
}

/** The id of the newest outbox record, to read only what a later step writes. */
export async function lastActivityId(t: TestDomain): Promise<number> {
  return (await activityRows(t)).at(-1)?.id ?? 0;
}
