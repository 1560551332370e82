/**
 * The store interface: everything the domain needs from persistence, in plain types. One
 * implementation (kysely-store.ts) serves SQLite and PostgreSQL; dialect-specific parts (full-text
 * search, pragmas) sit behind `Dialect`. The domain never imports a driver.
 */
export type Dialect = 'sqlite' | 'postgres';

export type PrincipalKind = 'user' | 'group';
export type Privacy = 'open' | 'closed' | 'secret';
export type RoomType = 'normal' | 'auditorium';
export type RoomRole = 'member' | 'manager' | 'presenter';
export type CategoryList = 'allowed' | 'denied' | 'creator';
export type MessageState = 'normal' | 'removed' | 'replaced';

export interface Principal {
  id: number;
  kind: PrincipalKind;
  name: string;
  displayName: string;
  email: string | null;
  description: string | null;
  disabled: boolean;
  isAdmin: boolean;
  source: string;
  createdAt: number;
}

export interface NewPrincipal {
  kind: PrincipalKind;
  name: string;
  displayName: string;
  email?: string | null;
  description?: string | null;
  disabled?: boolean;
  isAdmin?: boolean;
  passwordHash?: string | null;
  source?: string;
}

export type PrincipalPatch = Partial<
  Pick<
    NewPrincipal,
    'name' | 'displayName' | 'email' | 'description' | 'disabled' | 'isAdmin' | 'passwordHash'
  >
>;

/** Where a principal is named: room roles, category lists, groups containing it, policy grant. */
export interface PrincipalReferences {
  roomRoles: { roomId: number; role: RoomRole }[];
  categoryLists: { categoryId: number; list: CategoryList }[];
  /** Groups that list it as a direct member. */
  parentGroups: number[];
  /** The policy granted to it, if any. */
  policy: string | null;
}

/** A principal synced from an LDAP directory, and the directory entry it stands for. */
export interface DirectoryLink {
  principalId: number;
  /** The entry's stable id (entryUUID, objectGUID as hex): survives renames and moves. */
  externalId: string;
  dn: string;
  entryKind: 'user' | 'group' | 'ou';
  syncedAt: number;
}

export interface SessionRecord {
  userId: number;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export interface Policy {
  name: string;
  enabled: boolean;
  description: string | null;
}

export interface PolicyGrant {
  principalId: number;
  policyName: string;
}

export interface Category {
  id: number;
  name: string;
  description: string;
  fileUpload: boolean;
  invitations: boolean;
  history: boolean;
  /** Days messages and files in its rooms are kept before the retention job purges them; null: forever. */
  retentionDays: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface CategoryLists {
  allowed: number[];
  denied: number[];
  creators: number[];
}

export interface NewCategory {
  name: string;
  description: string;
  fileUpload: boolean;
  invitations: boolean;
  history: boolean;
  retentionDays?: number | null;
}

export interface Addin {
  id: number;
  name: string;
  url: string;
  createdAt: number;
}

export interface Room {
  id: number;
  categoryId: number;
  name: string;
  description: string;
  privacy: Privacy;
  type: RoomType;
  disabled: boolean;
  invitations: 'inherit' | 'off';
  addinId: number | null;
  lastSeq: number;
  createdBy: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface NewRoom {
  categoryId: number;
  name: string;
  description: string;
  privacy: Privacy;
  type: RoomType;
  invitations: 'inherit' | 'off';
  addinId: number | null;
  createdBy: number | null;
}

export type RoomPatch = Partial<
  Pick<
    Room,
    | 'categoryId'
    | 'name'
    | 'description'
    | 'privacy'
    | 'type'
    | 'disabled'
    | 'invitations'
    | 'addinId'
  >
>;

export interface RoomRoles {
  members: number[];
  managers: number[];
  presenters: number[];
}

export interface Message {
  id: number;
  roomId: number;
  seq: number;
  authorId: number;
  createdAt: number;
  body: string;
  title: string | null;
  alert: boolean;
  fileId: number | null;
  clientId: string | null;
  state: MessageState;
  editedAt: number | null;
}

/** One post to append; `store` is false when the category keeps no history. */
export interface NewMessage {
  roomId: number;
  authorId: number;
  body: string;
  title: string | null;
  alert: boolean;
  fileId: number | null;
  clientId: string | null;
  store: boolean;
  mentionUserIds: number[];
  createdAt: number;
}

export interface AppendedMessage {
  id: number | null;
  seq: number;
  createdAt: number;
}

export interface PostKey {
  roomId: number;
  seq: number;
  messageId: number | null;
  createdAt: number;
}

export interface HistoryQuery {
  roomId: number;
  /** Messages with seq strictly below this; the newest first before reversal. */
  before?: number;
  /** Messages with seq strictly above this, oldest first. */
  after?: number;
  limit: number;
}

/** Whose view a visibility-filtered query takes: the caller's principal set (self + groups). */
export interface Viewer {
  userId: number;
  principalIds: number[];
  isAdmin: boolean;
}

export interface RoomSearchQuery {
  viewer: Viewer;
  text?: string;
  categoryId?: number;
  includeDescription: boolean;
  limit: number;
  offset: number;
}

export interface RoomSummary extends Room {
  categoryName: string;
  memberCount: number;
}

export interface MessageSearchQuery {
  viewer: Viewer;
  /** FTS query already compiled for the dialect; undefined for filter-only searches. */
  terms?: string[];
  phrases?: string[];
  roomIds?: number[];
  authorIds?: number[];
  from?: number;
  to?: number;
  limit: number;
  offset: number;
  /** Count at most this many matches; beyond it `exceededLimit` is set. */
  countLimit: number;
}

export interface MessageSearchResult {
  messages: Message[];
  count: number;
  exceededLimit: boolean;
}

export interface Invitation {
  id: number;
  userId: number;
  roomId: number;
  invitedBy: number | null;
  createdAt: number;
  seenAt: number | null;
}

export interface Follow {
  roomId: number;
  lastReadSeq: number;
  lastSeq: number;
  mentions: number;
  createdAt: number;
}

export interface FileRecord {
  id: number;
  roomId: number;
  uploaderId: number;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  storageKey: string;
  createdAt: number;
}

export type NewFile = Omit<FileRecord, 'id'>;

/** What a legal hold covers, as the chat store's retention purge applies it (null: any). */
export interface RetentionHold {
  roomId: number | null;
  userId: number | null;
  from: number | null;
  to: number | null;
}

/** What one batch of a retention purge deleted. */
export interface RetentionPurged {
  rooms: { roomId: number; messages: number; files: number }[];
  /** Storage keys of the deleted files, to remove from the file store after the commit. */
  fileKeys: string[];
}

export interface ActivityRecord {
  kind: string;
  actorId: number | null;
  roomId: number | null;
  payload: Record<string, unknown>;
  createdAt: number;
}

/** An outbox row as the compliance worker reads it. */
export interface ActivityRow extends ActivityRecord {
  id: number;
}

/** One event of a pool's durable event log (Enterprise Edition; migration 007). */
export interface PoolEventRow {
  id: number;
  /** The process that wrote it. */
  origin: string;
  /** The event as JSON. */
  payload: string;
  createdAt: number;
}

/** A user's topic feed: messages in followed rooms that contain any of the keywords. */
export interface TopicFeed {
  id: number;
  userId: number;
  name: string;
  keywords: string[];
  createdAt: number;
  updatedAt: number;
}

/** How an audited admin call ended; `pending` means it started and never finished (a crash). */
export type AuditResult = 'pending' | 'ok' | 'error';

/** An admin call as recorded before it runs. `params` must already have its secrets removed. */
export interface NewAuditEntry {
  actorId: number | null;
  actorName: string;
  action: string;
  method: string;
  path: string;
  params: Record<string, unknown>;
  createdAt: number;
}

export interface AuditEntry extends NewAuditEntry {
  id: number;
  result: AuditResult;
  errorCode: string | null;
  finishedAt: number | null;
}

/** Filters for the audit trail; newest first, `beforeId` pages back. */
export interface AuditQuery {
  /** Login of the actor (case-insensitive). */
  actor?: string;
  /** Exact action, or a prefix when it ends with `*` (`user.*`). */
  action?: string;
  result?: AuditResult;
  /** Calls made at or after this time (ms). */
  since?: number;
  /** Calls made at or before this time (ms). */
  until?: number;
  /** Entries with an id below this one (the previous page's last id). */
  beforeId?: number;
  limit: number;
}

/** The tables a data archive carries, in the order an import writes them (see docs/data-archive.md). */
export type ArchiveTable =
  | 'settings'
  | 'policies'
  | 'principals'
  | 'group_members'
  | 'policy_grants'
  | 'categories'
  | 'category_principals'
  | 'addins'
  | 'rooms'
  | 'names'
  | 'room_roles'
  | 'files'
  | 'messages';

/** Operations available inside and outside a transaction. */
/** Salted SCRAM credentials (RFC 5802 §3): never the password, only what verifies a proof. */
export interface ScramCredentials {
  mechanism: string;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface StoreOps {
  // directory
  createPrincipal(p: NewPrincipal, now: number): Promise<Principal>;
  getPrincipal(id: number): Promise<Principal | undefined>;
  getPrincipalByName(name: string): Promise<Principal | undefined>;
  getPrincipalsByNames(names: string[]): Promise<Principal[]>;
  getPrincipals(ids: number[]): Promise<Principal[]>;
  getPasswordHash(userId: number): Promise<string | null>;
  /** A user's salted SCRAM credentials for a mechanism (`SCRAM-SHA-1`), if computed yet. */
  getScramCredentials(userId: number, mechanism: string): Promise<ScramCredentials | undefined>;
  /** Replaces a user's SCRAM credentials for the mechanism. */
  saveScramCredentials(userId: number, credentials: ScramCredentials, now: number): Promise<void>;
  updatePrincipal(id: number, patch: PrincipalPatch, now: number): Promise<void>;
  listPrincipals(q: {
    kind?: PrincipalKind;
    filter?: string;
    limit: number;
    offset: number;
  }): Promise<Principal[]>;
  addGroupMembers(groupId: number, memberIds: number[]): Promise<void>;
  removeGroupMembers(groupId: number, memberIds: number[]): Promise<void>;
  listGroupMembers(groupId: number): Promise<number[]>;
  /** The principal itself and every group that contains it, directly or through other groups. */
  ancestry(principalId: number): Promise<number[]>;
  /** Where a principal is named (what deleting it would take away). */
  principalReferences(id: number): Promise<PrincipalReferences>;
  /** Deletes a principal with its memberships, room roles, category list entries and grant. */
  deletePrincipal(id: number): Promise<void>;
  /** Every enabled user reached by expanding the given principals (groups recursively). */
  expandToUsers(principalIds: number[]): Promise<number[]>;
  /** Every principal synced from the directory, with its entry's id and DN. */
  listDirectoryLinks(): Promise<DirectoryLink[]>;
  getDirectoryLink(principalId: number): Promise<DirectoryLink | undefined>;
  /** Records (or moves) the directory entry a principal stands for. */
  saveDirectoryLink(link: DirectoryLink): Promise<void>;
  // sessions
  createSession(tokenHash: string, userId: number, now: number, expiresAt: number): Promise<void>;
  getSession(tokenHash: string): Promise<SessionRecord | undefined>;
  revokeSession(tokenHash: string, now: number): Promise<void>;
  revokeUserSessions(userId: number, now: number): Promise<void>;
  // policies and settings
  listPolicies(): Promise<Policy[]>;
  getPolicy(name: string): Promise<Policy | undefined>;
  upsertPolicy(p: Policy): Promise<void>;
  deletePolicy(name: string): Promise<void>;
  setGrant(principalId: number, policyName: string | null): Promise<void>;
  getGrants(principalIds: number[]): Promise<PolicyGrant[]>;
  getSettings(): Promise<Record<string, string>>;
  setSetting(key: string, value: string): Promise<void>;
  // names shared by rooms and categories
  reserveName(name: string, kind: 'room' | 'category', refId: number): Promise<boolean>;
  releaseName(name: string): Promise<void>;
  // categories
  createCategory(c: NewCategory, now: number): Promise<Category>;
  getCategory(id: number): Promise<Category | undefined>;
  getCategoryByName(name: string): Promise<Category | undefined>;
  listCategories(): Promise<Category[]>;
  updateCategory(id: number, patch: Partial<NewCategory>, now: number): Promise<void>;
  deleteCategory(id: number): Promise<void>;
  countRooms(categoryId: number): Promise<number>;
  getCategoryLists(categoryId: number): Promise<CategoryLists>;
  setCategoryList(categoryId: number, list: CategoryList, principalIds: number[]): Promise<void>;
  /** Categories in which any of the principals is a creator. */
  categoriesWithCreator(principalIds: number[]): Promise<number[]>;
  // add-ins
  createAddin(name: string, url: string, now: number): Promise<Addin>;
  getAddin(id: number): Promise<Addin | undefined>;
  getAddinByName(name: string): Promise<Addin | undefined>;
  listAddins(): Promise<Addin[]>;
  updateAddin(id: number, patch: { name?: string; url?: string }): Promise<void>;
  deleteAddin(id: number): Promise<void>;
  // rooms
  createRoom(r: NewRoom, now: number): Promise<Room>;
  getRoom(id: number): Promise<Room | undefined>;
  getRoomByName(name: string): Promise<Room | undefined>;
  listRooms(q: { categoryId?: number; limit: number; offset: number }): Promise<Room[]>;
  updateRoom(id: number, patch: RoomPatch, now: number): Promise<void>;
  deleteRoom(id: number): Promise<void>;
  getRoomRoles(roomId: number): Promise<RoomRoles>;
  setRoomRole(roomId: number, role: RoomRole, principalIds: number[]): Promise<void>;
  searchRooms(q: RoomSearchQuery): Promise<RoomSummary[]>;
  /** Rooms where any of the principals holds the role. */
  roomsWithRole(principalIds: number[], role: RoomRole): Promise<number[]>;
  // messages
  appendMessage(m: NewMessage): Promise<AppendedMessage>;
  getPostKey(authorId: number, clientId: string): Promise<PostKey | undefined>;
  getMessage(id: number): Promise<Message | undefined>;
  getMessageBySeq(roomId: number, seq: number): Promise<Message | undefined>;
  history(q: HistoryQuery): Promise<Message[]>;
  searchMessages(q: MessageSearchQuery): Promise<MessageSearchResult>;
  findMessages(q: {
    roomId?: number;
    authorId?: number;
    from?: number;
    to?: number;
    limit: number;
  }): Promise<Message[]>;
  setMessageState(id: number, state: MessageState, body: string, now: number): Promise<void>;
  /** Deletes a room's messages created at or before `upTo`; returns how many. */
  clearRoom(roomId: number, upTo: number): Promise<number>;
  /**
   * Retention: deletes at most `limit` messages and `limit` files of one category's rooms created
   * before `cutoff` that none of `holds` covers (a hold covers what matches all its criteria; the
   * user is the author or uploader), with the mentions of those messages. Search data goes with
   * the rows. Returns what it deleted per room and the deleted files' storage keys.
   */
  purgeCategory(q: {
    categoryId: number;
    cutoff: number;
    holds: RetentionHold[];
    limit: number;
  }): Promise<RetentionPurged>;
  // invitations and follows
  createInvitations(
    roomId: number,
    userIds: number[],
    invitedBy: number | null,
    now: number,
  ): Promise<Invitation[]>;
  listInvitations(userId: number, q: { unseenOnly: boolean; limit: number }): Promise<Invitation[]>;
  markInvitationsSeen(userId: number, ids: number[], now: number): Promise<number>;
  follow(userId: number, roomId: number, lastReadSeq: number, now: number): Promise<void>;
  unfollow(userId: number, roomId: number): Promise<void>;
  listFollows(userId: number): Promise<Follow[]>;
  markRead(userId: number, roomId: number, seq: number): Promise<void>;
  // files
  createFile(f: NewFile): Promise<FileRecord>;
  getFile(id: number): Promise<FileRecord | undefined>;
  listFileKeys(roomId: number): Promise<string[]>;
  // compliance outbox
  recordActivity(r: ActivityRecord): Promise<void>;
  countActivity(): Promise<number>;
  /** Outbox rows with id above `afterId`, oldest first. */
  readActivity(afterId: number, limit: number): Promise<ActivityRow[]>;
  /** Deletes the outbox rows with these ids (once the compliance store holds them). */
  deleteActivity(ids: number[]): Promise<void>;
  // pool event log (Enterprise Edition)
  /**
   * Appends events to the pool's log under the next ids, in order, and returns the ids. Call it
   * last in the transaction of the change they describe: the ids stay locked until it commits,
   * so ids commit in increasing order with no gap.
   */
  appendPoolEvents(origin: string, payloads: string[], now: number): Promise<number[]>;
  /** Logged events with id above `afterId`, oldest first. */
  readPoolEvents(afterId: number, limit: number): Promise<PoolEventRow[]>;
  /** The last pool event id given out (0 before the first). */
  poolEventHead(): Promise<number>;
  /** Deletes pool events logged before `before`; returns how many. */
  prunePoolEvents(before: number): Promise<number>;
  // admin audit trail
  /** Records an admin call before it runs, as `pending`; returns the entry's id. */
  startAudit(e: NewAuditEntry): Promise<number>;
  finishAudit(
    id: number,
    result: Exclude<AuditResult, 'pending'>,
    errorCode: string | null,
    now: number,
  ): Promise<void>;
  listAudit(q: AuditQuery): Promise<AuditEntry[]>;
  // data archive (perch data export/import, offline)
  /**
   * Raw rows of one archive table with the given columns, as stored (flags 0/1, times in ms).
   * Tables with an `id` come in id order, `limit` at a time after `afterId`; `from`/`to` bound
   * `created_at`. Other tables come whole, in no particular order.
   */
  readArchiveRows(
    table: ArchiveTable,
    columns: readonly string[],
    q?: { afterId?: number; limit?: number; from?: number; to?: number },
  ): Promise<Record<string, unknown>[]>;
  /** Inserts raw rows, ids included (messages get their search data as any insert does). */
  writeArchiveRows(
    table: ArchiveTable,
    columns: readonly string[],
    rows: Record<string, unknown>[],
  ): Promise<void>;
  /** After inserts with explicit ids: new rows get ids above the largest (PostgreSQL identities). */
  resetIdSequences(): Promise<void>;
  /** Rows in the archive tables: an import goes only into a store where this is 0. */
  countArchiveRows(): Promise<number>;
  // topic feeds
  /** A user's feeds, oldest first. */
  listTopicFeeds(userId: number): Promise<TopicFeed[]>;
  /** Adds a feed; throws when the user already has one of that name (any case). */
  createTopicFeed(
    f: { userId: number; name: string; keywords: string[] },
    now: number,
  ): Promise<TopicFeed>;
  /** Changes one of the user's feeds; undefined when the user has no feed with that id. */
  updateTopicFeed(
    userId: number,
    id: number,
    patch: { name?: string; keywords?: string[] },
    now: number,
  ): Promise<TopicFeed | undefined>;
  /** Deletes one of the user's feeds; false when there was none. */
  deleteTopicFeed(userId: number, id: number): Promise<boolean>;
  // published topology (perch topology publish/get)
  /** The newest published topology, or undefined when none was published here. */
  getPublishedTopology(): Promise<PublishedTopology | undefined>;
  /** Records a topology as the next revision; returns it. */
  publishTopology(t: { digest: string; document: string }, now: number): Promise<PublishedTopology>;
  // secrets shared by a pool's front ends
  /**
   * Returns the secret stored under `name`, storing `candidate` first when there is none. Concurrent
   * callers with different candidates all get the same stored value.
   */
  ensureSecret(name: string, candidate: Buffer, now: number): Promise<Buffer>;
  /** The secret stored under `name`, or undefined. */
  getSecret(name: string): Promise<Buffer | undefined>;
  /** Stores `value` under `name`, replacing any (`perch topology publish` for the pool link). */
  putSecret(name: string, value: Buffer, now: number): Promise<void>;
}

/** A topology as `perch topology publish` recorded it. */
export interface PublishedTopology {
  revision: number;
  digest: string;
  /** JSON, store passwords removed. */
  document: string;
  publishedAt: number;
}

export interface Store extends StoreOps {
  readonly dialect: Dialect;
  /** Runs `fn` in one transaction: all its writes commit together or not at all. */
  transaction<T>(fn: (tx: StoreOps) => Promise<T>): Promise<T>;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}
