import path from 'node:path';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { parseStoreUrl, storeUrlSchema } from '../store/store-url.js';

/** One front end's XMPP address: `name=host:port`, an IPv6 host in brackets. */
const xmppPeer = String.raw`[^=,\s]+=(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}`;
const xmppPeersPattern = new RegExp(`^${xmppPeer}(?:,${xmppPeer})*$`);

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
      'PERCH_STORE_URL: chat store, if not perch.db in PERCH_DATA_DIR: `sqlite:///path/perch.db`, a data folder, or `postgres://user:password@host:5432/database` (PostgreSQL 15 or later). Uploaded files stay in PERCH_DATA_DIR/files unless PERCH_FILE_STORE_DIR names another folder.',
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
  storePoolSize: z.coerce
    .number()
    .int()
    .min(1)
    .max(500)
    .default(10)
    .describe(
      "PERCH_STORE_POOL_SIZE: most connections this server opens to a PostgreSQL chat store; each runs one transaction at a time, and commits waiting together share one WAL flush. Every front end of a pool opens this many: keep their sum under the server's max_connections. Not used on SQLite.",
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
  complianceStoreUrl: storeUrlSchema(
    'a compliance store URL is postgres://… or sqlite:///path/compliance.db',
  )
    .optional()
    .describe(
      'PERCH_COMPLIANCE_STORE_URL: compliance store, if not compliance.db in PERCH_DATA_DIR: `postgres://user:password@host:5432/database` (a database of its own) or `sqlite:///path/compliance.db`.',
    ),
  complianceOutputDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_COMPLIANCE_OUTPUT_DIR: folder under which compliance adapters and eDiscovery exports write (default <data dir>/compliance; in a pool with a PostgreSQL compliance store <PERCH_FILE_STORE_DIR>/compliance, shared by every front end).',
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
  complianceLeaseMs: z.coerce
    .number()
    .int()
    .min(1000)
    .max(3_600_000)
    .default(30_000)
    .describe(
      'PERCH_COMPLIANCE_LEASE_MS: how long the compliance worker lease of a pool lasts unrenewed (default 30 s): when its holder stops, another front end takes over after this; more than twice PERCH_COMPLIANCE_POLL_MS.',
    ),
  pool: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits and . _ - only, up to 64')
    .optional()
    .describe(
      'PERCH_POOL: Enterprise Edition pool this server is a front end of (`perch serve --pool`); needs a PostgreSQL PERCH_STORE_URL and PERCH_FRONT_END.',
    ),
  frontEnd: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits and . _ - only, up to 64')
    .optional()
    .describe(
      "PERCH_FRONT_END: this front end's name in its pool (`perch serve --front-end`), unique in the pool.",
    ),
  publicUrl: z
    .string()
    .url()
    .optional()
    .describe(
      'PERCH_PUBLIC_URL: where clients reach this front end, shown by `perch pool get` and to clients an idle front end refuses (default http://PERCH_HOST:port).',
    ),
  fileStoreDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_FILE_STORE_DIR: folder of uploaded file bodies (default <data dir>/files); every front end of a pool names the same shared folder.',
    ),
  retentionIntervalMs: z.coerce
    .number()
    .int()
    .min(100)
    .max(2_592_000_000)
    .default(3_600_000)
    .describe(
      "PERCH_RETENTION_INTERVAL_MS: how often the retention job purges messages past their category's retention period from the chat store (default hourly).",
    ),
  poolHeartbeatMs: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(5000)
    .describe(
      'PERCH_POOL_HEARTBEAT_MS: how often a front end records its heartbeat, re-reads the active set and checks its rooms for missed posts; three missed beats show it unreachable.',
    ),
  tlsCertFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_TLS_CERT_FILE: PEM certificate (chain) file; with PERCH_TLS_KEY_FILE the server serves HTTPS and WSS only.',
    ),
  tlsKeyFile: z
    .string()
    .min(1)
    .optional()
    .describe('PERCH_TLS_KEY_FILE: PEM private key of PERCH_TLS_CERT_FILE (keep it owner-only).'),
  directoryFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_DIRECTORY_FILE: YAML file describing the LDAP / Active Directory connection users and groups are synced from (docs/operations/directory.md); unset: no directory.',
    ),
  directorySyncIntervalMs: z.coerce
    .number()
    .int()
    .min(0)
    .max(2_592_000_000)
    .default(900_000)
    .describe(
      'PERCH_DIRECTORY_SYNC_INTERVAL_MS: how often the server syncs from the directory (default 15 minutes; 0 turns the scheduled sync off, leaving `perch directory sync`).',
    ),
  xmppPort: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .optional()
    .describe(
      'PERCH_XMPP_PORT: TCP port of the XMPP client listener (docs/xmpp.md; 5222 by convention, 0 picks a free port); unset: no XMPP gateway.',
    ),
  xmppDomain: z
    .string()
    .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'a DNS name')
    .default('localhost')
    .describe(
      'PERCH_XMPP_DOMAIN: the XMPP domain users sign in to (login@domain); rooms are at conference.<domain>.',
    ),
  xmppTlsCertFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_XMPP_TLS_CERT_FILE: PEM certificate (chain) for XMPP STARTTLS, naming the XMPP domain; default PERCH_TLS_CERT_FILE. With a certificate the gateway requires STARTTLS before sign-in.',
    ),
  xmppTlsKeyFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'PERCH_XMPP_TLS_KEY_FILE: PEM private key of PERCH_XMPP_TLS_CERT_FILE; default PERCH_TLS_KEY_FILE.',
    ),
  xmppAllowPlaintext: z
    .stringbool()
    .default(false)
    .describe(
      'PERCH_XMPP_ALLOW_PLAINTEXT: development only: `true` lets clients on loopback addresses use SASL PLAIN without TLS.',
    ),
  xmppMaxStanzaBytes: z.coerce
    .number()
    .int()
    .min(4096)
    .max(16 * 1024 * 1024)
    .default(256 * 1024)
    .describe(
      'PERCH_XMPP_MAX_STANZA_BYTES: largest XMPP stanza accepted, counted in characters (stream error policy-violation above it).',
    ),
  xmppTimeoutMs: z.coerce
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(30_000)
    .describe(
      'PERCH_XMPP_TIMEOUT_MS: time an XMPP client has to complete stream negotiation (header, STARTTLS, SASL, bind), and to finish any stanza it has begun.',
    ),
  xmppIdleMs: z.coerce
    .number()
    .int()
    .min(1000)
    .max(86_400_000)
    .default(600_000)
    .describe(
      'PERCH_XMPP_IDLE_MS: a signed-in XMPP stream that sends nothing (not even a whitespace ping) for this long is closed.',
    ),
  xmppPeers: z
    .string()
    .regex(xmppPeersPattern, 'name=host:port, comma separated')
    .optional()
    .describe(
      "PERCH_XMPP_PEERS: in a pool, the XMPP address of each front end (`fe1=chat1.example.org:5222,fe2=...`; `perch serve --topology` sets it from the topology's xmppPort); an idle front end sends XMPP clients to an active one with see-other-host.",
    ),
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
  storePoolSize: 'PERCH_STORE_POOL_SIZE',
  sessionTtlHours: 'PERCH_SESSION_TTL_HOURS',
  maxFrameBytes: 'PERCH_MAX_FRAME_BYTES',
  maxBufferedBytes: 'PERCH_MAX_BUFFERED_BYTES',
  shutdownGraceMs: 'PERCH_SHUTDOWN_GRACE_MS',
  complianceStoreUrl: 'PERCH_COMPLIANCE_STORE_URL',
  complianceOutputDir: 'PERCH_COMPLIANCE_OUTPUT_DIR',
  complianceAdapterDir: 'PERCH_COMPLIANCE_ADAPTER_DIR',
  complianceRunIntervalSeconds: 'PERCH_COMPLIANCE_RUN_INTERVAL_SECONDS',
  compliancePollMs: 'PERCH_COMPLIANCE_POLL_MS',
  complianceLeaseMs: 'PERCH_COMPLIANCE_LEASE_MS',
  retentionIntervalMs: 'PERCH_RETENTION_INTERVAL_MS',
  pool: 'PERCH_POOL',
  frontEnd: 'PERCH_FRONT_END',
  publicUrl: 'PERCH_PUBLIC_URL',
  poolHeartbeatMs: 'PERCH_POOL_HEARTBEAT_MS',
  fileStoreDir: 'PERCH_FILE_STORE_DIR',
  tlsCertFile: 'PERCH_TLS_CERT_FILE',
  tlsKeyFile: 'PERCH_TLS_KEY_FILE',
  directoryFile: 'PERCH_DIRECTORY_FILE',
  directorySyncIntervalMs: 'PERCH_DIRECTORY_SYNC_INTERVAL_MS',
  xmppPort: 'PERCH_XMPP_PORT',
  xmppDomain: 'PERCH_XMPP_DOMAIN',
  xmppTlsCertFile: 'PERCH_XMPP_TLS_CERT_FILE',
  xmppTlsKeyFile: 'PERCH_XMPP_TLS_KEY_FILE',
  xmppAllowPlaintext: 'PERCH_XMPP_ALLOW_PLAINTEXT',
  xmppMaxStanzaBytes: 'PERCH_XMPP_MAX_STANZA_BYTES',
  xmppTimeoutMs: 'PERCH_XMPP_TIMEOUT_MS',
  xmppIdleMs: 'PERCH_XMPP_IDLE_MS',
  xmppPeers: 'PERCH_XMPP_PEERS',
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
  const poolProblem = checkPool(parsed.data) ?? checkTls(parsed.data) ?? checkLease(parsed.data);
  if (poolProblem) {
    throw new ValidationError(`invalid configuration: ${poolProblem}`, {
      problems: [poolProblem],
    });
  }
  return { ...parsed.data, dataDir: path.resolve(parsed.data.dataDir) };
}

/** The worker renews its lease every poll: a lease no longer than a poll would lapse between. */
function checkLease(c: Config): string | undefined {
  if (c.complianceLeaseMs <= 2 * c.compliancePollMs) {
    return `PERCH_COMPLIANCE_LEASE_MS (${c.complianceLeaseMs}) must be more than twice PERCH_COMPLIANCE_POLL_MS (${c.compliancePollMs})`;
  }
  return undefined;
}

/** A certificate goes with its key. */
function checkTls(c: Config): string | undefined {
  if ((c.tlsCertFile === undefined) !== (c.tlsKeyFile === undefined)) {
    return 'PERCH_TLS_CERT_FILE and PERCH_TLS_KEY_FILE go together';
  }
  if ((c.xmppTlsCertFile === undefined) !== (c.xmppTlsKeyFile === undefined)) {
    return 'PERCH_XMPP_TLS_CERT_FILE and PERCH_XMPP_TLS_KEY_FILE go together';
  }
  return undefined;
}

/** A front end of a pool names both its pool and itself, and shares a PostgreSQL store. */
function checkPool(c: Config): string | undefined {
  if ((c.pool === undefined) !== (c.frontEnd === undefined)) {
    return 'PERCH_POOL and PERCH_FRONT_END go together (perch serve --pool P --front-end NAME)';
  }
  if (c.pool !== undefined && (c.storeUrl === undefined || !/^postgres(ql)?:/i.test(c.storeUrl))) {
    return 'PERCH_POOL: the front ends of a pool share a PostgreSQL store; set PERCH_STORE_URL=postgres://...';
  }
  return undefined;
}
