import fs from 'node:fs';
import path from 'node:path';
import { openPostgresComplianceStore } from '../compliance/postgres-compliance-store.js';
import { openSqliteComplianceStore } from '../compliance/sqlite-compliance-store.js';
import { complianceMigrations } from '../compliance/migrations/index.js';
import { PerchError, StoreUnreachableError } from '../errors.js';
import { migrations } from './migrations/index.js';
import { openStore } from './open-store.js';
import { redact, type StoreLocation } from './store-url.js';

/** What a store holds: chat (rooms, messages; also a pool's backup store) or compliance records. */
export type StoreRole = 'chat' | 'compliance';

export interface InstallResult {
  role: StoreRole;
  /** The store's URL with any password removed, or the SQLite file. */
  store: string;
  dialect: 'sqlite' | 'postgres';
  state: 'created' | 'migrated' | 'up-to-date';
  applied: string[];
  /** The newest migration this Perch knows: the schema the store is now at. */
  schema: string | null;
}

/** A location as shown to people: the SQLite file, or the URL without its password. */
export function describeLocation(location: StoreLocation): string {
  return location.dialect === 'sqlite' ? location.file : redact(location.connectionString);
}

/**
 * Creates a store or applies its pending migrations (Lync's Install-CsDatabase): idempotent, and
 * refusing a store migrated by a newer Perch (StoreTooNewError). A store that cannot be reached
 * is a StoreUnreachableError.
 */
export async function installStore(
  role: StoreRole,
  location: StoreLocation,
): Promise<InstallResult> {
  const label = describeLocation(location);
  const known = Object.keys(role === 'chat' ? migrations : complianceMigrations).sort();
  if (location.dialect === 'sqlite') {
    fs.mkdirSync(path.dirname(location.file), { recursive: true, mode: 0o700 });
  }
  let applied: string[];
  try {
    if (role === 'chat') {
      const store = openStore(location);
      try {
        applied = await store.migrate();
      } finally {
        await store.close();
      }
    } else {
      const store =
        location.dialect === 'sqlite'
          ? openSqliteComplianceStore({ file: location.file, busyTimeoutMs: 5000 })
          : openPostgresComplianceStore({
              connectionString: location.connectionString,
              poolSize: 1,
            });
      try {
        applied = await store.migrate();
      } finally {
        await store.close();
      }
    }
  } catch (err) {
    if (err instanceof PerchError) throw err;
    throw new StoreUnreachableError(label, (err as Error).message || String(err));
  }
  // The first migration creates the schema: applying it means the store was empty.
  const state =
    applied.length === 0 ? 'up-to-date' : applied.includes(known[0]!) ? 'created' : 'migrated';
  return {
    role,
    store: label,
    dialect: location.dialect,
    state,
    applied,
    schema: known.at(-1) ?? null,
  };
}
