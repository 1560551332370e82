import { z } from 'zod';
import { CategoryNotEmptyError, CategoryNotFoundError, NameTakenError } from '../../errors.js';
import type { Category, CategoryLists, Principal } from '../../store/store.js';
import { inCategoryScope, isCreator } from '../access.js';
import { requireAdmin, requireChat, resolvePrincipals, toRef } from '../directory/commands.js';
import { logForPool } from '../events.js';
import type { Actor, Domain, PrincipalRef } from '../types.js';
import { descriptionSchema, nameSchema, parseInput } from '../validation.js';

export interface CategoryView extends Category {
  allowed: PrincipalRef[];
  denied: PrincipalRef[];
  creators: PrincipalRef[];
}

const principalNames = z.array(z.string().trim().min(1).max(256)).max(10_000);

/** Days messages are kept before the retention job purges them (beyond Lync); null: forever. */
export const retentionDaysSchema = z.number().int().min(1).max(36_500).nullable();

const newCategorySchema = z.object({
  name: nameSchema,
  description: descriptionSchema.default(''),
  // Lync's New-CsPersistentChatCategory: upload and invitations off unless asked, history on.
  fileUpload: z.boolean().default(false),
  invitations: z.boolean().default(false),
  history: z.boolean().default(true),
  retentionDays: retentionDaysSchema.default(null),
  allowed: principalNames.default([]),
  denied: principalNames.default([]),
  creators: principalNames.default([]),
});

const categoryPatchSchema = z
  .object({
    name: nameSchema,
    description: descriptionSchema,
    fileUpload: z.boolean(),
    invitations: z.boolean(),
    history: z.boolean(),
    retentionDays: retentionDaysSchema,
    allowed: principalNames,
    denied: principalNames,
    creators: principalNames,
  })
  .partial()
  .strict();

async function view(d: Domain, c: Category, lists?: CategoryLists): Promise<CategoryView> {
  const l = lists ?? (await d.store.getCategoryLists(c.id));
  const all = await d.store.getPrincipals([...l.allowed, ...l.denied, ...l.creators]);
  const byId = new Map(all.map((p) => [p.id, toRef(p)]));
  const refs = (ids: number[]) =>
    ids.map((id) => byId.get(id)).filter((r): r is PrincipalRef => !!r);
  return { ...c, allowed: refs(l.allowed), denied: refs(l.denied), creators: refs(l.creators) };
}

/** Finds a category by numeric id or by name. */
export async function requireCategory(d: Domain, ref: string | number): Promise<Category> {
  const c =
    typeof ref === 'number' || /^\d+$/.test(ref)
      ? await d.store.getCategory(Number(ref))
      : await d.store.getCategoryByName(ref);
  if (!c) throw new CategoryNotFoundError();
  return c;
}

export async function createCategory(
  d: Domain,
  actor: Actor,
  input: unknown,
): Promise<CategoryView> {
  requireAdmin(actor);
  const v = parseInput(newCategorySchema, input, 'category');
  const [allowed, denied, creators] = await Promise.all([
    resolvePrincipals(d, v.allowed),
    resolvePrincipals(d, v.denied),
    resolvePrincipals(d, v.creators),
  ]);
  const now = d.clock();
  const created = await d.store.transaction(async (tx) => {
    const c = await tx.createCategory(
      {
        name: v.name,
        description: v.description,
        fileUpload: v.fileUpload,
        invitations: v.invitations,
        history: v.history,
        retentionDays: v.retentionDays,
      },
      now,
    );
    if (!(await tx.reserveName(v.name, 'category', c.id))) throw new NameTakenError(v.name);
    await tx.setCategoryList(c.id, 'allowed', ids(allowed));
    await tx.setCategoryList(c.id, 'denied', ids(denied));
    await tx.setCategoryList(c.id, 'creator', ids(creators));
    await tx.recordActivity({
      kind: 'CATEGORY_CREATED',
      actorId: actor.userId,
      roomId: null,
      createdAt: now,
      payload: {
        categoryId: c.id,
        name: c.name,
        retentionDays: c.retentionDays,
        allowed: names(allowed),
        denied: names(denied),
        creators: names(creators),
      },
    });
    return c;
  });
  return view(d, created);
}

function ids(ps: Principal[]): number[] {
  return ps.map((p) => p.id);
}
function names(ps: Principal[]): string[] {
  return ps.map((p) => p.name);
}

/**
 * Changes a category. Narrowing its scope removes, from every room in it, role entries that fall
 * outside the new scope, so that an ethical wall takes effect at once.
 */
export async function updateCategory(
  d: Domain,
  actor: Actor,
  ref: string | number,
  input: unknown,
): Promise<CategoryView> {
  requireAdmin(actor);
  const v = parseInput(categoryPatchSchema, input, 'category change');
  const c = await requireCategory(d, ref);
  const resolve = async (list?: string[]) =>
    list === undefined ? undefined : ids(await resolvePrincipals(d, list));
  const allowed = await resolve(v.allowed);
  const denied = await resolve(v.denied);
  const creators = await resolve(v.creators);
  const now = d.clock();
  const touchedRooms: number[] = [];
  const events = await d.store.transaction(async (tx) => {
    if (v.name !== undefined && v.name !== c.name) {
      await tx.releaseName(c.name);
      if (!(await tx.reserveName(v.name, 'category', c.id))) throw new NameTakenError(v.name);
    }
    await tx.updateCategory(c.id, v, now);
    if (allowed) await tx.setCategoryList(c.id, 'allowed', allowed);
    if (denied) await tx.setCategoryList(c.id, 'denied', denied);
    if (creators) await tx.setCategoryList(c.id, 'creator', creators);
    if (allowed || denied) {
      const lists = await tx.getCategoryLists(c.id);
      const rooms = await tx.listRooms({ categoryId: c.id, limit: 1_000_000, offset: 0 });
      for (const room of rooms) {
        if (await pruneRoles(tx, room.id, lists)) touchedRooms.push(room.id);
      }
    }
    await tx.recordActivity({
      kind: 'CATEGORY_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: now,
      payload: { categoryId: c.id, changes: v },
    });
    const rooms = await tx.listRooms({ categoryId: c.id, limit: 1_000_000, offset: 0 });
    const events = rooms.map((room) => ({ type: 'room.access_changed' as const, roomId: room.id }));
    await logForPool(d, tx, events);
    return events;
  });
  d.access.invalidateCategory(c.id);
  for (const roomId of touchedRooms) d.access.invalidateRoom(roomId);
  for (const event of events) d.events.publish(event);
  return view(d, (await d.store.getCategory(c.id))!);
}

/**
 * Drops a room's role entries whose principal is outside the category scope.
 * Returns whether anything was removed.
 */
export async function pruneRoles(
  tx: Pick<Domain['store'], 'getRoomRoles' | 'setRoomRole' | 'ancestry'>,
  roomId: number,
  lists: CategoryLists,
): Promise<boolean> {
  const roles = await tx.getRoomRoles(roomId);
  let changed = false;
  for (const [role, key] of [
    ['member', 'members'],
    ['manager', 'managers'],
    ['presenter', 'presenters'],
  ] as const) {
    const keep: number[] = [];
    for (const id of roles[key]) {
      if (inCategoryScope(lists, await tx.ancestry(id))) keep.push(id);
    }
    if (keep.length !== roles[key].length) {
      await tx.setRoomRole(roomId, role, keep);
      changed = true;
    }
  }
  return changed;
}

export async function deleteCategory(d: Domain, actor: Actor, ref: string | number): Promise<void> {
  requireAdmin(actor);
  const c = await requireCategory(d, ref);
  await d.store.transaction(async (tx) => {
    const rooms = await tx.countRooms(c.id);
    if (rooms > 0) throw new CategoryNotEmptyError(rooms);
    await tx.releaseName(c.name);
    await tx.deleteCategory(c.id);
    await tx.recordActivity({
      kind: 'CATEGORY_DELETED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: { categoryId: c.id, name: c.name },
    });
  });
  d.access.invalidateCategory(c.id);
}

/**
 * Categories the actor may see: administrators see all with their lists; users see the categories
 * whose scope includes them, with a `canCreate` flag, and no member lists.
 */
export async function listCategories(
  d: Domain,
  actor: Actor,
): Promise<(CategoryView | (Category & { canCreate: boolean }))[]> {
  const all = await d.store.listCategories();
  if (actor.isAdmin) return Promise.all(all.map((c) => view(d, c)));
  requireChat(actor);
  const out: (Category & { canCreate: boolean })[] = [];
  for (const c of all) {
    const lists = await d.access.lists(c.id);
    if (inCategoryScope(lists, actor.principalIds)) {
      out.push({ ...c, canCreate: isCreator(lists, actor.principalIds) });
    }
  }
  return out;
}

export async function getCategory(
  d: Domain,
  actor: Actor,
  ref: string | number,
): Promise<CategoryView> {
  const c = await requireCategory(d, ref);
  if (!actor.isAdmin) {
    const lists = await d.access.lists(c.id);
    if (!inCategoryScope(lists, actor.principalIds)) throw new CategoryNotFoundError();
  }
  return view(d, c);
}
