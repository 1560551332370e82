import {
  sql,
  type Kysely,
  type Selectable,
  type Updateable,
  type ExpressionBuilder,
  type Expression,
  type SqlBool,
} from 'kysely';
import type {
  CategoryTable,
  DirectoryLinkTable,
  Database,
  InvitationTable,
  MessageTable,
  PrincipalTable,
  RoomTable,
  TopicFeedTable,
} from './schema.js';
import type {
  ActivityRecord,
  ActivityRow,
  PoolEventRow,
  Addin,
  AppendedMessage,
  ArchiveTable,
  DirectoryLink,
  ScramCredentials,
  AuditEntry,
  AuditQuery,
  AuditResult,
  Category,
  CategoryList,
  CategoryLists,
  Dialect,
  FileRecord,
  Follow,
  HistoryQuery,
  Invitation,
  Message,
  MessageSearchQuery,
  MessageSearchResult,
  MessageState,
  NewCategory,
  NewFile,
  NewAuditEntry,
  NewMessage,
  NewPrincipal,
  NewRoom,
  Policy,
  PolicyGrant,
  PostKey,
  Principal,
  PrincipalKind,
  PrincipalPatch,
  PrincipalReferences,
  PublishedTopology,
  Room,
  RoomPatch,
  RoomRole,
  RoomRoles,
  RoomSearchQuery,
  RoomSummary,
  RetentionHold,
  RetentionPurged,
  SessionRecord,
  StoreOps,
  TopicFeed,
  Viewer,
} from './store.js';
import { messageSearchQuery, messageSearchVector } from './postgres/text-search.js';

const b = (v: boolean): number => (v ? 1 : 0);
/** PostgreSQL returns bigint columns as strings; both dialects go through this. */
const n = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const nn = (v: unknown): number | null => (v === null || v === undefined ? null : n(v));

/** Case-folded key used for uniqueness of logins and names. */
export function nameKey(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}

function toTopicFeed(r: Selectable<TopicFeedTable>): TopicFeed {
  return {
    id: n(r.id),
    userId: n(r.user_id),
    name: r.name,
    keywords: JSON.parse(r.keywords) as string[],
    createdAt: n(r.created_at),
    updatedAt: n(r.updated_at),
  };
}

function toDirectoryLink(r: Selectable<DirectoryLinkTable>): DirectoryLink {
  return {
    principalId: n(r.principal_id),
    externalId: r.external_id,
    dn: r.dn,
    entryKind: r.entry_kind,
    syncedAt: n(r.synced_at),
  };
}

function toPrincipal(r: Selectable<PrincipalTable>): Principal {
  return {
    id: n(r.id),
    kind: r.kind,
    name: r.name,
    displayName: r.display_name,
    email: r.email,
    description: r.description,
    disabled: r.disabled === 1,
    isAdmin: r.is_admin === 1,
    source: r.source,
    createdAt: n(r.created_at),
  };
}

function toCategory(r: Selectable<CategoryTable>): Category {
  return {
    id: n(r.id),
    name: r.name,
    description: r.description,
    fileUpload: r.file_upload === 1,
    invitations: r.invitations === 1,
    history: r.history === 1,
    retentionDays: r.retention_days === null ? null : n(r.retention_days),
    createdAt: n(r.created_at),
    updatedAt: n(r.updated_at),
  };
}

function toRoom(r: Selectable<RoomTable>): Room {
  return {
    id: n(r.id),
    categoryId: n(r.category_id),
    name: r.name,
    description: r.description,
    privacy: r.privacy,
    type: r.type,
    disabled: r.disabled === 1,
    invitations: r.invitations,
    addinId: nn(r.addin_id),
    lastSeq: n(r.last_seq),
    createdBy: nn(r.created_by),
    createdAt: n(r.created_at),
    updatedAt: n(r.updated_at),
  };
}

/** Every message column but `search`, which is write-only (and PostgreSQL-only). */
const messageColumns = [
  'id',
  'room_id',
  'seq',
  'author_id',
  'created_at',
  'body',
  'title',
  'alert',
  'file_id',
  'client_id',
  'state',
  'edited_at',
] as const;
const messageColumnsOfM = [
  'm.id',
  'm.room_id',
  'm.seq',
  'm.author_id',
  'm.created_at',
  'm.body',
  'm.title',
  'm.alert',
  'm.file_id',
  'm.client_id',
  'm.state',
  'm.edited_at',
] as const;

function toInvitation(r: Selectable<InvitationTable>): Invitation {
  return {
    id: n(r.id),
    userId: n(r.user_id),
    roomId: n(r.room_id),
    invitedBy: nn(r.invited_by),
    createdAt: n(r.created_at),
    seenAt: nn(r.seen_at),
  };
}

function toMessage(r: Omit<Selectable<MessageTable>, 'search'>): Message {
  return {
    id: n(r.id),
    roomId: n(r.room_id),
    seq: n(r.seq),
    authorId: n(r.author_id),
    createdAt: n(r.created_at),
    body: r.body,
    title: r.title,
    alert: r.alert === 1,
    fileId: nn(r.file_id),
    clientId: r.client_id,
    state: r.state,
    editedAt: nn(r.edited_at),
  };
}

type RoomEB = ExpressionBuilder<Database & { r: RoomTable }, 'r'>;

/** The viewer's principals are in the category scope of room `r` (allowed − denied). */
function inScope(eb: RoomEB, viewer: Viewer): Expression<SqlBool> {
  return eb.and([
    eb.exists(
      eb
        .selectFrom('category_principals as cpa')
        .select(sql`1`.as('one'))
        .whereRef('cpa.category_id', '=', 'r.category_id')
        .where('cpa.list', '=', 'allowed')
        .where('cpa.principal_id', 'in', viewer.principalIds),
    ),
    eb.not(
      eb.exists(
        eb
          .selectFrom('category_principals as cpd')
          .select(sql`1`.as('one'))
          .whereRef('cpd.category_id', '=', 'r.category_id')
          .where('cpd.list', '=', 'denied')
          .where('cpd.principal_id', 'in', viewer.principalIds),
      ),
    ),
  ]);
}

function hasRole(eb: RoomEB, viewer: Viewer, roles: RoomRole[]): Expression<SqlBool> {
  return eb.exists(
    eb
      .selectFrom('room_roles as rr')
      .select(sql`1`.as('one'))
      .whereRef('rr.room_id', '=', 'r.id')
      .where('rr.role', 'in', roles)
      .where('rr.principal_id', 'in', viewer.principalIds),
  );
}

/** Rooms the viewer can find in the directory (see domain/rooms/policies.ts for the rules). */
export function findableRoom(eb: RoomEB, viewer: Viewer): Expression<SqlBool> {
  if (viewer.isAdmin) return eb('r.disabled', '=', 0);
  return eb.and([
    eb('r.disabled', '=', 0),
    inScope(eb, viewer),
    eb.or([eb('r.privacy', '!=', 'secret'), hasRole(eb, viewer, ['member', 'manager'])]),
  ]);
}

/** Rooms whose messages the viewer can read: administrators get no bypass here. */
export function readableRoom(eb: RoomEB, viewer: Viewer): Expression<SqlBool> {
  return eb.and([
    eb('r.disabled', '=', 0),
    inScope(eb, viewer),
    eb.or([eb('r.privacy', '=', 'open'), hasRole(eb, viewer, ['member'])]),
  ]);
}

/** Quotes one term or phrase for an FTS5 MATCH expression. */
function ftsQuote(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

/** Kysely-based implementation of every store operation, shared by both dialects. */
export class KyselyOps implements StoreOps {
  constructor(
    protected readonly db: Kysely<Database>,
    readonly dialect: Dialect,
  ) {}

  // ---------------------------------------------------------------- directory

  async createPrincipal(p: NewPrincipal, now: number): Promise<Principal> {
    const row = await this.db
      .insertInto('principals')
      .values({
        kind: p.kind,
        name: p.name,
        name_key: nameKey(p.name),
        display_name: p.displayName,
        email: p.email ?? null,
        description: p.description ?? null,
        disabled: b(p.disabled ?? false),
        is_admin: b(p.isAdmin ?? false),
        password_hash: p.passwordHash ?? null,
        source: p.source ?? 'local',
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toPrincipal(row);
  }

  async getPrincipal(id: number): Promise<Principal | undefined> {
    const row = await this.db
      .selectFrom('principals')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toPrincipal(row);
  }

  async getPrincipalByName(name: string): Promise<Principal | undefined> {
    const row = await this.db
      .selectFrom('principals')
      .selectAll()
      .where('name_key', '=', nameKey(name))
      .executeTakeFirst();
    return row && toPrincipal(row);
  }

  async getPrincipalsByNames(names: string[]): Promise<Principal[]> {
    if (names.length === 0) return [];
    const rows = await this.db
      .selectFrom('principals')
      .selectAll()
      .where('name_key', 'in', names.map(nameKey))
      .execute();
    return rows.map(toPrincipal);
  }

  async getPrincipals(ids: number[]): Promise<Principal[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('principals')
      .selectAll()
      .where('id', 'in', ids)
      .execute();
    return rows.map(toPrincipal);
  }

  async getPasswordHash(userId: number): Promise<string | null> {
    const row = await this.db
      .selectFrom('principals')
      .select('password_hash')
      .where('id', '=', userId)
      .executeTakeFirst();
    return row?.password_hash ?? null;
  }

  async getScramCredentials(
    userId: number,
    mechanism: string,
  ): Promise<ScramCredentials | undefined> {
    const row = await this.db
      .selectFrom('scram_credentials')
      .selectAll()
      .where('principal_id', '=', userId)
      .where('mechanism', '=', mechanism)
      .executeTakeFirst();
    return (
      row && {
        mechanism: row.mechanism,
        salt: Buffer.from(row.salt, 'base64'),
        iterations: Number(row.iterations),
        storedKey: Buffer.from(row.stored_key, 'base64'),
        serverKey: Buffer.from(row.server_key, 'base64'),
      }
    );
  }

  async saveScramCredentials(userId: number, c: ScramCredentials, now: number): Promise<void> {
    const values = {
      principal_id: userId,
      mechanism: c.mechanism,
      salt: c.salt.toString('base64'),
      iterations: c.iterations,
      stored_key: c.storedKey.toString('base64'),
      server_key: c.serverKey.toString('base64'),
      updated_at: now,
    };
    await this.db
      .insertInto('scram_credentials')
      .values(values)
      .onConflict((oc) =>
        oc.columns(['principal_id', 'mechanism']).doUpdateSet({
          salt: values.salt,
          iterations: values.iterations,
          stored_key: values.stored_key,
          server_key: values.server_key,
          updated_at: now,
        }),
      )
      .execute();
  }

  async updatePrincipal(id: number, patch: PrincipalPatch, now: number): Promise<void> {
    const values: Updateable<PrincipalTable> = { updated_at: now };
    if (patch.name !== undefined)
      Object.assign(values, { name: patch.name, name_key: nameKey(patch.name) });
    if (patch.displayName !== undefined) values.display_name = patch.displayName;
    if (patch.email !== undefined) values.email = patch.email;
    if (patch.description !== undefined) values.description = patch.description;
    if (patch.disabled !== undefined) values.disabled = b(patch.disabled);
    if (patch.isAdmin !== undefined) values.is_admin = b(patch.isAdmin);
    if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
    await this.db.updateTable('principals').set(values).where('id', '=', id).execute();
  }

  async listPrincipals(q: {
    kind?: PrincipalKind;
    filter?: string;
    limit: number;
    offset: number;
  }): Promise<Principal[]> {
    let query = this.db.selectFrom('principals').selectAll();
    if (q.kind) query = query.where('kind', '=', q.kind);
    if (q.filter) {
      const like = `%${escapeLike(q.filter.toLowerCase())}%`;
      query = query.where((eb) =>
        eb.or([
          eb('name_key', 'like', sql<string>`${like} ESCAPE '\\'`),
          eb(eb.fn('lower', ['display_name']), 'like', sql<string>`${like} ESCAPE '\\'`),
          eb(eb.fn('lower', ['email']), 'like', sql<string>`${like} ESCAPE '\\'`),
        ]),
      );
    }
    const rows = await query.orderBy('name_key').limit(q.limit).offset(q.offset).execute();
    return rows.map(toPrincipal);
  }

  async addGroupMembers(groupId: number, memberIds: number[]): Promise<void> {
    if (memberIds.length === 0) return;
    await this.db
      .insertInto('group_members')
      .values(memberIds.map((member_id) => ({ group_id: groupId, member_id })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  async removeGroupMembers(groupId: number, memberIds: number[]): Promise<void> {
    if (memberIds.length === 0) return;
    await this.db
      .deleteFrom('group_members')
      .where('group_id', '=', groupId)
      .where('member_id', 'in', memberIds)
      .execute();
  }

  async listGroupMembers(groupId: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('group_members')
      .select('member_id')
      .where('group_id', '=', groupId)
      .execute();
    return rows.map((r) => n(r.member_id));
  }

  async ancestry(principalId: number): Promise<number[]> {
    // UNION (not UNION ALL) stops at cycles in group nesting. The cast types the parameter,
    // which PostgreSQL would otherwise take for text.
    const { rows } = await sql<{ id: number }>`
      WITH RECURSIVE a(id) AS (
        SELECT CAST(${principalId} AS bigint)
        UNION
        SELECT gm.group_id FROM group_members gm JOIN a ON gm.member_id = a.id
      ) SELECT id FROM a`.execute(this.db);
    return rows.map((r) => n(r.id));
  }

  async listDirectoryLinks(): Promise<DirectoryLink[]> {
    const rows = await this.db.selectFrom('directory_links').selectAll().execute();
    return rows.map(toDirectoryLink);
  }

  async getDirectoryLink(principalId: number): Promise<DirectoryLink | undefined> {
    const row = await this.db
      .selectFrom('directory_links')
      .selectAll()
      .where('principal_id', '=', principalId)
      .executeTakeFirst();
    return row && toDirectoryLink(row);
  }

  async saveDirectoryLink(link: DirectoryLink): Promise<void> {
    const values = {
      principal_id: link.principalId,
      external_id: link.externalId,
      dn: link.dn,
      entry_kind: link.entryKind,
      synced_at: link.syncedAt,
    };
    await this.db
      .insertInto('directory_links')
      .values(values)
      .onConflict((oc) =>
        oc.column('principal_id').doUpdateSet({
          external_id: values.external_id,
          dn: values.dn,
          entry_kind: values.entry_kind,
          synced_at: values.synced_at,
        }),
      )
      .execute();
  }

  async principalReferences(id: number): Promise<PrincipalReferences> {
    const [roles, lists, parents, grant] = await Promise.all([
      this.db
        .selectFrom('room_roles')
        .select(['room_id', 'role'])
        .where('principal_id', '=', id)
        .orderBy('room_id')
        .orderBy('role')
        .execute(),
      this.db
        .selectFrom('category_principals')
        .select(['category_id', 'list'])
        .where('principal_id', '=', id)
        .orderBy('category_id')
        .orderBy('list')
        .execute(),
      this.db
        .selectFrom('group_members')
        .select('group_id')
        .where('member_id', '=', id)
        .orderBy('group_id')
        .execute(),
      this.db
        .selectFrom('policy_grants')
        .select('policy_name')
        .where('principal_id', '=', id)
        .executeTakeFirst(),
    ]);
    return {
      roomRoles: roles.map((r) => ({ roomId: n(r.room_id), role: r.role })),
      categoryLists: lists.map((r) => ({ categoryId: n(r.category_id), list: r.list })),
      parentGroups: parents.map((r) => n(r.group_id)),
      policy: grant?.policy_name ?? null,
    };
  }

  async deletePrincipal(id: number): Promise<void> {
    // Explicit deletes, as for rooms, so that both dialects behave alike whatever their FK setup.
    await this.db.deleteFrom('group_members').where('group_id', '=', id).execute();
    await this.db.deleteFrom('group_members').where('member_id', '=', id).execute();
    await this.db.deleteFrom('room_roles').where('principal_id', '=', id).execute();
    await this.db.deleteFrom('category_principals').where('principal_id', '=', id).execute();
    await this.db.deleteFrom('policy_grants').where('principal_id', '=', id).execute();
    await this.db.deleteFrom('sessions').where('user_id', '=', id).execute();
    await this.db.deleteFrom('principals').where('id', '=', id).execute();
  }

  async expandToUsers(principalIds: number[]): Promise<number[]> {
    if (principalIds.length === 0) return [];
    const { rows } = await sql<{ id: number }>`
      WITH RECURSIVE m(id) AS (
        SELECT id FROM principals WHERE id IN (${sql.join(principalIds)})
        UNION
        SELECT gm.member_id FROM group_members gm JOIN m ON gm.group_id = m.id
      ) SELECT p.id FROM principals p JOIN m ON p.id = m.id
        WHERE p.kind = 'user' AND p.disabled = 0 ORDER BY p.id`.execute(this.db);
    return rows.map((r) => n(r.id));
  }

  // ---------------------------------------------------------------- sessions

  async createSession(
    tokenHash: string,
    userId: number,
    now: number,
    expiresAt: number,
  ): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({
        token_hash: tokenHash,
        user_id: userId,
        created_at: now,
        expires_at: expiresAt,
        revoked_at: null,
      })
      .execute();
  }

  async getSession(tokenHash: string): Promise<SessionRecord | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
    return (
      row && {
        userId: n(row.user_id),
        createdAt: n(row.created_at),
        expiresAt: n(row.expires_at),
        revokedAt: nn(row.revoked_at),
      }
    );
  }

  async revokeSession(tokenHash: string, now: number): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ revoked_at: now })
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async revokeUserSessions(userId: number, now: number): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ revoked_at: now })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
  }

  // ---------------------------------------------------------------- policies, settings

  async listPolicies(): Promise<Policy[]> {
    const rows = await this.db.selectFrom('policies').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      enabled: r.enabled === 1,
      description: r.description,
    }));
  }

  async getPolicy(name: string): Promise<Policy | undefined> {
    const r = await this.db
      .selectFrom('policies')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return r && { name: r.name, enabled: r.enabled === 1, description: r.description };
  }

  async upsertPolicy(p: Policy): Promise<void> {
    await this.db
      .insertInto('policies')
      .values({ name: p.name, enabled: b(p.enabled), description: p.description })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet({ enabled: b(p.enabled), description: p.description }),
      )
      .execute();
  }

  async deletePolicy(name: string): Promise<void> {
    await this.db.deleteFrom('policy_grants').where('policy_name', '=', name).execute();
    await this.db.deleteFrom('policies').where('name', '=', name).execute();
  }

  async setGrant(principalId: number, policyName: string | null): Promise<void> {
    if (policyName === null) {
      await this.db.deleteFrom('policy_grants').where('principal_id', '=', principalId).execute();
      return;
    }
    await this.db
      .insertInto('policy_grants')
      .values({ principal_id: principalId, policy_name: policyName })
      .onConflict((oc) => oc.column('principal_id').doUpdateSet({ policy_name: policyName }))
      .execute();
  }

  async getGrants(principalIds: number[]): Promise<PolicyGrant[]> {
    if (principalIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('policy_grants')
      .selectAll()
      .where('principal_id', 'in', principalIds)
      .execute();
    return rows.map((r) => ({ principalId: n(r.principal_id), policyName: r.policy_name }));
  }

  async getSettings(): Promise<Record<string, string>> {
    const rows = await this.db.selectFrom('settings').selectAll().execute();
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.db
      .insertInto('settings')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }

  // ---------------------------------------------------------------- names

  async reserveName(name: string, kind: 'room' | 'category', refId: number): Promise<boolean> {
    const res = await this.db
      .insertInto('names')
      .values({ name_key: nameKey(name), kind, ref_id: refId })
      .onConflict((oc) => oc.column('name_key').doNothing())
      .executeTakeFirst();
    return n(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async releaseName(name: string): Promise<void> {
    await this.db.deleteFrom('names').where('name_key', '=', nameKey(name)).execute();
  }

  // ---------------------------------------------------------------- categories

  async createCategory(c: NewCategory, now: number): Promise<Category> {
    const row = await this.db
      .insertInto('categories')
      .values({
        name: c.name,
        description: c.description,
        file_upload: b(c.fileUpload),
        invitations: b(c.invitations),
        history: b(c.history),
        retention_days: c.retentionDays ?? null,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toCategory(row);
  }

  async getCategory(id: number): Promise<Category | undefined> {
    const r = await this.db
      .selectFrom('categories')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return r && toCategory(r);
  }

  async getCategoryByName(name: string): Promise<Category | undefined> {
    const ref = await this.db
      .selectFrom('names')
      .select('ref_id')
      .where('name_key', '=', nameKey(name))
      .where('kind', '=', 'category')
      .executeTakeFirst();
    return ref ? this.getCategory(n(ref.ref_id)) : undefined;
  }

  async listCategories(): Promise<Category[]> {
    const rows = await this.db.selectFrom('categories').selectAll().orderBy('name').execute();
    return rows.map(toCategory);
  }

  async updateCategory(id: number, patch: Partial<NewCategory>, now: number): Promise<void> {
    const values: Updateable<CategoryTable> = { updated_at: now };
    if (patch.name !== undefined) values.name = patch.name;
    if (patch.description !== undefined) values.description = patch.description;
    if (patch.fileUpload !== undefined) values.file_upload = b(patch.fileUpload);
    if (patch.invitations !== undefined) values.invitations = b(patch.invitations);
    if (patch.history !== undefined) values.history = b(patch.history);
    if (patch.retentionDays !== undefined) values.retention_days = patch.retentionDays;
    await this.db.updateTable('categories').set(values).where('id', '=', id).execute();
  }

  async deleteCategory(id: number): Promise<void> {
    await this.db.deleteFrom('category_principals').where('category_id', '=', id).execute();
    await this.db.deleteFrom('categories').where('id', '=', id).execute();
  }

  async countRooms(categoryId: number): Promise<number> {
    const r = await this.db
      .selectFrom('rooms')
      .select((eb) => eb.fn.countAll().as('c'))
      .where('category_id', '=', categoryId)
      .executeTakeFirstOrThrow();
    return n(r.c);
  }

  async getCategoryLists(categoryId: number): Promise<CategoryLists> {
    const rows = await this.db
      .selectFrom('category_principals')
      .select(['list', 'principal_id'])
      .where('category_id', '=', categoryId)
      .orderBy('principal_id')
      .execute();
    const out: CategoryLists = { allowed: [], denied: [], creators: [] };
    for (const r of rows) {
      (r.list === 'creator' ? out.creators : out[r.list]).push(n(r.principal_id));
    }
    return out;
  }

  async setCategoryList(
    categoryId: number,
    list: CategoryList,
    principalIds: number[],
  ): Promise<void> {
    await this.db
      .deleteFrom('category_principals')
      .where('category_id', '=', categoryId)
      .where('list', '=', list)
      .execute();
    if (principalIds.length === 0) return;
    await this.db
      .insertInto('category_principals')
      .values(
        [...new Set(principalIds)].map((principal_id) => ({
          category_id: categoryId,
          list,
          principal_id,
        })),
      )
      .execute();
  }

  async categoriesWithCreator(principalIds: number[]): Promise<number[]> {
    const rows = await this.db
      .selectFrom('category_principals')
      .select('category_id')
      .distinct()
      .where('list', '=', 'creator')
      .where('principal_id', 'in', principalIds)
      .execute();
    return rows.map((r) => n(r.category_id));
  }

  // ---------------------------------------------------------------- add-ins

  async createAddin(name: string, url: string, now: number): Promise<Addin> {
    const r = await this.db
      .insertInto('addins')
      .values({ name, name_key: nameKey(name), url, created_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { id: n(r.id), name: r.name, url: r.url, createdAt: n(r.created_at) };
  }

  async getAddin(id: number): Promise<Addin | undefined> {
    const r = await this.db
      .selectFrom('addins')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return r && { id: n(r.id), name: r.name, url: r.url, createdAt: n(r.created_at) };
  }

  async getAddinByName(name: string): Promise<Addin | undefined> {
    const r = await this.db
      .selectFrom('addins')
      .selectAll()
      .where('name_key', '=', nameKey(name))
      .executeTakeFirst();
    return r && { id: n(r.id), name: r.name, url: r.url, createdAt: n(r.created_at) };
  }

  async listAddins(): Promise<Addin[]> {
    const rows = await this.db.selectFrom('addins').selectAll().orderBy('name_key').execute();
    return rows.map((r) => ({ id: n(r.id), name: r.name, url: r.url, createdAt: n(r.created_at) }));
  }

  async updateAddin(id: number, patch: { name?: string; url?: string }): Promise<void> {
    const values: { name?: string; name_key?: string; url?: string } = {};
    if (patch.name !== undefined)
      Object.assign(values, { name: patch.name, name_key: nameKey(patch.name) });
    if (patch.url !== undefined) values.url = patch.url;
    if (Object.keys(values).length === 0) return;
    await this.db.updateTable('addins').set(values).where('id', '=', id).execute();
  }

  async deleteAddin(id: number): Promise<void> {
    await this.db.deleteFrom('addins').where('id', '=', id).execute();
  }

  // ---------------------------------------------------------------- rooms

  async createRoom(r: NewRoom, now: number): Promise<Room> {
    const row = await this.db
      .insertInto('rooms')
      .values({
        category_id: r.categoryId,
        name: r.name,
        description: r.description,
        privacy: r.privacy,
        type: r.type,
        disabled: 0,
        invitations: r.invitations,
        addin_id: r.addinId,
        last_seq: 0,
        created_by: r.createdBy,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toRoom(row);
  }

  async getRoom(id: number): Promise<Room | undefined> {
    const r = await this.db.selectFrom('rooms').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRoom(r);
  }

  async getRoomByName(name: string): Promise<Room | undefined> {
    const ref = await this.db
      .selectFrom('names')
      .select('ref_id')
      .where('name_key', '=', nameKey(name))
      .where('kind', '=', 'room')
      .executeTakeFirst();
    return ref ? this.getRoom(n(ref.ref_id)) : undefined;
  }

  async listRooms(q: { categoryId?: number; limit: number; offset: number }): Promise<Room[]> {
    let query = this.db.selectFrom('rooms').selectAll();
    if (q.categoryId !== undefined) query = query.where('category_id', '=', q.categoryId);
    const rows = await query.orderBy('id').limit(q.limit).offset(q.offset).execute();
    return rows.map(toRoom);
  }

  async updateRoom(id: number, patch: RoomPatch, now: number): Promise<void> {
    const values: Updateable<RoomTable> = { updated_at: now };
    if (patch.categoryId !== undefined) values.category_id = patch.categoryId;
    if (patch.name !== undefined) values.name = patch.name;
    if (patch.description !== undefined) values.description = patch.description;
    if (patch.privacy !== undefined) values.privacy = patch.privacy;
    if (patch.type !== undefined) values.type = patch.type;
    if (patch.disabled !== undefined) values.disabled = b(patch.disabled);
    if (patch.invitations !== undefined) values.invitations = patch.invitations;
    if (patch.addinId !== undefined) values.addin_id = patch.addinId;
    await this.db.updateTable('rooms').set(values).where('id', '=', id).execute();
  }

  async deleteRoom(id: number): Promise<void> {
    // Explicit deletes keep SQLite (foreign keys on) and PostgreSQL in step, FTS triggers included.
    await this.db.deleteFrom('room_roles').where('room_id', '=', id).execute();
    await this.db.deleteFrom('follows').where('room_id', '=', id).execute();
    await this.db.deleteFrom('invitations').where('room_id', '=', id).execute();
    await this.db.deleteFrom('mentions').where('room_id', '=', id).execute();
    await this.db.deleteFrom('post_keys').where('room_id', '=', id).execute();
    await this.db.deleteFrom('messages').where('room_id', '=', id).execute();
    await this.db.deleteFrom('files').where('room_id', '=', id).execute();
    await this.db.deleteFrom('rooms').where('id', '=', id).execute();
  }

  async getRoomRoles(roomId: number): Promise<RoomRoles> {
    const rows = await this.db
      .selectFrom('room_roles')
      .select(['role', 'principal_id'])
      .where('room_id', '=', roomId)
      .orderBy('principal_id')
      .execute();
    const out: RoomRoles = { members: [], managers: [], presenters: [] };
    for (const r of rows) out[`${r.role}s`].push(n(r.principal_id));
    return out;
  }

  async setRoomRole(roomId: number, role: RoomRole, principalIds: number[]): Promise<void> {
    await this.db
      .deleteFrom('room_roles')
      .where('room_id', '=', roomId)
      .where('role', '=', role)
      .execute();
    if (principalIds.length === 0) return;
    await this.db
      .insertInto('room_roles')
      .values(
        [...new Set(principalIds)].map((principal_id) => ({ room_id: roomId, role, principal_id })),
      )
      .execute();
  }

  async searchRooms(q: RoomSearchQuery): Promise<RoomSummary[]> {
    let query = this.db
      .selectFrom('rooms as r')
      .innerJoin('categories as c', 'c.id', 'r.category_id')
      .selectAll('r')
      .select('c.name as category_name')
      .select((eb) =>
        eb
          .selectFrom('room_roles as m')
          .select(eb.fn.countAll().as('c'))
          .whereRef('m.room_id', '=', 'r.id')
          .where('m.role', '=', 'member')
          .as('member_count'),
      )
      .where((eb) => findableRoom(eb as unknown as RoomEB, q.viewer));
    if (q.categoryId !== undefined) query = query.where('r.category_id', '=', q.categoryId);
    if (q.text) {
      const like = `%${escapeLike(q.text.toLowerCase())}%`;
      query = query.where((eb) =>
        q.includeDescription
          ? eb.or([
              eb(eb.fn('lower', ['r.name']), 'like', sql<string>`${like} ESCAPE '\\'`),
              eb(eb.fn('lower', ['r.description']), 'like', sql<string>`${like} ESCAPE '\\'`),
            ])
          : eb(eb.fn('lower', ['r.name']), 'like', sql<string>`${like} ESCAPE '\\'`),
      );
    }
    const rows = await query.orderBy('r.name').limit(q.limit).offset(q.offset).execute();
    return rows.map((row) => ({
      ...toRoom(row),
      categoryName: row.category_name,
      memberCount: n(row.member_count ?? 0),
    }));
  }

  async roomsWithRole(principalIds: number[], role: RoomRole): Promise<number[]> {
    const rows = await this.db
      .selectFrom('room_roles')
      .select('room_id')
      .distinct()
      .where('role', '=', role)
      .where('principal_id', 'in', principalIds)
      .execute();
    return rows.map((r) => n(r.room_id));
  }

  // ---------------------------------------------------------------- messages

  async appendMessage(m: NewMessage): Promise<AppendedMessage> {
    // The row lock taken by this UPDATE orders concurrent posts to one room on every dialect.
    const bumped = await this.db
      .updateTable('rooms')
      .set((eb) => ({ last_seq: eb('last_seq', '+', 1) }))
      .where('id', '=', m.roomId)
      .returning('last_seq')
      .executeTakeFirstOrThrow();
    const seq = n(bumped.last_seq);
    let id: number | null = null;
    if (m.store) {
      const row = await this.db
        .insertInto('messages')
        .values({
          room_id: m.roomId,
          seq,
          author_id: m.authorId,
          created_at: m.createdAt,
          body: m.body,
          title: m.title,
          alert: b(m.alert),
          file_id: m.fileId,
          client_id: m.clientId,
          state: 'normal',
          edited_at: null,
          search: this.dialect === 'postgres' ? messageSearchVector(m.title, m.body) : undefined,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      id = n(row.id);
    }
    if (m.clientId !== null) {
      await this.db
        .insertInto('post_keys')
        .values({
          author_id: m.authorId,
          client_id: m.clientId,
          room_id: m.roomId,
          seq,
          message_id: id,
          created_at: m.createdAt,
        })
        .execute();
    }
    if (m.mentionUserIds.length > 0) {
      await this.db
        .insertInto('mentions')
        .values(m.mentionUserIds.map((user_id) => ({ user_id, room_id: m.roomId, seq })))
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    return { id, seq, createdAt: m.createdAt };
  }

  async getPostKey(authorId: number, clientId: string): Promise<PostKey | undefined> {
    const r = await this.db
      .selectFrom('post_keys')
      .selectAll()
      .where('author_id', '=', authorId)
      .where('client_id', '=', clientId)
      .executeTakeFirst();
    return (
      r && {
        roomId: n(r.room_id),
        seq: n(r.seq),
        messageId: nn(r.message_id),
        createdAt: n(r.created_at),
      }
    );
  }

  async getMessage(id: number): Promise<Message | undefined> {
    const r = await this.db
      .selectFrom('messages')
      .select(messageColumns)
      .where('id', '=', id)
      .executeTakeFirst();
    return r && toMessage(r);
  }

  async getMessageBySeq(roomId: number, seq: number): Promise<Message | undefined> {
    const r = await this.db
      .selectFrom('messages')
      .select(messageColumns)
      .where('room_id', '=', roomId)
      .where('seq', '=', seq)
      .executeTakeFirst();
    return r && toMessage(r);
  }

  async history(q: HistoryQuery): Promise<Message[]> {
    let query = this.db
      .selectFrom('messages')
      .select(messageColumns)
      .where('room_id', '=', q.roomId);
    if (q.after !== undefined) {
      query = query.where('seq', '>', q.after);
      if (q.before !== undefined) query = query.where('seq', '<', q.before);
      const rows = await query.orderBy('seq', 'asc').limit(q.limit).execute();
      return rows.map(toMessage);
    }
    if (q.before !== undefined) query = query.where('seq', '<', q.before);
    const rows = await query.orderBy('seq', 'desc').limit(q.limit).execute();
    return rows.reverse().map(toMessage);
  }

  async searchMessages(q: MessageSearchQuery): Promise<MessageSearchResult> {
    const terms = [...(q.terms ?? []), ...(q.phrases ?? [])];
    // On SQLite a word search is driven by the FTS5 index, newest match first: FTS5 walks its
    // doclist by rowid (= message id) in descending order, so the page and the capped count stop
    // after the first rows that pass the permission and filter checks. Starting from `messages`
    // with `id IN (matches)` instead read and sorted every match of a common word (seconds at
    // 10 M messages). The words are matched in the title and body columns only; a search within
    // rooms also matches the index's `room` column (schema 8), so that FTS5 intersects the rooms'
    // doclists with the words' and its cost follows the rarer side, not how common the word is
    // everywhere. CROSS JOIN makes the index the outer loop.
    const inRooms = q.roomIds !== undefined && q.roomIds.length > 0;
    const match =
      terms.length > 0
        ? [
            `{title body} : (${terms.map(ftsQuote).join(' AND ')})`,
            ...(inRooms ? [`room : (${q.roomIds!.map((id) => `"${id}"`).join(' OR ')})`] : []),
          ].join(' AND ')
        : undefined;
    const ftsDriven = this.dialect === 'sqlite' && match !== undefined;
    // PostgreSQL estimates the readable-room check, joined per message, at one row, and then
    // plans any word as a walk over every room's messages and a sort (seconds for a common word at
    // 1 M messages). Given the readable rooms as a list of ids instead, it estimates the word's
    // frequency from the tsvector statistics: newest first by primary key for a common word,
    // the GIN index for a rare one.
    let readable: number[] | undefined;
    if (this.dialect === 'postgres') {
      let rooms = this.db
        .selectFrom('rooms as r')
        .select('r.id')
        .where((eb) => readableRoom(eb as unknown as RoomEB, q.viewer));
      if (inRooms) rooms = rooms.where('r.id', 'in', q.roomIds!);
      readable = (await rooms.execute()).map((r) => r.id);
      if (readable.length === 0) return { messages: [], count: 0, exceededLimit: false };
    }
    const fromMessages = () =>
      this.db.selectFrom('messages as m').innerJoin('rooms as r', 'r.id', 'm.room_id');
    const base = () => {
      if (readable !== undefined) {
        let query = this.db
          .selectFrom('messages as m')
          .where('m.state', '!=', 'removed')
          .where(sql<boolean>`m.room_id = ANY(${readable}::bigint[])`);
        if (terms.length > 0) {
          // A term without a single token matches nothing, as an empty FTS5 phrase does.
          const tsquery = messageSearchQuery(terms);
          query = query.where(
            tsquery === undefined
              ? sql<boolean>`false`
              : sql<boolean>`m.search @@ ${tsquery}::tsquery`,
          );
        }
        if (q.authorIds && q.authorIds.length > 0)
          query = query.where('m.author_id', 'in', q.authorIds);
        if (q.from !== undefined) query = query.where('m.created_at', '>=', q.from);
        if (q.to !== undefined) query = query.where('m.created_at', '<=', q.to);
        return query as unknown as ReturnType<typeof fromMessages>;
      }
      let query = ftsDriven
        ? (this.db
            .selectFrom(sql`messages_fts`.as('messages_fts'))
            .crossJoin('messages as m')
            .innerJoin('rooms as r', 'r.id', 'm.room_id')
            .where(
              sql<boolean>`messages_fts MATCH ${match} AND messages_fts.rowid = m.id`,
            ) as unknown as ReturnType<typeof fromMessages>)
        : fromMessages();
      query = query
        .where('m.state', '!=', 'removed')
        .where((eb) => readableRoom(eb as unknown as RoomEB, q.viewer));
      if (q.roomIds && q.roomIds.length > 0) query = query.where('m.room_id', 'in', q.roomIds);
      if (q.authorIds && q.authorIds.length > 0)
        query = query.where('m.author_id', 'in', q.authorIds);
      if (q.from !== undefined) query = query.where('m.created_at', '>=', q.from);
      if (q.to !== undefined) query = query.where('m.created_at', '<=', q.to);
      return query;
    };
    // The requested page, newest first: message id order (ids grow in the order posts are written).
    const newestFirst = () =>
      base()
        .select(messageColumnsOfM)
        .orderBy(ftsDriven ? sql`messages_fts.rowid` : sql`m.id`, 'desc')
        .limit(q.limit)
        .offset(q.offset)
        .execute();
    if (readable !== undefined && terms.length > 0) {
      // PostgreSQL word search, first step: every readable match up to `countLimit + 1`, counted,
      // and the ids of the requested page among them, in one statement. A lexeme missing from
      // the column's `most_common_elems` is estimated at half the least frequent one's frequency
      // (at most 0.5 %), however rare it is: at 10 M messages 4,750 rows for a word in 98.
      // Planned with `ORDER BY id DESC LIMIT 50`, that made PostgreSQL walk the primary key
      // backwards expecting a match every 2,000 rows, and filter all 10 M rows (15.9 s). The
      // matches here sit in a MATERIALIZED CTE without a LIMIT, which PostgreSQL plans for full
      // retrieval: the GIN index for a word it does not know to be common (at 4 M messages the
      // bitmap for 0.5 % of the rows is costed at 10,700 against 275,600 for a sequential scan),
      // a sequential scan for a common one. The CTE is read lazily, so the outer LIMIT stops
      // either after `countLimit + 1` matches. With more than `countLimit`, the count is capped
      // and the page is the newest-first query below, which walks few rows for a common word.
      const probe = await sql<{ c: number | string; page: (number | string)[] }>`
        WITH hits AS MATERIALIZED (${base().select('m.id')}),
          probe AS (SELECT id FROM hits LIMIT ${q.countLimit + 1})
        SELECT (SELECT count(*) FROM probe) AS c,
          ARRAY(SELECT id FROM probe ORDER BY id DESC LIMIT ${q.limit} OFFSET ${q.offset}) AS page
      `.execute(this.db);
      const count = n(probe.rows[0]!.c);
      if (count <= q.countLimit) {
        const page = probe.rows[0]!.page.map(n);
        // The page's rows are read with every condition again, as the newest-first query would.
        const rows =
          page.length === 0
            ? []
            : await base()
                .where(sql<boolean>`m.id = ANY(${page}::bigint[])`)
                .select(messageColumnsOfM)
                .orderBy(sql`m.id`, 'desc')
                .execute();
        return { messages: rows.map(toMessage), count, exceededLimit: false };
      }
      const rows = await newestFirst();
      return { messages: rows.map(toMessage), count: q.countLimit, exceededLimit: true };
    }
    const rows = await newestFirst();
    const counted = await this.db
      .selectFrom(
        base()
          .select('m.id')
          .limit(q.countLimit + 1)
          .as('hits'),
      )
      .select((eb) => eb.fn.countAll().as('c'))
      .executeTakeFirstOrThrow();
    const count = n(counted.c);
    return {
      messages: rows.map(toMessage),
      count: Math.min(count, q.countLimit),
      exceededLimit: count > q.countLimit,
    };
  }

  async findMessages(q: {
    roomId?: number;
    authorId?: number;
    from?: number;
    to?: number;
    limit: number;
  }): Promise<Message[]> {
    let query = this.db.selectFrom('messages').select(messageColumns);
    if (q.roomId !== undefined) query = query.where('room_id', '=', q.roomId);
    if (q.authorId !== undefined) query = query.where('author_id', '=', q.authorId);
    if (q.from !== undefined) query = query.where('created_at', '>=', q.from);
    if (q.to !== undefined) query = query.where('created_at', '<=', q.to);
    const rows = await query.orderBy('id').limit(q.limit).execute();
    return rows.map(toMessage);
  }

  async setMessageState(id: number, state: MessageState, body: string, now: number): Promise<void> {
    const title = state === 'removed' ? null : undefined;
    let search: string | undefined;
    if (this.dialect === 'postgres') {
      const kept =
        title === undefined
          ? await this.db
              .selectFrom('messages')
              .select('title')
              .where('id', '=', id)
              .executeTakeFirst()
          : undefined;
      search = messageSearchVector(kept?.title ?? null, body);
    }
    await this.db
      .updateTable('messages')
      .set({ state, body, title, edited_at: now, search })
      .where('id', '=', id)
      .execute();
  }

  async clearRoom(roomId: number, upTo: number): Promise<number> {
    // Mentions of cleared messages would keep counting as unread mentions.
    await this.db
      .deleteFrom('mentions')
      .where('room_id', '=', roomId)
      .where('seq', 'in', (eb) =>
        eb
          .selectFrom('messages')
          .select('seq')
          .where('room_id', '=', roomId)
          .where('created_at', '<=', upTo),
      )
      .execute();
    const res = await this.db
      .deleteFrom('messages')
      .where('room_id', '=', roomId)
      .where('created_at', '<=', upTo)
      .executeTakeFirst();
    return n(res.numDeletedRows);
  }

  async purgeCategory(q: {
    categoryId: number;
    cutoff: number;
    holds: RetentionHold[];
    limit: number;
  }): Promise<RetentionPurged> {
    const out: RetentionPurged = { rooms: [], fileKeys: [] };
    const unbounded = (h: RetentionHold) =>
      h.roomId === null && h.userId === null && h.from === null && h.to === null;
    if (q.holds.some(unbounded)) return out;
    // NOT (hold 1 covers it OR hold 2 covers it ...), a hold covering what matches all its criteria.
    const notHeld = (room: string, user: string, at: string) => {
      const covers = q.holds.map((h) => {
        const parts = [];
        if (h.roomId !== null) parts.push(sql`${sql.ref(room)} = ${h.roomId}`);
        if (h.userId !== null) parts.push(sql`${sql.ref(user)} = ${h.userId}`);
        if (h.from !== null) parts.push(sql`${sql.ref(at)} >= ${h.from}`);
        if (h.to !== null) parts.push(sql`${sql.ref(at)} <= ${h.to}`);
        return sql`(${sql.join(parts, sql` AND `)})`;
      });
      return covers.length === 0
        ? sql<boolean>`1 = 1`
        : sql<boolean>`NOT (${sql.join(covers, sql` OR `)})`;
    };
    // Rows of the category older than the cutoff and under no hold: what this batch may purge.
    const purgeable = (table: 'messages' | 'files', author: 'author_id' | 'uploader_id') => {
      const column = (name: string) => `${table}.${name}`;
      return sql<boolean>`${sql.ref(column('room_id'))} IN (SELECT id FROM rooms WHERE category_id = ${q.categoryId}) AND ${sql.ref(column('created_at'))} < ${q.cutoff} AND ${notHeld(column('room_id'), column(author), column('created_at'))}`;
    };
    const counts = new Map<number, { roomId: number; messages: number; files: number }>();
    const count = (roomId: number) => {
      let c = counts.get(roomId);
      if (!c) counts.set(roomId, (c = { roomId, messages: 0, files: 0 }));
      return c;
    };
    const messages = await this.db
      .selectFrom('messages')
      .select(['id', 'room_id', 'seq'])
      .where(purgeable('messages', 'author_id'))
      .orderBy('id')
      .limit(q.limit)
      .execute();
    if (messages.length > 0) {
      const seqs = new Map<number, number[]>();
      for (const m of messages) {
        const roomId = n(m.room_id);
        let roomSeqs = seqs.get(roomId);
        if (!roomSeqs) seqs.set(roomId, (roomSeqs = []));
        roomSeqs.push(n(m.seq));
        count(roomId).messages += 1;
      }
      // Mentions of purged messages would keep counting as unread mentions.
      await this.db
        .deleteFrom('mentions')
        .where((eb) =>
          eb.or(
            [...seqs].map(([roomId, s]) =>
              eb.and([eb('room_id', '=', roomId), eb('seq', 'in', s)]),
            ),
          ),
        )
        .execute();
      await this.db
        .deleteFrom('messages')
        .where(
          'id',
          'in',
          messages.map((m) => m.id),
        )
        .execute();
    }
    const files = await this.db
      .selectFrom('files')
      .select(['id', 'room_id', 'storage_key'])
      .where(purgeable('files', 'uploader_id'))
      .orderBy('id')
      .limit(q.limit)
      .execute();
    if (files.length > 0) {
      for (const f of files) count(n(f.room_id)).files += 1;
      await this.db
        .deleteFrom('files')
        .where(
          'id',
          'in',
          files.map((f) => f.id),
        )
        .execute();
      out.fileKeys = files.map((f) => f.storage_key);
    }
    out.rooms = [...counts.values()].sort((a, b) => a.roomId - b.roomId);
    return out;
  }

  // ---------------------------------------------------------------- invitations, follows

  async createInvitations(
    roomId: number,
    userIds: number[],
    invitedBy: number | null,
    now: number,
  ): Promise<Invitation[]> {
    if (userIds.length === 0) return [];
    const rows = await this.db
      .insertInto('invitations')
      .values(
        userIds.map((user_id) => ({
          user_id,
          room_id: roomId,
          invited_by: invitedBy,
          created_at: now,
          seen_at: null,
        })),
      )
      .returningAll()
      .execute();
    return rows.map(toInvitation);
  }

  async listInvitations(
    userId: number,
    q: { unseenOnly: boolean; limit: number },
  ): Promise<Invitation[]> {
    let query = this.db.selectFrom('invitations').selectAll().where('user_id', '=', userId);
    if (q.unseenOnly) query = query.where('seen_at', 'is', null);
    const rows = await query.orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map(toInvitation);
  }

  async markInvitationsSeen(userId: number, ids: number[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    const res = await this.db
      .updateTable('invitations')
      .set({ seen_at: now })
      .where('user_id', '=', userId)
      .where('id', 'in', ids)
      .where('seen_at', 'is', null)
      .executeTakeFirst();
    return n(res.numUpdatedRows);
  }

  async follow(userId: number, roomId: number, lastReadSeq: number, now: number): Promise<void> {
    await this.db
      .insertInto('follows')
      .values({ user_id: userId, room_id: roomId, last_read_seq: lastReadSeq, created_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'room_id']).doNothing())
      .execute();
  }

  async unfollow(userId: number, roomId: number): Promise<void> {
    await this.db
      .deleteFrom('follows')
      .where('user_id', '=', userId)
      .where('room_id', '=', roomId)
      .execute();
  }

  async listFollows(userId: number): Promise<Follow[]> {
    const rows = await this.db
      .selectFrom('follows as f')
      .innerJoin('rooms as r', 'r.id', 'f.room_id')
      .select(['f.room_id', 'f.last_read_seq', 'f.created_at', 'r.last_seq'])
      .select((eb) =>
        eb
          .selectFrom('mentions as mn')
          .select(eb.fn.countAll().as('c'))
          .whereRef('mn.room_id', '=', 'f.room_id')
          .where('mn.user_id', '=', userId)
          .whereRef('mn.seq', '>', 'f.last_read_seq')
          .as('mentions'),
      )
      .where('f.user_id', '=', userId)
      .orderBy('f.created_at')
      .execute();
    return rows.map((r) => ({
      roomId: n(r.room_id),
      lastReadSeq: n(r.last_read_seq),
      lastSeq: n(r.last_seq),
      mentions: n(r.mentions ?? 0),
      createdAt: n(r.created_at),
    }));
  }

  async markRead(userId: number, roomId: number, seq: number): Promise<void> {
    await this.db
      .updateTable('follows')
      .set({ last_read_seq: seq })
      .where('user_id', '=', userId)
      .where('room_id', '=', roomId)
      .where('last_read_seq', '<', seq)
      .execute();
  }

  // ---------------------------------------------------------------- files

  async createFile(f: NewFile): Promise<FileRecord> {
    const r = await this.db
      .insertInto('files')
      .values({
        room_id: f.roomId,
        uploader_id: f.uploaderId,
        name: f.name,
        content_type: f.contentType,
        size: f.size,
        sha256: f.sha256,
        storage_key: f.storageKey,
        created_at: f.createdAt,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { ...f, id: n(r.id) };
  }

  async getFile(id: number): Promise<FileRecord | undefined> {
    const r = await this.db.selectFrom('files').selectAll().where('id', '=', id).executeTakeFirst();
    return (
      r && {
        id: n(r.id),
        roomId: n(r.room_id),
        uploaderId: n(r.uploader_id),
        name: r.name,
        contentType: r.content_type,
        size: n(r.size),
        sha256: r.sha256,
        storageKey: r.storage_key,
        createdAt: n(r.created_at),
      }
    );
  }

  async listFileKeys(roomId: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('files')
      .select('storage_key')
      .where('room_id', '=', roomId)
      .execute();
    return rows.map((r) => r.storage_key);
  }

  // ---------------------------------------------------------------- outbox

  async recordActivity(r: ActivityRecord): Promise<void> {
    await this.db
      .insertInto('activity_outbox')
      .values({
        kind: r.kind,
        actor_id: r.actorId,
        room_id: r.roomId,
        created_at: r.createdAt,
        payload: JSON.stringify(r.payload),
      })
      .execute();
  }

  async countActivity(): Promise<number> {
    const r = await this.db
      .selectFrom('activity_outbox')
      .select((eb) => eb.fn.countAll().as('c'))
      .executeTakeFirstOrThrow();
    return n(r.c);
  }

  async readActivity(afterId: number, limit: number): Promise<ActivityRow[]> {
    const rows = await this.db
      .selectFrom('activity_outbox')
      .selectAll()
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: n(r.id),
      kind: r.kind,
      actorId: nn(r.actor_id),
      roomId: nn(r.room_id),
      createdAt: n(r.created_at),
      payload: JSON.parse(r.payload) as Record<string, unknown>,
    }));
  }

  async deleteActivity(ids: number[]): Promise<void> {
    // Chunked so that a large batch stays under the dialects' bound-parameter limits.
    for (let i = 0; i < ids.length; i += 500) {
      await this.db
        .deleteFrom('activity_outbox')
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
    }
  }

  // ---------------------------------------------------------------- pool event log

  async appendPoolEvents(origin: string, payloads: string[], now: number): Promise<number[]> {
    if (payloads.length === 0) return [];
    // The head row's lock orders concurrent writers until they commit (see migration 007).
    const head = await this.db
      .updateTable('pool_event_head')
      .set((eb) => ({ last_id: eb('last_id', '+', payloads.length) }))
      .where('id', '=', 1)
      .returning('last_id')
      .executeTakeFirstOrThrow();
    const first = n(head.last_id) - payloads.length + 1;
    const ids = payloads.map((_, i) => first + i);
    await this.db
      .insertInto('pool_events')
      .values(payloads.map((payload, i) => ({ id: ids[i]!, origin, payload, created_at: now })))
      .execute();
    return ids;
  }

  async readPoolEvents(afterId: number, limit: number): Promise<PoolEventRow[]> {
    const rows = await this.db
      .selectFrom('pool_events')
      .selectAll()
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: n(r.id),
      origin: r.origin,
      payload: r.payload,
      createdAt: n(r.created_at),
    }));
  }

  async poolEventHead(): Promise<number> {
    const r = await this.db
      .selectFrom('pool_event_head')
      .select('last_id')
      .where('id', '=', 1)
      .executeTakeFirst();
    return r ? n(r.last_id) : 0;
  }

  async prunePoolEvents(before: number): Promise<number> {
    const res = await this.db
      .deleteFrom('pool_events')
      .where('created_at', '<', before)
      .executeTakeFirst();
    return n(res.numDeletedRows);
  }

  // ---------------------------------------------------------------- admin audit

  async startAudit(e: NewAuditEntry): Promise<number> {
    const r = await this.db
      .insertInto('admin_audit')
      .values({
        actor_id: e.actorId,
        actor_name: e.actorName,
        action: e.action,
        method: e.method,
        path: e.path,
        params: JSON.stringify(e.params),
        result: 'pending',
        error_code: null,
        created_at: e.createdAt,
        finished_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return n(r.id);
  }

  async finishAudit(
    id: number,
    result: Exclude<AuditResult, 'pending'>,
    errorCode: string | null,
    now: number,
  ): Promise<void> {
    await this.db
      .updateTable('admin_audit')
      .set({ result, error_code: errorCode, finished_at: now })
      .where('id', '=', id)
      .execute();
  }

  async listAudit(q: AuditQuery): Promise<AuditEntry[]> {
    let query = this.db.selectFrom('admin_audit').selectAll();
    if (q.actor !== undefined) {
      query = query.where((eb) => eb(eb.fn('lower', ['actor_name']), '=', q.actor!.toLowerCase()));
    }
    if (q.action !== undefined) {
      query = q.action.endsWith('*')
        ? query.where(
            'action',
            'like',
            sql<string>`${`${escapeLike(q.action.slice(0, -1))}%`} ESCAPE '\\'`,
          )
        : query.where('action', '=', q.action);
    }
    if (q.result !== undefined) query = query.where('result', '=', q.result);
    if (q.since !== undefined) query = query.where('created_at', '>=', q.since);
    if (q.until !== undefined) query = query.where('created_at', '<=', q.until);
    if (q.beforeId !== undefined) query = query.where('id', '<', q.beforeId);
    const rows = await query.orderBy('id', 'desc').limit(q.limit).execute();
    return rows.map((r) => ({
      id: n(r.id),
      actorId: nn(r.actor_id),
      actorName: r.actor_name,
      action: r.action,
      method: r.method,
      path: r.path,
      params: JSON.parse(r.params) as Record<string, unknown>,
      result: r.result,
      errorCode: r.error_code,
      createdAt: n(r.created_at),
      finishedAt: nn(r.finished_at),
    }));
  }

  // ---------------------------------------------------------------- topic feeds

  async listTopicFeeds(userId: number): Promise<TopicFeed[]> {
    const rows = await this.db
      .selectFrom('topic_feeds')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('id')
      .execute();
    return rows.map(toTopicFeed);
  }

  async createTopicFeed(
    f: { userId: number; name: string; keywords: string[] },
    now: number,
  ): Promise<TopicFeed> {
    const row = await this.db
      .insertInto('topic_feeds')
      .values({
        user_id: f.userId,
        name: f.name,
        name_key: nameKey(f.name),
        keywords: JSON.stringify(f.keywords),
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toTopicFeed(row);
  }

  async updateTopicFeed(
    userId: number,
    id: number,
    patch: { name?: string; keywords?: string[] },
    now: number,
  ): Promise<TopicFeed | undefined> {
    const values: Updateable<TopicFeedTable> = { updated_at: now };
    if (patch.name !== undefined) {
      values.name = patch.name;
      values.name_key = nameKey(patch.name);
    }
    if (patch.keywords !== undefined) values.keywords = JSON.stringify(patch.keywords);
    const row = await this.db
      .updateTable('topic_feeds')
      .set(values)
      .where('user_id', '=', userId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row ? toTopicFeed(row) : undefined;
  }

  async deleteTopicFeed(userId: number, id: number): Promise<boolean> {
    const res = await this.db
      .deleteFrom('topic_feeds')
      .where('user_id', '=', userId)
      .where('id', '=', id)
      .executeTakeFirst();
    return n(res.numDeletedRows) > 0;
  }

  // ---------------------------------------------------------------- published topology

  async getPublishedTopology(): Promise<PublishedTopology | undefined> {
    const row = await this.db
      .selectFrom('topology')
      .selectAll()
      .orderBy('revision', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row
      ? {
          revision: n(row.revision),
          digest: row.digest,
          document: row.document,
          publishedAt: n(row.published_at),
        }
      : undefined;
  }

  async publishTopology(
    t: { digest: string; document: string },
    now: number,
  ): Promise<PublishedTopology> {
    const last = await this.db
      .selectFrom('topology')
      .select((eb) => eb.fn.max('revision').as('revision'))
      .executeTakeFirst();
    const revision = n(last?.revision ?? 0) + 1;
    await this.db
      .insertInto('topology')
      .values({ revision, digest: t.digest, document: t.document, published_at: now })
      .execute();
    return { revision, digest: t.digest, document: t.document, publishedAt: now };
  }

  async ensureSecret(name: string, candidate: Buffer, now: number): Promise<Buffer> {
    await this.db
      .insertInto('server_secrets')
      .values({ name, value: candidate.toString('base64'), created_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const row = await this.db
      .selectFrom('server_secrets')
      .select('value')
      .where('name', '=', name)
      .executeTakeFirstOrThrow();
    return Buffer.from(row.value, 'base64');
  }

  async getSecret(name: string): Promise<Buffer | undefined> {
    const row = await this.db
      .selectFrom('server_secrets')
      .select('value')
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? Buffer.from(row.value, 'base64') : undefined;
  }

  async putSecret(name: string, value: Buffer, now: number): Promise<void> {
    const encoded = value.toString('base64');
    await this.db
      .insertInto('server_secrets')
      .values({ name, value: encoded, created_at: now })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value: encoded, created_at: now }))
      .execute();
  }

  // ---------------------------------------------------------------- data archive

  async readArchiveRows(
    table: ArchiveTable,
    columns: readonly string[],
    q: { afterId?: number; limit?: number; from?: number; to?: number } = {},
  ): Promise<Record<string, unknown>[]> {
    const conditions = [sql`1 = 1`];
    if (q.afterId !== undefined) conditions.push(sql`id > ${q.afterId}`);
    if (q.from !== undefined) conditions.push(sql`created_at >= ${q.from}`);
    if (q.to !== undefined) conditions.push(sql`created_at <= ${q.to}`);
    const paged = q.limit !== undefined;
    const { rows } = await sql<Record<string, unknown>>`
      SELECT ${sql.join(columns.map((c) => sql.ref(c)))} FROM ${sql.table(table)}
      WHERE ${sql.join(conditions, sql` AND `)}
      ${paged ? sql`ORDER BY id LIMIT ${q.limit}` : sql``}`.execute(this.db);
    return rows;
  }

  async writeArchiveRows(
    table: ArchiveTable,
    columns: readonly string[],
    rows: Record<string, unknown>[],
  ): Promise<void> {
    if (rows.length === 0) return;
    const search = table === 'messages' && this.dialect === 'postgres';
    const cols = search ? [...columns, 'search'] : columns;
    const values = rows.map((r) => {
      const v = columns.map((c) => r[c] ?? null);
      if (search) v.push(messageSearchVector(r.title as string | null, r.body as string));
      return sql`(${sql.join(v)})`;
    });
    await sql`INSERT INTO ${sql.table(table)} (${sql.join(cols.map((c) => sql.ref(c)))})
      VALUES ${sql.join(values)}`.execute(this.db);
  }

  async resetIdSequences(): Promise<void> {
    if (this.dialect !== 'postgres') return; // SQLite's AUTOINCREMENT follows explicit ids itself.
    for (const table of ['principals', 'categories', 'addins', 'rooms', 'files', 'messages']) {
      await sql`SELECT setval(pg_get_serial_sequence(${table}, 'id'), max(id))
        FROM ${sql.table(table)} HAVING max(id) IS NOT NULL`.execute(this.db);
    }
  }

  async countArchiveRows(): Promise<number> {
    let total = 0;
    for (const table of ['settings', 'policies', 'principals', 'categories', 'addins', 'rooms']) {
      const { rows } = await sql<{ c: unknown }>`SELECT count(*) AS c FROM ${sql.table(
        table,
      )}`.execute(this.db);
      total += n(rows[0]!.c);
    }
    return total;
  }
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
