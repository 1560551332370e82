import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { DirectoryConfigError } from '../errors.js';

// The LDAP connection: a YAML (or JSON) file named by PERCH_DIRECTORY_FILE or by a topology
// pool's `directory`. The bind password is never in it: it names a file or a variable.

const filter = z
  .string()
  .min(3)
  .max(4096)
  .refine((f) => f.startsWith('(') && f.endsWith(')'), 'an LDAP filter in parentheses');

const userSchema = z
  .object({
    baseDn: z.string().min(1),
    filter: filter.default('(objectClass=inetOrgPerson)'),
    /** Matches the users (among those above) whose account is disabled. */
    disabledFilter: filter.optional(),
    attributes: z
      .object({
        id: z.string().min(1).default('entryUUID'),
        login: z.string().min(1).default('uid'),
        displayName: z.string().min(1).default('cn'),
        email: z.string().min(1).default('mail'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const groupSchema = z
  .object({
    baseDn: z.string().min(1),
    filter: filter.default('(objectClass=groupOfNames)'),
    attributes: z
      .object({
        id: z.string().min(1).default('entryUUID'),
        name: z.string().min(1).default('cn'),
        displayName: z.string().min(1).default('cn'),
        description: z.string().min(1).default('description'),
        member: z.string().min(1).default('member'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const ouSchema = z
  .object({
    baseDn: z.string().min(1),
    filter: filter.default('(objectClass=organizationalUnit)'),
    attributes: z
      .object({
        id: z.string().min(1).default('entryUUID'),
        name: z.string().min(1).default('ou'),
        description: z.string().min(1).default('description'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const directoryConfigSchema = z
  .object({
    /** ldaps://host:636, or ldap://host:389 with startTls. */
    url: z.string().regex(/^ldaps?:\/\/[^\s/]+\/?$/i, 'ldaps://host[:port] or ldap://host[:port]'),
    startTls: z.boolean().default(false),
    /** PEM file of the CA that signed the directory's certificate (else the system's CAs). */
    caFile: z.string().min(1).optional(),
    /** Only for tests against a self-signed directory: never in production. */
    insecureSkipVerify: z.boolean().default(false),
    bindDn: z.string().min(1),
    bindPasswordFile: z.string().min(1).optional(),
    bindPasswordEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name')
      .optional(),
    timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    pageSize: z.number().int().min(1).max(10_000).default(500),
    users: userSchema,
    groups: groupSchema.optional(),
    organizationalUnits: ouSchema.optional(),
  })
  .strict()
  .refine((c) => (c.bindPasswordFile === undefined) !== (c.bindPasswordEnv === undefined), {
    message: 'give exactly one of bindPasswordFile and bindPasswordEnv',
  })
  .refine((c) => !(c.startTls && /^ldaps:/i.test(c.url)), {
    message: 'startTls is for ldap:// URLs; ldaps:// is TLS already',
  });

export type DirectoryConfig = z.infer<typeof directoryConfigSchema>;

/** Reads and validates a directory connection file (YAML or JSON); relative paths are from it. */
export function loadDirectoryConfig(file: string): DirectoryConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DirectoryConfigError(file, [(err as Error).message]);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new DirectoryConfigError(file, [(err as Error).message]);
  }
  const parsed = directoryConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new DirectoryConfigError(
      file,
      parsed.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`),
    );
  }
  const dir = path.dirname(path.resolve(file));
  const c = parsed.data;
  return {
    ...c,
    caFile: c.caFile && path.resolve(dir, c.caFile),
    bindPasswordFile: c.bindPasswordFile && path.resolve(dir, c.bindPasswordFile),
  };
}

/** The bind password, read when needed (so a rotated file is picked up) and never logged. */
export function readBindPassword(c: DirectoryConfig, env: NodeJS.ProcessEnv): string {
  if (c.bindPasswordFile !== undefined) {
    try {
      return fs.readFileSync(c.bindPasswordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new DirectoryConfigError(c.bindPasswordFile, [(err as Error).message]);
    }
  }
  const value = env[c.bindPasswordEnv!];
  if (value === undefined || value === '') {
    throw new DirectoryConfigError('bindPasswordEnv', [`${c.bindPasswordEnv} is not set`]);
  }
  return value;
}
