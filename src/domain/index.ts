import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import { AccessCache } from './access.js';
import { SignInThrottle } from './directory/throttle.js';
import { PostOrder } from './messages/post-order.js';
import { SettingsService } from './settings/commands.js';
import type { EventLog } from './events.js';
import type { DirectoryConnector, Domain, EventSink, FileStore, PasswordHasher } from './types.js';

export interface DomainOptions {
  store: Store;
  events: EventSink;
  /** Set for a front end of a pool: events are logged with their changes (src/cluster). */
  eventLog?: EventLog;
  hasher: PasswordHasher;
  files: FileStore;
  secret: Buffer;
  log: Logger;
  clock?: () => number;
  sessionTtlMs?: number;
  directory?: DirectoryConnector;
}

/** Builds the domain services shared by every transport. */
export function createDomain(opts: DomainOptions): Domain {
  const clock = opts.clock ?? Date.now;
  return {
    store: opts.store,
    clock,
    events: opts.events,
    eventLog: opts.eventLog,
    access: new AccessCache(opts.store),
    postOrder: new PostOrder(),
    settings: new SettingsService(opts.store),
    hasher: opts.hasher,
    files: opts.files,
    throttle: new SignInThrottle(clock),
    secret: opts.secret,
    sessionTtlMs: opts.sessionTtlMs ?? 30 * 24 * 3_600_000,
    log: opts.log,
    directory: opts.directory,
  };
}
