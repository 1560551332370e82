import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { AccessCache } from './access.js';
import type { PostOrder } from './messages/post-order.js';
import type { DomainEvent, EventLog } from './events.js';
import type { SettingsService } from './settings/commands.js';
import type { SignInThrottle } from './directory/throttle.js';

/** The signed-in user on whose behalf a command runs. */
export interface Actor {
  userId: number;
  login: string;
  displayName: string;
  isAdmin: boolean;
  /** The user and every group containing it (directly or through nested groups). */
  principalIds: number[];
}

/** Hashes and verifies passwords (argon2id in production; see auth/argon2-hasher.ts). */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}

/** One entry read from an LDAP directory, already mapped to Perch's fields. */
export interface DirectoryEntry {
  kind: 'user' | 'group' | 'ou';
  /** Stable across renames and moves: entryUUID, or objectGUID as hex. */
  externalId: string;
  dn: string;
  name: string;
  displayName: string;
  email: string | null;
  description: string | null;
  /** Users: the account is disabled in the directory. */
  disabled: boolean;
  /** Groups: the DNs of its direct members (users and groups). */
  members: string[];
}

export interface DirectorySnapshot {
  users: DirectoryEntry[];
  groups: DirectoryEntry[];
  ous: DirectoryEntry[];
  /** DNs of entries left out because they lack the id or name attribute. */
  skipped: string[];
}

/** Progress of a directory read: which search, and how many entries it has returned. */
export interface DirectoryProgress {
  phase: 'users' | 'disabled users' | 'groups' | 'organisational units';
  entries: number;
}

/** An LDAP directory (src/directory/ldap-connector.ts): read in full, and bind to check passwords. */
export interface DirectoryConnector {
  /** Reads every user, group and OU; throws DirectoryUnavailableError when it cannot. */
  fetch(onProgress?: (p: DirectoryProgress) => void): Promise<DirectorySnapshot>;
  /**
   * Binds as `dn` with `password`: true when the directory accepts it, false when it refuses;
   * throws DirectoryUnavailableError when the directory cannot be reached.
   */
  verifyPassword(dn: string, password: string): Promise<boolean>;
}

/** Where uploaded file bodies live (a folder under the data dir in Standard Edition). */
export interface FileStore {
  put(data: Buffer): Promise<{ key: string; sha256: string; size: number }>;
  path(key: string): string;
  remove(key: string): Promise<void>;
}

/** Receives events after the transaction that caused them has committed. */
export interface EventSink {
  publish(event: DomainEvent): void;
}

/** Everything a domain command needs, built once by the composition root. */
export interface Domain {
  store: Store;
  clock: () => number;
  events: EventSink;
  /** A pool front end's durable event log; undefined in Standard Edition. */
  eventLog?: EventLog;
  access: AccessCache;
  /** Publishes this process's posts in each room's sequence order (messages/post-order.ts). */
  postOrder: PostOrder;
  settings: SettingsService;
  hasher: PasswordHasher;
  files: FileStore;
  throttle: SignInThrottle;
  /** The LDAP directory users and groups are synced from, when one is configured. */
  directory?: DirectoryConnector;
  /** Secret for signing short-lived file download tokens. */
  secret: Buffer;
  sessionTtlMs: number;
  log: Logger;
}

/** A user or group as shown to clients. */
export interface PrincipalRef {
  id: number;
  kind: 'user' | 'group';
  name: string;
  displayName: string;
}
