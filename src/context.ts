import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Argon2Hasher } from './auth/argon2-hasher.js';
import { ComplianceThread } from './compliance/compliance-thread.js';
import type { Config } from './config/config.js';
import { bootstrap } from './domain/directory/commands.js';
import { createDomain } from './domain/index.js';
import type { Domain } from './domain/types.js';
import { EventBus } from './events.js';
import { DiskFileStore } from './files/disk-file-store.js';
import { buildHttpApp } from './http/app.js';
import type { Logger } from './logger.js';
import { RealtimeServer } from './realtime/server.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { parseStoreUrl, redact } from './store/store-url.js';
import { version } from './version.js';

export interface AppContext {
  config: Config;
  log: Logger;
  store: Store;
  domain: Domain;
  http: FastifyInstance;
  realtime: RealtimeServer;
  compliance: ComplianceThread;
  /** The address actually listened on (port resolved when 0 was asked). */
  address(): { host: string; port: number };
  listen(): Promise<void>;
  /** Stops accepting, drains sockets, then closes the store; safe to call twice. */
  close(): Promise<void>;
}

/** Reads the token-signing secret from the data dir, creating it (owner-only) on first start. */
function loadSecret(dataDir: string): Buffer {
  const file = path.join(dataDir, 'secret.key');
  try {
    return fs.readFileSync(file);
  } catch {
    const secret = crypto.randomBytes(32);
    fs.writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

/**
 * The composition root: builds every service of a Standard Edition server from validated config
 * and disposes them in order (stop accepting → drain sockets → close the store).
 */
export async function createAppContext(
  config: Config,
  log: Logger,
  opts: { announce?: (line: string) => void; webRoot?: string } = {},
): Promise<AppContext> {
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const location =
    config.storeUrl === undefined
      ? { dialect: 'sqlite' as const, file: path.join(config.dataDir, 'perch.db') }
      : parseStoreUrl(config.storeUrl);
  const store = openStore(location, { sqliteSynchronous: config.sqliteSynchronous });
  if (config.storeUrl !== undefined) {
    log.info({ store: redact(config.storeUrl), dialect: store.dialect }, 'chat store');
  }
  const applied = await store.migrate();
  if (applied.length > 0) log.info({ migrations: applied }, 'store migrated');
  const bus = new EventBus(log.child({ subsystem: 'events' }));
  const domain = createDomain({
    store,
    events: bus,
    hasher: new Argon2Hasher(),
    files: new DiskFileStore(path.join(config.dataDir, 'files')),
    secret: loadSecret(config.dataDir),
    log: log.child({ subsystem: 'domain' }),
    sessionTtlMs: config.sessionTtlHours * 3_600_000,
  });
  const generated = config.adminPassword === undefined;
  const password = config.adminPassword ?? crypto.randomBytes(12).toString('base64url');
  if (await bootstrap(domain, password)) {
    const announce = opts.announce ?? ((line: string) => process.stdout.write(`${line}\n`));
    if (generated) {
      announce(
        `Perch: created the chat administrator "admin" with the generated password: ${password}`,
      );
      announce(
        'Perch: this password is shown only once; change it with PATCH /api/v1/users/admin.',
      );
    } else {
      log.info(
        'created the chat administrator "admin" with the password from PERCH_ADMIN_PASSWORD',
      );
    }
  }
  // Moves the outbox into compliance.db and runs the adapters in a worker thread with its own
  // connections, so that its synchronous SQLite work never stalls chat.
  const compliance = new ComplianceThread({
    chat: store,
    chatLocation: location,
    sqliteSynchronous: config.sqliteSynchronous,
    complianceFile: path.join(config.dataDir, 'compliance.db'),
    log: log.child({ subsystem: 'compliance' }),
    outputRoot: config.complianceOutputDir ?? path.join(config.dataDir, 'compliance'),
    adapterDir: config.complianceAdapterDir ?? path.join(config.dataDir, 'compliance-adapters'),
    pollMs: config.compliancePollMs,
    runIntervalSeconds: config.complianceRunIntervalSeconds,
  });
  const http = await buildHttpApp({
    domain,
    config,
    log,
    webRoot: opts.webRoot,
    compliance,
    health: async () => {
      await store.getSettings();
      return { ok: true, checks: { store: 'ok', connections: realtime.connectionCount() } };
    },
  });
  const realtime = new RealtimeServer({
    domain,
    bus,
    log: log.child({ subsystem: 'realtime' }),
    version,
    maxFrameBytes: config.maxFrameBytes,
    maxBufferedBytes: config.maxBufferedBytes,
  });
  realtime.attach(http.server);

  let closing: Promise<void> | undefined;
  return {
    config,
    log,
    store,
    domain,
    http,
    realtime,
    compliance,
    address() {
      const a = http.server.address();
      return typeof a === 'object' && a
        ? { host: a.address, port: a.port }
        : { host: config.host, port: config.port };
    },
    async listen() {
      await http.listen({ host: config.host, port: config.port });
      compliance.start();
    },
    close() {
      closing ??= (async () => {
        // Stop taking new HTTP requests first; WebSocket clients get a goodbye and time to leave.
        const httpClosed = http.close();
        await realtime.drain(config.shutdownGraceMs);
        await httpClosed;
        await compliance.stop();
        await store.close();
      })();
      return closing;
    },
  };
}
