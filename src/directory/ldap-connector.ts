import fs from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import type {
  DirectoryConnector,
  DirectoryEntry,
  DirectoryProgress,
  DirectorySnapshot,
} from '../domain/types.js';
import { normalizeDn } from '../domain/directory/dn.js';
import { DirectoryUnavailableError, PerchError } from '../errors.js';
import { readBindPassword, type DirectoryConfig } from './config.js';

/** The DN of the entry's container (its parent), or '' for a top-level entry. */
function parentDn(dn: string): string {
  const m = /(?<!\\),/.exec(dn);
  return m ? dn.slice(m.index + 1) : '';
}

function values(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  if (key === undefined) return [];
  const v = entry[key]!;
  const list = Array.isArray(v) ? v : [v];
  // Binary ids (Active Directory's objectGUID) are kept as hex: stable and comparable.
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('hex') : x)).filter((x) => x !== '');
}

function first(entry: Entry, attribute: string): string | null {
  return values(entry, attribute)[0] ?? null;
}

/**
 * Maps search entries to directory entries: one without its id or name attribute is listed in
 * `skipped` (by DN) instead; the display name falls back to the name.
 */
function toEntries(
  entries: Entry[],
  idAttribute: string,
  nameAttribute: string,
  skipped: string[],
  rest: (e: Entry) => Omit<DirectoryEntry, 'externalId' | 'dn' | 'name' | 'displayName'> & {
    displayName: string | null;
  },
): DirectoryEntry[] {
  const out: DirectoryEntry[] = [];
  for (const e of entries) {
    const externalId = first(e, idAttribute);
    const name = first(e, nameAttribute);
    if (externalId === null || name === null) {
      skipped.push(e.dn);
      continue;
    }
    const { displayName, ...more } = rest(e);
    out.push({ ...more, externalId, dn: e.dn, name, displayName: displayName ?? name });
  }
  return out;
}

const BINARY_IDS = ['objectGUID', 'objectSid'];

/**
 * The LDAP directory, through ldapts: ldaps:// or StartTLS, a service account's bind for reads,
 * and a bind as the user to check a password. Each call opens its own connection and closes it.
 */
export class LdapConnector implements DirectoryConnector {
  private readonly tls: ConnectionOptions;

  constructor(
    private readonly config: DirectoryConfig,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.tls = {
      ca: config.caFile === undefined ? undefined : fs.readFileSync(config.caFile),
      rejectUnauthorized: !config.insecureSkipVerify,
    };
  }

  /** The directory's URL (never with a password): what logs and errors name. */
  get url(): string {
    return this.config.url;
  }

  private async open(): Promise<Client> {
    const client = new Client({
      url: this.config.url,
      timeout: this.config.timeoutMs,
      connectTimeout: this.config.timeoutMs,
      // ldapts speaks TLS from the start whenever it is given TLS options: only for ldaps://.
      tlsOptions: /^ldaps:/i.test(this.config.url) ? { ...this.tls } : undefined,
      strictDN: false,
    });
    // A copy each time: ldapts stores the connection's socket into the options it is given.
    if (this.config.startTls) await client.startTLS({ ...this.tls });
    return client;
  }

  private unavailable(err: unknown): PerchError {
    if (err instanceof PerchError) return err;
    const detail = err instanceof Error ? err.message || err.name : String(err);
    return new DirectoryUnavailableError(`${this.config.url}: ${detail}`);
  }

  async verifyPassword(dn: string, password: string): Promise<boolean> {
    // An empty password would make an unauthenticated bind, which LDAP servers accept.
    if (password === '') return false;
    let client: Client | undefined;
    try {
      client = await this.open();
      await client.bind(dn, password);
      return true;
    } catch (err) {
      if (err instanceof InvalidCredentialsError) return false;
      throw this.unavailable(err);
    } finally {
      await client?.unbind().catch(() => undefined);
    }
  }

  async fetch(onProgress?: (p: DirectoryProgress) => void): Promise<DirectorySnapshot> {
    const c = this.config;
    let client: Client | undefined;
    try {
      client = await this.open();
      await client.bind(c.bindDn, readBindPassword(c, this.env));
      const search = async (
        phase: DirectoryProgress['phase'],
        baseDn: string,
        filter: string,
        attributes: string[],
      ): Promise<Entry[]> => {
        const { searchEntries } = await client!.search(baseDn, {
          scope: 'sub',
          filter,
          attributes,
          paged: { pageSize: c.pageSize },
          explicitBufferAttributes: attributes.filter((a) => BINARY_IDS.includes(a)),
        });
        onProgress?.({ phase, entries: searchEntries.length });
        return searchEntries;
      };
      const skipped: string[] = [];
      const u = c.users;
      const userAttrs = [u.attributes.id, u.attributes.login, u.attributes.displayName];
      const userEntries = await search('users', u.baseDn, u.filter, [
        ...userAttrs,
        u.attributes.email,
      ]);
      const disabled = new Set<string>();
      if (u.disabledFilter !== undefined) {
        const off = await search('disabled users', u.baseDn, `(&${u.filter}${u.disabledFilter})`, [
          u.attributes.id,
        ]);
        for (const e of off) disabled.add(normalizeDn(e.dn));
      }
      const users = toEntries(userEntries, u.attributes.id, u.attributes.login, skipped, (e) => ({
        kind: 'user',
        displayName: first(e, u.attributes.displayName),
        email: first(e, u.attributes.email),
        description: null,
        disabled: disabled.has(normalizeDn(e.dn)),
        members: [],
      }));
      let groups: DirectoryEntry[] = [];
      if (c.groups) {
        const a = c.groups.attributes;
        const entries = await search('groups', c.groups.baseDn, c.groups.filter, [
          a.id,
          a.name,
          a.displayName,
          a.description,
          a.member,
        ]);
        groups = toEntries(entries, a.id, a.name, skipped, (e) => ({
          kind: 'group',
          displayName: first(e, a.displayName),
          email: null,
          description: first(e, a.description),
          disabled: false,
          members: values(e, a.member),
        }));
      }
      let ous: DirectoryEntry[] = [];
      if (c.organizationalUnits) {
        const a = c.organizationalUnits.attributes;
        const entries = await search(
          'organisational units',
          c.organizationalUnits.baseDn,
          c.organizationalUnits.filter,
          [a.id, a.name, a.description],
        );
        ous = toEntries(entries, a.id, a.name, skipped, (e) => ({
          kind: 'ou',
          displayName: null,
          email: null,
          description: first(e, a.description),
          disabled: false,
          members: [],
        }));
        // An OU contains the users and OUs directly under it; deeper ones through nesting.
        const byDn = new Map(ous.map((o) => [normalizeDn(o.dn), o]));
        for (const child of [...users, ...ous]) {
          byDn.get(normalizeDn(parentDn(child.dn)))?.members.push(child.dn);
        }
      }
      return { users, groups, ous, skipped };
    } catch (err) {
      throw this.unavailable(err);
    } finally {
      await client?.unbind().catch(() => undefined);
    }
  }
}
