import type { Category, CategoryLists, Room, RoomRoles, Store } from '../store/store.js';
import type { Actor } from './types.js';

/** What the domain knows about one room when deciding who may do what in it. */
export interface RoomAccessInfo {
  room: Room;
  category: Category;
  lists: CategoryLists;
  roles: RoomRoles;
}

/** The answers of the permission rules for one actor and one room. */
export interface RoomRights {
  inScope: boolean;
  isMember: boolean;
  isManager: boolean;
  isPresenter: boolean;
  /** Sees the room in the directory and in `room get`. */
  canFind: boolean;
  /** Joins, reads history, searches its messages. */
  canRead: boolean;
  canPost: boolean;
  /** Changes settings and roles (managers and administrators). */
  canManage: boolean;
}

function intersects(a: readonly number[], b: readonly number[]): boolean {
  if (a.length > b.length) return intersects(b, a);
  const set = new Set(b);
  return a.some((x) => set.has(x));
}

/** A principal set is in a category's scope when it meets `allowed` and misses `denied`. */
export function inCategoryScope(lists: CategoryLists, principalIds: readonly number[]): boolean {
  return intersects(lists.allowed, principalIds) && !intersects(lists.denied, principalIds);
}

export function isCreator(lists: CategoryLists, principalIds: readonly number[]): boolean {
  return inCategoryScope(lists, principalIds) && intersects(lists.creators, principalIds);
}

/**
 * The permission rules of Perch (docs/permissions.md has them as a table):
 * - scope = allowed − denied; nobody outside the scope reads or posts, whatever their role;
 * - open rooms: everybody in scope finds, reads and posts; closed rooms: everybody in scope finds,
 *   members read and post; secret rooms: only members and managers find, members read and post;
 * - auditoriums: only presenters post (managers and administrators included);
 * - managers manage but do not read unless also members; administrators find and manage every
 *   room but get no reading right from their role, so ethical walls hold for them too;
 * - a disabled room is found and managed only by its managers and administrators.
 */
export function roomRights(
  info: RoomAccessInfo,
  actor: Pick<Actor, 'principalIds' | 'isAdmin'>,
): RoomRights {
  const { room, lists, roles } = info;
  const p = actor.principalIds;
  const inScope = inCategoryScope(lists, p);
  const isMember = inScope && intersects(roles.members, p);
  const isManager = inScope && intersects(roles.managers, p);
  // Presenters must also be members, except in open rooms, which have no membership.
  const isPresenter =
    room.type === 'auditorium' &&
    inScope &&
    intersects(roles.presenters, p) &&
    (room.privacy === 'open' || isMember);
  const canManage = actor.isAdmin || isManager;
  const canRead = !room.disabled && inScope && (room.privacy === 'open' || isMember);
  const findable = inScope && (room.privacy !== 'secret' || isMember || isManager);
  const canFind = actor.isAdmin || (room.disabled ? isManager : findable);
  const canPost = canRead && (room.type === 'normal' || isPresenter);
  return { inScope, isMember, isManager, isPresenter, canFind, canRead, canPost, canManage };
}

/**
 * Caches what permission checks read on every frame: each user's group ancestry and each room's
 * access info. Commands that change them call the invalidate methods after commit. In a pool,
 * the cluster layer must call them too when another front end changes something.
 */
export class AccessCache {
  private readonly ancestry = new Map<number, number[]>();
  private readonly rooms = new Map<number, RoomAccessInfo>();
  private readonly categoryLists = new Map<number, CategoryLists>();

  constructor(private readonly store: Store) {}

  async principalIds(userId: number): Promise<number[]> {
    let ids = this.ancestry.get(userId);
    if (!ids) {
      ids = await this.store.ancestry(userId);
      this.ancestry.set(userId, ids);
    }
    return ids;
  }

  async lists(categoryId: number): Promise<CategoryLists> {
    let lists = this.categoryLists.get(categoryId);
    if (!lists) {
      lists = await this.store.getCategoryLists(categoryId);
      this.categoryLists.set(categoryId, lists);
    }
    return lists;
  }

  /** The room's access info, or undefined when no such room exists. */
  async room(roomId: number): Promise<RoomAccessInfo | undefined> {
    const cached = this.rooms.get(roomId);
    if (cached) return cached;
    const room = await this.store.getRoom(roomId);
    if (!room) return undefined;
    const category = await this.store.getCategory(room.categoryId);
    if (!category) return undefined;
    const info: RoomAccessInfo = {
      room,
      category,
      lists: await this.lists(room.categoryId),
      roles: await this.store.getRoomRoles(roomId),
    };
    this.rooms.set(roomId, info);
    return info;
  }

  /** Keeps the cached last sequence current without a reload after every post. */
  noteSeq(roomId: number, seq: number): void {
    const info = this.rooms.get(roomId);
    if (info && info.room.lastSeq < seq) info.room.lastSeq = seq;
  }

  invalidateRoom(roomId: number): void {
    this.rooms.delete(roomId);
  }

  invalidateCategory(categoryId: number): void {
    this.categoryLists.delete(categoryId);
    for (const [id, info] of this.rooms)
      if (info.room.categoryId === categoryId) this.rooms.delete(id);
  }

  invalidateDirectory(): void {
    this.ancestry.clear();
  }

  invalidateAll(): void {
    this.ancestry.clear();
    this.rooms.clear();
    this.categoryLists.clear();
  }
}
