import { z } from 'zod';
import {
  AddinNotFoundError,
  CategoryNotFoundError,
  ForbiddenError,
  NameTakenError,
  OutOfScopeError,
  RoomNotFoundError,
  RuleViolationError,
} from '../../errors.js';
import type {
  Invitation,
  Principal,
  Room,
  RoomRole,
  RoomRoles,
  StoreOps,
} from '../../store/store.js';
import {
  inCategoryScope,
  isCreator,
  roomRights,
  type RoomAccessInfo,
  type RoomRights,
} from '../access.js';
import { requireCategory, pruneRoles } from '../categories/commands.js';
import { requireAdmin, requireChat, resolvePrincipals, toRef } from '../directory/commands.js';
import { logForPool, type ChangeEvent } from '../events.js';
import type { Actor, Domain, PrincipalRef } from '../types.js';
import { descriptionSchema, nameSchema, parseInput } from '../validation.js';

export interface RoomView {
  id: number;
  name: string;
  description: string;
  category: { id: number; name: string };
  privacy: Room['privacy'];
  type: Room['type'];
  disabled: boolean;
  invitations: Room['invitations'];
  /** Effective switches: category setting combined with the room's. */
  invitationsEnabled: boolean;
  fileUpload: boolean;
  history: boolean;
  addin: { id: number; name: string; url: string } | null;
  lastSeq: number;
  memberCount: number;
  /** Present where the viewer may see them: closed rooms to the scope, secret rooms to members. */
  members?: PrincipalRef[];
  managers?: PrincipalRef[];
  presenters?: PrincipalRef[];
  my: {
    member: boolean;
    manager: boolean;
    presenter: boolean;
    canRead: boolean;
    canPost: boolean;
    canManage: boolean;
  };
}

const privacySchema = z.enum(['open', 'closed', 'secret']);
const typeSchema = z.enum(['normal', 'auditorium']);
const principalNames = z.array(z.string().trim().min(1).max(256)).max(10_000);

const newRoomSchema = z
  .object({
    name: nameSchema,
    category: z.union([z.string().min(1).max(256), z.number().int().positive()]),
    description: descriptionSchema.default(''),
    privacy: privacySchema.default('closed'),
    type: typeSchema.default('normal'),
    invitations: z.enum(['inherit', 'off']).default('inherit'),
    addin: z.string().max(50).nullable().default(null),
    members: principalNames.default([]),
    managers: principalNames.default([]),
    presenters: principalNames.default([]),
  })
  .strict();

const listChange = z.union([
  principalNames,
  z.object({ add: principalNames.default([]), remove: principalNames.default([]) }).strict(),
]);

const roomPatchSchema = z
  .object({
    name: nameSchema,
    category: z.union([z.string().min(1).max(256), z.number().int().positive()]),
    description: descriptionSchema,
    privacy: privacySchema,
    type: typeSchema,
    disabled: z.boolean(),
    invitations: z.enum(['inherit', 'off']),
    addin: z.string().max(50).nullable(),
    members: listChange,
    managers: listChange,
    presenters: listChange,
  })
  .partial()
  .strict();

/** Loads a room and the actor's rights in it; a room the actor may not find does not exist. */
export async function loadRoom(
  d: Domain,
  actor: Actor,
  roomId: number,
): Promise<{ info: RoomAccessInfo; rights: RoomRights }> {
  if (!Number.isSafeInteger(roomId) || roomId <= 0) throw new RoomNotFoundError();
  const info = await d.access.room(roomId);
  if (!info) throw new RoomNotFoundError();
  const rights = roomRights(info, actor);
  if (!rights.canFind) throw new RoomNotFoundError();
  return { info, rights };
}

/** Loads a room the actor may read (join, history, search); otherwise throws like `loadRoom`. */
export async function loadReadableRoom(
  d: Domain,
  actor: Actor,
  roomId: number,
): Promise<{ info: RoomAccessInfo; rights: RoomRights }> {
  requireChat(actor);
  const loaded = await loadRoom(d, actor, roomId);
  if (!loaded.rights.canRead) {
    throw new ForbiddenError(
      loaded.info.room.disabled ? 'room is disabled' : 'only members of this room may read it',
    );
  }
  return loaded;
}

export async function presentRoom(
  d: Domain,
  info: RoomAccessInfo,
  rights: RoomRights,
): Promise<RoomView> {
  const { room, category, roles } = info;
  const addin = room.addinId === null ? null : ((await d.store.getAddin(room.addinId)) ?? null);
  // Closed rooms show their members to the whole scope; secret ones only to members and managers.
  const showRoles =
    rights.canManage || rights.isMember || (room.privacy === 'closed' && rights.inScope);
  const view: RoomView = {
    id: room.id,
    name: room.name,
    description: room.description,
    category: { id: category.id, name: category.name },
    privacy: room.privacy,
    type: room.type,
    disabled: room.disabled,
    invitations: room.invitations,
    invitationsEnabled: category.invitations && room.invitations === 'inherit',
    fileUpload: category.fileUpload,
    history: category.history,
    addin: addin && { id: addin.id, name: addin.name, url: addin.url },
    lastSeq: room.lastSeq,
    memberCount: roles.members.length,
    my: {
      member: rights.isMember,
      manager: rights.isManager,
      presenter: rights.isPresenter,
      canRead: rights.canRead,
      canPost: rights.canPost,
      canManage: rights.canManage,
    },
  };
  if (showRoles) {
    const people = await d.store.getPrincipals([
      ...roles.members,
      ...roles.managers,
      ...roles.presenters,
    ]);
    const byId = new Map(people.map((p) => [p.id, toRef(p)]));
    const refs = (ids: number[]) =>
      ids.map((id) => byId.get(id)).filter((r): r is PrincipalRef => !!r);
    view.members = refs(roles.members);
    view.managers = refs(roles.managers);
    view.presenters = refs(roles.presenters);
  }
  return view;
}

export async function getRoom(d: Domain, actor: Actor, roomId: number): Promise<RoomView> {
  if (!actor.isAdmin) requireChat(actor);
  const { info, rights } = await loadRoom(d, actor, roomId);
  return presentRoom(d, info, rights);
}

/** Resolves a room by id or name for the actor (used by the CLI and HTTP by name). */
export async function findRoomId(d: Domain, actor: Actor, ref: string | number): Promise<number> {
  if (typeof ref === 'number' || /^\d+$/.test(ref)) return Number(ref);
  const room = await d.store.getRoomByName(ref);
  if (!room) throw new RoomNotFoundError();
  await loadRoom(d, actor, room.id);
  return room.id;
}

async function resolveAddin(d: Domain, name: string | null): Promise<number | null> {
  if (name === null) return null;
  const a = await d.store.getAddinByName(name);
  if (!a) throw new AddinNotFoundError();
  return a.id;
}

/** Checks every principal of a role list against the category scope. */
async function checkScope(
  d: Domain,
  lists: RoomAccessInfo['lists'],
  principals: Principal[],
): Promise<void> {
  const outside: string[] = [];
  for (const p of principals) {
    if (!inCategoryScope(lists, await d.store.ancestry(p.id))) outside.push(p.name);
  }
  if (outside.length > 0) throw new OutOfScopeError(outside);
}

function checkRules(
  type: Room['type'],
  roles: { presenters: number[]; members: number[] },
  privacy: Room['privacy'],
): void {
  if (type === 'normal' && roles.presenters.length > 0) {
    throw new RuleViolationError(
      'presenters_need_auditorium',
      'only auditorium rooms have presenters',
    );
  }
  if (privacy !== 'open') {
    const members = new Set(roles.members);
    if (roles.presenters.some((id) => !members.has(id))) {
      throw new RuleViolationError(
        'presenter_not_member',
        'presenters must also be members of the room',
      );
    }
  }
}

/**
 * Creates a room. The actor must be a creator of the category (or an administrator); the creator
 * becomes a manager. Invitations go to the initial members when the room has them on.
 */
export async function createRoom(d: Domain, actor: Actor, input: unknown): Promise<RoomView> {
  if (!actor.isAdmin) requireChat(actor);
  const v = parseInput(newRoomSchema, input, 'room');
  const category = await requireCategory(d, v.category);
  const lists = await d.access.lists(category.id);
  if (!actor.isAdmin && !isCreator(lists, actor.principalIds)) {
    // A category outside the actor's scope is as invisible as one that does not exist.
    if (!inCategoryScope(lists, actor.principalIds)) throw new CategoryNotFoundError();
    throw new ForbiddenError('you are not a creator in this category');
  }
  const [members, managers, presenters] = await Promise.all([
    resolvePrincipals(d, v.members),
    resolvePrincipals(d, v.managers),
    resolvePrincipals(d, v.presenters),
  ]);
  await checkScope(d, lists, [...members, ...managers, ...presenters]);
  const managerIds = new Set(managers.map((p) => p.id));
  // The creator becomes a manager automatically (administrators only when they are in scope).
  if (inCategoryScope(lists, actor.principalIds)) managerIds.add(actor.userId);
  const roles: RoomRoles = {
    members: members.map((p) => p.id),
    managers: [...managerIds],
    presenters: presenters.map((p) => p.id),
  };
  checkRules(v.type, roles, v.privacy);
  const addinId = await resolveAddin(d, v.addin);
  const now = d.clock();
  const invitees =
    category.invitations && v.invitations === 'inherit'
      ? await d.store.expandToUsers(roles.members)
      : [];
  const { room, invitations } = await d.store.transaction(async (tx) => {
    const room = await tx.createRoom(
      {
        categoryId: category.id,
        name: v.name,
        description: v.description,
        privacy: v.privacy,
        type: v.type,
        invitations: v.invitations,
        addinId,
        createdBy: actor.userId,
      },
      now,
    );
    if (!(await tx.reserveName(v.name, 'room', room.id))) throw new NameTakenError(v.name);
    await writeRoles(tx, room.id, roles);
    const invitations = await tx.createInvitations(
      room.id,
      invitees.filter((id) => id !== actor.userId),
      actor.userId,
      now,
    );
    await tx.recordActivity({
      kind: 'ROOM_CREATED',
      actorId: actor.userId,
      roomId: room.id,
      createdAt: now,
      payload: {
        name: room.name,
        category: category.name,
        privacy: room.privacy,
        type: room.type,
        roles: namedRoles(members, managers, presenters),
      },
    });
    await logForPool(d, tx, invitationEvents(invitations));
    return { room, invitations };
  });
  for (const event of invitationEvents(invitations)) d.events.publish(event);
  const info = (await d.access.room(room.id))!;
  return presentRoom(d, info, roomRights(info, actor));
}

function namedRoles(members: Principal[], managers: Principal[], presenters: Principal[]) {
  return {
    members: members.map((p) => p.name),
    managers: managers.map((p) => p.name),
    presenters: presenters.map((p) => p.name),
  };
}

async function writeRoles(tx: StoreOps, roomId: number, roles: RoomRoles): Promise<void> {
  await tx.setRoomRole(roomId, 'member', roles.members);
  await tx.setRoomRole(roomId, 'manager', roles.managers);
  await tx.setRoomRole(roomId, 'presenter', roles.presenters);
}

async function applyListChange(
  d: Domain,
  current: number[],
  change: z.infer<typeof listChange> | undefined,
): Promise<{ ids: number[]; added: Principal[] }> {
  if (change === undefined) return { ids: current, added: [] };
  if (Array.isArray(change)) {
    const ps = await resolvePrincipals(d, change);
    const before = new Set(current);
    return { ids: ps.map((p) => p.id), added: ps.filter((p) => !before.has(p.id)) };
  }
  const add = await resolvePrincipals(d, change.add);
  const remove = new Set((await resolvePrincipals(d, change.remove)).map((p) => p.id));
  const set = new Set(current.filter((id) => !remove.has(id)));
  const added = add.filter((p) => !set.has(p.id));
  for (const p of add) set.add(p.id);
  return { ids: [...set], added };
}

/**
 * Changes a room's settings and roles (managers and administrators). Moving it to another
 * category needs an administrator or a manager who is a creator there, and drops role entries the
 * new scope does not allow. Disabling disconnects everybody at once.
 */
export async function updateRoom(
  d: Domain,
  actor: Actor,
  roomId: number,
  input: unknown,
): Promise<RoomView> {
  if (!actor.isAdmin) requireChat(actor);
  const v = parseInput(roomPatchSchema, input, 'room change');
  const { info, rights } = await loadRoom(d, actor, roomId);
  if (!rights.canManage) throw new ForbiddenError('only managers of this room may change it');
  const { room } = info;
  let category = info.category;
  let lists = info.lists;
  if (v.category !== undefined) {
    const target = await requireCategory(d, v.category);
    if (target.id !== category.id) {
      const targetLists = await d.access.lists(target.id);
      if (!actor.isAdmin && !isCreator(targetLists, actor.principalIds)) {
        throw new ForbiddenError('moving a room needs the creator role in the target category');
      }
      category = target;
      lists = targetLists;
    }
  }
  const members = await applyListChange(d, info.roles.members, v.members);
  const managers = await applyListChange(d, info.roles.managers, v.managers);
  const presenters = await applyListChange(d, info.roles.presenters, v.presenters);
  await checkScope(d, lists, [...members.added, ...managers.added, ...presenters.added]);
  const type = v.type ?? room.type;
  const privacy = v.privacy ?? room.privacy;
  // Turning an auditorium into a normal room drops its presenters unless the change lists some.
  const presenterIds = type === 'normal' && v.presenters === undefined ? [] : presenters.ids;
  const roles: RoomRoles = {
    members: members.ids,
    managers: managers.ids,
    presenters: presenterIds,
  };
  checkRules(type, roles, privacy);
  const addinId = v.addin === undefined ? room.addinId : await resolveAddin(d, v.addin);
  const invitationsOn = category.invitations && (v.invitations ?? room.invitations) === 'inherit';
  const invitees =
    invitationsOn && members.added.length > 0
      ? await d.store.expandToUsers(members.added.map((p) => p.id))
      : [];
  const now = d.clock();
  const invitations = await d.store.transaction(async (tx) => {
    if (v.name !== undefined && v.name !== room.name) {
      await tx.releaseName(room.name);
      if (!(await tx.reserveName(v.name, 'room', room.id))) throw new NameTakenError(v.name);
    }
    await tx.updateRoom(
      room.id,
      {
        name: v.name,
        description: v.description,
        privacy: v.privacy,
        type: v.type,
        disabled: v.disabled,
        invitations: v.invitations,
        addinId,
        categoryId: category.id,
      },
      now,
    );
    await writeRoles(tx, room.id, roles);
    if (category.id !== info.category.id) await pruneRoles(tx, room.id, lists);
    const invitations = await tx.createInvitations(room.id, invitees, actor.userId, now);
    await tx.recordActivity({
      kind: 'ROOM_CHANGED',
      actorId: actor.userId,
      roomId: room.id,
      createdAt: now,
      payload: { changes: v },
    });
    await logForPool(d, tx, [
      ...invitationEvents(invitations),
      { type: 'room.changed', roomId: room.id },
      { type: 'room.access_changed', roomId: room.id },
    ]);
    return invitations;
  });
  d.access.invalidateRoom(room.id);
  for (const event of invitationEvents(invitations)) d.events.publish(event);
  d.events.publish({ type: 'room.changed', roomId: room.id });
  d.events.publish({ type: 'room.access_changed', roomId: room.id });
  const fresh = await d.access.room(room.id);
  return presentRoom(d, fresh!, roomRights(fresh!, actor));
}

/** Deletes a room with all its messages and files (administrators only). */
export async function deleteRoom(d: Domain, actor: Actor, roomId: number): Promise<void> {
  requireAdmin(actor);
  const { info } = await loadRoom(d, actor, roomId);
  const files = await d.store.listFileKeys(roomId);
  await d.store.transaction(async (tx) => {
    await tx.recordActivity({
      kind: 'ROOM_DELETED',
      actorId: actor.userId,
      roomId,
      createdAt: d.clock(),
      payload: { name: info.room.name, category: info.category.name },
    });
    await tx.releaseName(info.room.name);
    await tx.deleteRoom(roomId);
    await logForPool(d, tx, [{ type: 'room.deleted', roomId }]);
  });
  for (const key of files) await d.files.remove(key);
  d.access.invalidateRoom(roomId);
  d.events.publish({ type: 'room.deleted', roomId });
}

const searchSchema = z
  .object({
    text: z.string().max(256).optional(),
    category: z.union([z.string().min(1).max(256), z.number().int().positive()]).optional(),
    includeDescription: z.boolean().default(true),
    limit: z.number().int().min(1).max(500).default(50),
    offset: z.number().int().min(0).max(1_000_000).default(0),
  })
  .strict();

/** The room directory: rooms the actor may find, matching name or description. */
export async function searchRooms(d: Domain, actor: Actor, input: unknown): Promise<RoomView[]> {
  requireChat(actor);
  const q = parseInput(searchSchema, input, 'room search');
  const categoryId =
    q.category === undefined ? undefined : (await requireCategory(d, q.category)).id;
  const found = await d.store.searchRooms({
    viewer: actor,
    text: q.text,
    categoryId,
    includeDescription: q.includeDescription,
    limit: q.limit,
    offset: q.offset,
  });
  const out: RoomView[] = [];
  for (const r of found) {
    const info = await d.access.room(r.id);
    if (!info) continue;
    const rights = roomRights(info, actor);
    if (rights.canFind) out.push(await presentRoom(d, info, rights));
  }
  return out;
}

/** Rooms the actor is a member or manager of (Lync getassociations), with the role held. */
export async function associations(
  d: Domain,
  actor: Actor,
): Promise<{ member: RoomView[]; manager: RoomView[] }> {
  requireChat(actor);
  const result = { member: [] as RoomView[], manager: [] as RoomView[] };
  for (const role of ['member', 'manager'] as RoomRole[]) {
    const ids = await d.store.roomsWithRole(actor.principalIds, role);
    for (const id of ids) {
      const info = await d.access.room(id);
      if (!info) continue;
      const rights = roomRights(info, actor);
      const holds = role === 'member' ? rights.isMember : rights.isManager;
      if (holds && rights.canFind)
        result[role as 'member' | 'manager'].push(await presentRoom(d, info, rights));
    }
  }
  return result;
}

/** The events telling each invited user of an invitation. */
function invitationEvents(invitations: Invitation[]): ChangeEvent[] {
  return invitations.map((invitation) => ({
    type: 'invitation',
    userId: invitation.userId,
    invitation,
  }));
}
