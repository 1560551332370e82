import path from 'node:path';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { parseStoreUrl } from '../store/store-url.js';

/**
 * The process configuration: one zod schema, read from PERCH_* environment variables only.
 * Chat settings an administrator changes at run time (history count, file size, ...) live in the
 * store instead (see domain/settings).
 */
export const configSchema = z.object({
  host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('PERCH_HOST: address the HTTP and WebSocket listener binds to.'),
  port: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(8080)
    .describe('PERCH_PORT: TCP port of the HTTP and WebSocket listener (0 picks a free port).'),
  dataDir: z
    .string()
    .min(1)
    .default('./data')
    .describe('PERCH_DATA_DIR: folder for the SQLite store (perch.db) and uploaded files.'),
  storeUrl: z
    .string()
    .min(1)
    .superRefine((url, ctx) => {
      try {
        parseStoreUrl(url);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .optional()
    .describe(
      'PERCH_STORE_URL: chat store, if not perch.db in PERCH_DATA_DIR: `sqlite:///path/perch.db`, a data folder, or `postgres://user:password@host:5432/database` (PostgreSQL 15 or later). Uploaded files stay in PERCH_DATA_DIR.',
    ),
  adminPassword: z
    .string()
    .min(8)
    .optional()
    .describe(
      'PERCH_ADMIN_PASSWORD: password given to the `admin` account on first start; if unset a generated one is printed once.',
    ),
  logLevel: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('PERCH_LOG_LEVEL: log level of the JSON logs written to standard output.'),
  sqliteSynchronous: z
    .enum(['full', 'normal'])
    .default('full')
    .describe(
      'PERCH_SQLITE_SYNCHRONOUS: `full` survives power loss; `normal` survives a process crash only.',
    ),
  sessionTtlHours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 365)
    .default(24 * 30)
    .describe('PERCH_SESSION_TTL_HOURS: lifetime of a sign-in session token.'),
  maxFrameBytes: z.coerce
    .number()
    .int()
    .min(4096)
    .max(16 * 1024 * 1024)
    .default(256 * 1024)
    .describe('PERCH_MAX_FRAME_BYTES: largest WebSocket frame or JSON body accepted.'),
  maxBufferedBytes: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .default(8 * 1024 * 1024)
    .describe(
      'PERCH_MAX_BUFFERED_BYTES: a WebSocket whose unsent output exceeds this is closed as a slow consumer.',
    ),
  shutdownGraceMs: z.coerce
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(10_000)
    .describe('PERCH_SHUTDOWN_GRACE_MS: how long SIGTERM waits for connections to drain.'),
  complianceOutputDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_COMPLIANCE_OUTPUT_DIR: folder under which compliance adapters write (default <data dir>/compliance).',
    ),
  complianceAdapterDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_COMPLIANCE_ADAPTER_DIR: folder of custom compliance adapter modules (default <data dir>/compliance-adapters).',
    ),
  complianceRunIntervalSeconds: z.coerce
    .number()
    .int()
    .min(1)
    .max(30 * 24 * 3600)
    .optional()
    .describe(
      'PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS: overrides the configured RunInterval, down to 1 second (tests, operations).',
    ),
  compliancePollMs: z.coerce
    .number()
    .int()
    .min(10)
    .max(600_000)
    .default(1000)
    .describe('PERCH_COMPLIANCE_POLL_MS: how often the compliance worker drains the outbox.'),
});

export type Config = z.infer<typeof configSchema>;

/** Maps each config key to the environment variable it is read from. */
export const envNames: Record<keyof Config, string> = {
  host: 'PERCH_HOST',
  port: 'PERCH_PORT',
  dataDir: 'PERCH_DATA_DIR',
  storeUrl: 'PERCH_STORE_URL',
  adminPassword: 'PERCH_ADMIN_PASSWORD',
  logLevel: 'PERCH_LOG_LEVEL',
  sqliteSynchronous: 'PERCH_SQLITE_SYNCHRONOUS',
  sessionTtlHours: 'PERCH_SESSION_TTL_HOURS',
  maxFrameBytes: 'PERCH_MAX_FRAME_BYTES',
  maxBufferedBytes: 'PERCH_MAX_BUFFERED_BYTES',
  shutdownGraceMs: 'PERCH_SHUTDOWN_GRACE_MS',
  complianceOutputDir: 'PERCH_COMPLIANCE_OUTPUT_DIR',
  complianceAdapterDir: 'PERCH_COMPLIANCE_ADAPTER_DIR',
  complianceRunIntervalSeconds: 'PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS',
  compliancePollMs: 'PERCH_COMPLIANCE_POLL_MS',
};

/** Reads the PERCH_* variables (and nothing else) from an environment. */
export function readEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof Config, string>> {
  const out: Partial<Record<keyof Config, string>> = {};
  for (const [key, name] of Object.entries(envNames) as [keyof Config, string][]) {
    const value = env[name];
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

/** Validates raw values and applies defaults; throws a ValidationError naming the variable. */
export function toConfig(raw: Partial<Record<keyof Config, unknown>>): Config {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path[0] as keyof Config | undefined;
      const name = key === undefined ? 'config' : envNames[key];
      return `${name}: ${issue.message}`;
    });
    throw new ValidationError(`invalid configuration: ${problems.join('; ')}`, { problems });
  }
  return { ...parsed.data, dataDir: path.resolve(parsed.data.dataDir) };
}
