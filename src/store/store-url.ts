import path from 'node:path';

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
      parsed = new URL(text);
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
