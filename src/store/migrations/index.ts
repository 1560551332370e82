import type { Kysely } from 'kysely';
import type { Dialect } from '../store.js';
import * as m001 from './001-initial.js';
import * as m002 from './002-admin-audit.js';
import * as m003 from './003-topic-feeds.js';
import * as m004 from './004-front-ends.js';
import * as m005 from './005-category-retention.js';
import * as m006 from './006-topology.js';
import * as m007 from './007-pool-events.js';
import * as m008 from './008-fts-rooms.js';
import * as m009 from './009-server-secrets.js';
import * as m010 from './010-directory-links.js';
import * as m011 from './011-pool-state.js';
import * as m012 from './012-scram-credentials.js';

export interface Migration {
  up(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
}

/** Every migration, listed explicitly and applied in key order. Never edit a shipped one. */
export const migrations: Record<string, Migration> = {
  '001': m001,
  '002': m002,
  '003': m003,
  '004': m004,
  '005': m005,
  '006': m006,
  '007': m007,
  '008': m008,
  '009': m009,
  '010': m010,
  '011': m011,
  '012': m012,
};
