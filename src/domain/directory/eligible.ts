import { z } from 'zod';
import { RuleViolationError } from '../../errors.js';
import type { Principal } from '../../store/store.js';
import { requireCategory } from '../categories/commands.js';
import { loadRoom } from '../rooms/commands.js';
import type { Actor, Domain, PrincipalRef } from '../types.js';
import { parseInput } from '../validation.js';
import { requireAdmin, toRef } from './commands.js';

// Lync's Get-CsPersistentChatEligiblePrincipal: which users may be placed in a role. Scope is
// allowed − denied (deny wins), expanded through nested groups; disabled users are never eligible.

const eligibleSchema = z
  .object({
    category: z.union([z.string().min(1).max(256), z.number().int().positive()]).optional(),
    room: z.number().int().positive().optional(),
    presenters: z.boolean().default(false),
    filter: z.string().max(256).optional(),
    limit: z.number().int().min(1).max(10_000).default(100),
  })
  .strict()
  .refine((q) => (q.category === undefined) !== (q.room === undefined), {
    message: 'give either a category or a room',
  })
  .refine((q) => !q.presenters || q.room !== undefined, {
    message: 'presenters needs a room',
  });

export interface EligibleResult {
  /** What was expanded: `category:<name>`, `room:<name>` or `presenters:<room name>`. */
  scope: string;
  users: PrincipalRef[];
  /** More users matched than `limit`. */
  more: boolean;
}

/** A Lync-style filter: `*` matches anything; otherwise a case-insensitive substring. */
function matcher(filter: string | undefined): (p: Principal) => boolean {
  if (!filter) return () => true;
  const f = filter.toLowerCase();
  const re = f.includes('*')
    ? new RegExp(`^${f.split('*').map(escapeRegExp).join('.*')}$`, 'u')
    : undefined;
  return (p) =>
    [p.name, p.displayName].some((s) =>
      re ? re.test(s.toLowerCase()) : s.toLowerCase().includes(f),
    );
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Users eligible for a role (administrators only):
 * - `category`: every user in the category's scope (who may be a member, manager or creator);
 * - `room`: every user in the scope of the room's category (who may be added to the room);
 * - `room` + `presenters`: users who may present in an auditorium: its members in scope, or the
 *   whole scope in an open room (which has no membership).
 */
export async function eligiblePrincipals(
  d: Domain,
  actor: Actor,
  input: unknown,
): Promise<EligibleResult> {
  requireAdmin(actor);
  const q = parseInput(eligibleSchema, input, 'eligibility query');
  let categoryId: number;
  let scope: string;
  let pool: number[] | undefined;
  if (q.room !== undefined) {
    const { info } = await loadRoom(d, actor, q.room);
    categoryId = info.category.id;
    scope = `room:${info.room.name}`;
    if (q.presenters) {
      if (info.room.type !== 'auditorium') {
        throw new RuleViolationError(
          'presenters_need_auditorium',
          'only auditorium rooms have presenters',
        );
      }
      scope = `presenters:${info.room.name}`;
      if (info.room.privacy !== 'open') pool = info.roles.members;
    }
  } else {
    const category = await requireCategory(d, q.category!);
    categoryId = category.id;
    scope = `category:${category.name}`;
  }
  const lists = await d.store.getCategoryLists(categoryId);
  const denied = new Set(await d.store.expandToUsers(lists.denied));
  const allowed = new Set(await d.store.expandToUsers(lists.allowed));
  let ids = [...allowed].filter((id) => !denied.has(id));
  if (pool) {
    const inPool = new Set(await d.store.expandToUsers(pool));
    ids = ids.filter((id) => inPool.has(id));
  }
  const match = matcher(q.filter);
  const users = (await d.store.getPrincipals(ids))
    .filter(match)
    .sort((a, b) => a.name.localeCompare(b.name));
  return { scope, users: users.slice(0, q.limit).map(toRef), more: users.length > q.limit };
}
