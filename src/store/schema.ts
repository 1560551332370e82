/**
 * Table types for the Kysely query builder. Timestamps are integer milliseconds since the epoch
 * and flags are 0/1 integers so that both dialects bind them the same way.
 */
import type { ColumnType, Generated } from 'kysely';

export interface PrincipalTable {
  id: Generated<number>;
  kind: 'user' | 'group';
  name: string;
  name_key: string;
  display_name: string;
  email: string | null;
  description: string | null;
  disabled: number;
  is_admin: number;
  password_hash: string | null;
  source: string;
  created_at: number;
  updated_at: number;
}

export interface GroupMemberTable {
  group_id: number;
  member_id: number;
}

export interface SessionTable {
  token_hash: string;
  user_id: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export interface PolicyTable {
  name: string;
  enabled: number;
  description: string | null;
}

export interface PolicyGrantTable {
  principal_id: number;
  policy_name: string;
}

export interface SettingTable {
  key: string;
  value: string;
}

export interface NameTable {
  name_key: string;
  kind: 'room' | 'category';
  ref_id: number;
}

export interface CategoryTable {
  id: Generated<number>;
  name: string;
  description: string;
  file_upload: number;
  invitations: number;
  history: number;
  retention_days: number | null;
  created_at: number;
  updated_at: number;
}

export interface CategoryPrincipalTable {
  category_id: number;
  list: 'allowed' | 'denied' | 'creator';
  principal_id: number;
}

export interface AddinTable {
  id: Generated<number>;
  name: string;
  name_key: string;
  url: string;
  created_at: number;
}

export interface RoomTable {
  id: Generated<number>;
  category_id: number;
  name: string;
  description: string;
  privacy: 'open' | 'closed' | 'secret';
  type: 'normal' | 'auditorium';
  disabled: number;
  invitations: 'inherit' | 'off';
  addin_id: number | null;
  last_seq: number;
  created_by: number | null;
  created_at: number;
  updated_at: number;
}

export interface RoomRoleTable {
  room_id: number;
  role: 'member' | 'manager' | 'presenter';
  principal_id: number;
}

export interface MessageTable {
  id: Generated<number>;
  room_id: number;
  seq: number;
  author_id: number;
  created_at: number;
  body: string;
  title: string | null;
  alert: number;
  file_id: number | null;
  client_id: string | null;
  state: 'normal' | 'removed' | 'replaced';
  edited_at: number | null;
  /** PostgreSQL only: the tsvector the store writes with every insert and edit; never read. */
  search: ColumnType<never, string | undefined, string | undefined>;
}

export interface PostKeyTable {
  author_id: number;
  client_id: string;
  room_id: number;
  seq: number;
  message_id: number | null;
  created_at: number;
}

export interface MentionTable {
  user_id: number;
  room_id: number;
  seq: number;
}

export interface InvitationTable {
  id: Generated<number>;
  user_id: number;
  room_id: number;
  invited_by: number | null;
  created_at: number;
  seen_at: number | null;
}

export interface FollowTable {
  user_id: number;
  room_id: number;
  last_read_seq: number;
  created_at: number;
}

export interface FileTable {
  id: Generated<number>;
  room_id: number;
  uploader_id: number;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  storage_key: string;
  created_at: number;
}

/** Every chat action writes a record here in its own transaction; compliance drains it. */
export interface ActivityOutboxTable {
  id: Generated<number>;
  kind: string;
  actor_id: number | null;
  room_id: number | null;
  created_at: number;
  payload: string;
}

/** A user's keyword filter across followed rooms (migration 003). */
export interface TopicFeedTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  name_key: string;
  /** JSON array of strings. */
  keywords: string;
  created_at: number;
  updated_at: number;
}

/** A published topology (migration 006); the highest revision is the current one. */
export interface TopologyTable {
  revision: number;
  digest: string;
  /** The topology as JSON, store passwords removed. */
  document: string;
  published_at: number;
}

/** One admin API call (migration 002). */
export interface AdminAuditTable {
  id: Generated<number>;
  actor_id: number | null;
  actor_name: string;
  action: string;
  method: string;
  path: string;
  params: string;
  result: 'pending' | 'ok' | 'error';
  error_code: string | null;
  created_at: number;
  finished_at: number | null;
}

/** One non-post event of a pool, written with its change (migration 007). */
export interface PoolEventTable {
  id: number;
  origin: string;
  payload: string;
  created_at: number;
}

/** The single row holding the last pool event id given out (migration 007). */
export interface PoolEventHeadTable {
  id: number;
  last_id: number;
}

/** A secret every front end of a pool shares (migration 009); value in base64. */
export interface ServerSecretTable {
  name: string;
  value: string;
  created_at: number;
}

export interface DirectoryLinkTable {
  principal_id: number;
  external_id: string;
  dn: string;
  entry_kind: 'user' | 'group' | 'ou';
  synced_at: number;
}

/** Salted SCRAM credentials of a user (migration 012); binary values in base64. */
export interface ScramCredentialTable {
  principal_id: number;
  mechanism: string;
  salt: string;
  iterations: number;
  stored_key: string;
  server_key: string;
  updated_at: number;
}

export interface Database {
  principals: PrincipalTable;
  group_members: GroupMemberTable;
  sessions: SessionTable;
  policies: PolicyTable;
  policy_grants: PolicyGrantTable;
  settings: SettingTable;
  names: NameTable;
  categories: CategoryTable;
  category_principals: CategoryPrincipalTable;
  addins: AddinTable;
  rooms: RoomTable;
  room_roles: RoomRoleTable;
  messages: MessageTable;
  post_keys: PostKeyTable;
  mentions: MentionTable;
  invitations: InvitationTable;
  follows: FollowTable;
  files: FileTable;
  activity_outbox: ActivityOutboxTable;
  admin_audit: AdminAuditTable;
  topic_feeds: TopicFeedTable;
  pool_events: PoolEventTable;
  pool_event_head: PoolEventHeadTable;
  topology: TopologyTable;
  server_secrets: ServerSecretTable;
  directory_links: DirectoryLinkTable;
  scram_credentials: ScramCredentialTable;
}
