import path from 'node:path';
import { z } from 'zod';

/** Where a chat store is, as named by a store URL. */
export type StoreLocation =
  { dialect: 'sqlite'; file: string } | { dialect: 'postgres'; connectionString: string };

/**
 * Reads a store URL: `sqlite:///abs/path/perch.db` (or `sqlite://relative/perch.db`) is a SQLite
 * file, a plain folder path is a data folder holding `perch.db`, and `postgres://` or
 * `postgresql://user:password@host:port/database` is PostgreSQL. Throws an Error that says what
 * is wrong, never echoing a password.
 */
export function parseStoreUrl(url: string): StoreLocation {
  const text = url.trim();
  if (text === '') throw new Error('store URL is empty');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  // A Windows drive letter (C:\data) is a path, not a scheme.
  if (scheme === undefined || /^[a-z]:[\\/]/i.test(text)) {
    return { dialect: 'sqlite', file: path.resolve(text, 'perch.db') };
  }
  if (scheme === 'sqlite') {
    if (!text.toLowerCase().startsWith('sqlite://')) {
      throw new Error('a SQLite store URL looks like sqlite:///path/to/perch.db');
    }
    const file = decodeURIComponent(text.slice('sqlite://'.length).split(/[?#]/)[0]!);
    if (file === '' || file.endsWith('/')) {
      throw new Error('a SQLite store URL names a file: sqlite:///path/to/perch.db');
    }
    return { dialect: 'sqlite', file: path.resolve(file) };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    let parsed: URL;
    try {
      // Several hosts (db1:5432,db2:5432, a primary and its standbys) are checked as the first.
      const hosts = pgHosts(text);
      parsed = new URL(hosts.length > 1 ? pgUrlFor(text, hosts[0]!) : text);
    } catch {
      throw new Error(`PostgreSQL store URL is not a valid URL: ${redact(text)}`);
    }
    if (parsed.hostname === '' && !parsed.searchParams.has('host')) {
      throw new Error(`PostgreSQL store URL names no host: ${redact(text)}`);
    }
    if (parsed.pathname.replace(/^\//, '') === '') {
      throw new Error(
        `PostgreSQL store URL names no database (postgres://user@host:5432/perch): ${redact(text)}`,
      );
    }
    return { dialect: 'postgres', connectionString: text };
  }
  throw new Error(
    `unsupported store URL scheme "${scheme}:"; use sqlite:///path/perch.db, a data folder, ` +
      'or postgres://user@host:port/database',
  );
}

/** The URL with any password replaced, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}

/**
 * A schema for a store URL written out in full (`postgres://…`, `postgresql://…` or
 * `sqlite:///path/file.db`; a bare folder is not accepted here): `message` says what one looks
 * like, and a URL that does not parse reports why.
 */
export function storeUrlSchema(message: string) {
  return z
    .string()
    .min(1)
    .superRefine((url, ctx) => {
      if (!/^(postgres|postgresql|sqlite):\/\//i.test(url.trim())) {
        ctx.addIssue({ code: 'custom', message });
        return;
      }
      try {
        parseStoreUrl(url);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    });
}

/** One host of a PostgreSQL store URL (libpq allows several: a primary and its standbys). */
export interface PgHost {
  host: string;
  port: number;
}

const DEFAULT_PORT = 5432;
const URL_PARTS = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/i;

/** The hosts a PostgreSQL URL names (one or several), in the order given. */
export function pgHosts(connectionString: string): PgHost[] {
  const m = URL_PARTS.exec(connectionString.trim());
  if (!m) return [];
  return m[3]!
    .split(',')
    .filter((h) => h !== '')
    .map((entry) => {
      const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
      if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2] ?? DEFAULT_PORT) };
      const [host, port] = entry.split(':');
      return { host: host!, port: Number(port || DEFAULT_PORT) };
    });
}

/** The URL with its host list replaced by one host. */
export function pgUrlFor(connectionString: string, target: PgHost): string {
  const m = URL_PARTS.exec(connectionString.trim());
  if (!m) return connectionString;
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${m[1]}${m[2] ?? ''}${host}:${target.port}${m[4]}`;
}

/**
 * One URL naming the hosts of `url` and then those of `more` (each once): a store and its
 * replicas, for connections that must find whichever of them is the primary now.
 */
export function pgUrlWithHosts(url: string, more: string): string {
  const m = URL_PARTS.exec(url.trim());
  if (!m) return url;
  const seen = new Set<string>();
  const hosts = [...pgHosts(url), ...pgHosts(more)].filter((h) => {
    const key = `${h.host.toLowerCase()}:${h.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const list = hosts
    .map((h) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`)
    .join(',');
  return `${m[1]}${m[2] ?? ''}${list}${m[4]}`;
}
