import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { AccessCache } from './access.js';
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
  settings: SettingsService;
  hasher: PasswordHasher;
  files: FileStore;
  throttle: SignInThrottle;
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
