import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Argon2Hasher } from './auth/argon2-hasher.js';
import { poolEventLog } from './cluster/fan-out.js';
import { PoolFrontEnd } from './cluster/front-end.js';
import { PoolLink } from './cluster/pool-link.js';
import { ChatRetentionJob } from './compliance/chat-retention.js';
import { ComplianceThread } from './compliance/compliance-thread.js';
import type { Config } from './config/config.js';
import { storagePaths } from './config/paths.js';
import { bootstrap } from './domain/directory/commands.js';
import { createDomain } from './domain/index.js';
import type { Domain } from './domain/types.js';
import { loadDirectoryConfig } from './directory/config.js';
import { LdapConnector } from './directory/ldap-connector.js';
import { DirectorySyncJob } from './directory/sync-job.js';
import { EventBus } from './events.js';
import { DiskFileStore } from './files/disk-file-store.js';
import { buildHttpApp } from './http/app.js';
import type { Logger } from './logger.js';
import { RealtimeServer } from './realtime/server.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { redact } from './store/store-url.js';
import { version } from './version.js';
import { XmppGateway } from './xmpp/listener.js';

export interface AppContext {
  config: Config;
  log: Logger;
  store: Store;
  domain: Domain;
  http: FastifyInstance;
  realtime: RealtimeServer;
  compliance: ComplianceThread;
  /** The scheduled purge of messages past their category's retention period. */
  retention: ChatRetentionJob;
  /** The scheduled LDAP directory sync, when a directory is configured. */
  directorySync: DirectorySyncJob | undefined;
  /** This process as a front end of an Enterprise Edition pool (PERCH_POOL), else undefined. */
  frontEnd: PoolFrontEnd | undefined;
  /** The XMPP client listener (PERCH_XMPP_PORT), else undefined. */
  xmpp: XmppGateway | undefined;
  /** The address actually listened on (port resolved when 0 was asked). */
  address(): { host: string; port: number };
  listen(): Promise<void>;
  /** Stops accepting, drains sockets, then closes the store; safe to call twice. */
  close(): Promise<void>;
}

/**
 * The secret that signs file download links, shared by every front end of a pool through the chat
 * store (migration 009), so that a link made by one front end downloads from any other. The
 * first start offers a `secret.key` left in the data dir by an earlier version, so that links
 * handed out before the upgrade stay valid; otherwise a random one. Front ends starting together
 * for the first time all read back the one stored first.
 */
async function loadSecret(store: Store, dataDir: string): Promise<Buffer> {
  let candidate: Buffer;
  try {
    candidate = fs.readFileSync(path.join(dataDir, 'secret.key'));
  } catch {
    candidate = crypto.randomBytes(32);
  }
  return store.ensureSecret('download-links', candidate, Date.now());
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
  const paths = storagePaths(config);
  const location = paths.chat;
  // A front end of a pool: posts are announced to the other front ends (src/cluster). A lone
  // server (Standard Edition) pays nothing for it.
  const pooled =
    config.pool !== undefined && config.frontEnd !== undefined && location.dialect === 'postgres';
  const fileStoreDir = paths.fileStoreDir;
  const store = openStore(location, {
    sqliteSynchronous: config.sqliteSynchronous,
    // The compliance thread, started below, checkpoints the log off the event loop.
    sqliteCheckpoints: 'background',
    poolSize: config.storePoolSize,
    notifySequences: pooled,
  });
  if (config.storeUrl !== undefined) {
    log.info({ store: redact(config.storeUrl), dialect: store.dialect }, 'chat store');
  }
  const applied = await store.migrate();
  if (applied.length > 0) log.info({ migrations: applied }, 'store migrated');
  const bus = new EventBus(log.child({ subsystem: 'events' }));
  // In a pool the hub hears events from the fan-out, which orders local and remote ones.
  const hubBus = pooled ? new EventBus(log.child({ subsystem: 'events' })) : bus;
  // This process in the pool: the events its commands log carry it, so it skips its own.
  const instance = crypto.randomUUID();
  // Read now so that a broken directory file stops the start with its problems listed.
  const directory =
    config.directoryFile === undefined
      ? undefined
      : new LdapConnector(loadDirectoryConfig(config.directoryFile));
  if (directory) log.info({ directory: directory.url }, 'directory');
  const domain = createDomain({
    directory,
    store,
    events: bus,
    eventLog: pooled ? poolEventLog(instance) : undefined,
    hasher: new Argon2Hasher(),
    files: new DiskFileStore(fileStoreDir),
    secret: await loadSecret(store, config.dataDir),
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
  // Moves the outbox into the compliance store (compliance.db, or PERCH_COMPLIANCE_STORE_URL) and
  // runs the adapters in a worker thread with its own connections, so that its synchronous SQLite
  // work never stalls chat. In a pool each front end competes for the lease under its own name.
  // (storagePaths: a pool sharing a PostgreSQL compliance store writes its compliance output
  // into the shared file store.)
  const complianceLocation = paths.compliance;
  const compliance = new ComplianceThread({
    chat: store,
    chatLocation: location,
    sqliteSynchronous: config.sqliteSynchronous,
    complianceLocation,
    holder: config.frontEnd ?? 'standard',
    leaseTtlMs: config.complianceLeaseMs,
    log: log.child({ subsystem: 'compliance' }),
    outputRoot: paths.complianceOutputDir,
    adapterDir: config.complianceAdapterDir ?? path.join(config.dataDir, 'compliance-adapters'),
    pollMs: config.compliancePollMs,
    runIntervalSeconds: config.complianceRunIntervalSeconds,
  });
  // Holds live in the compliance store; the chat-store purge reads them through the worker thread.
  const retention = new ChatRetentionJob({
    domain,
    holds: () => compliance.listHolds(false),
    intervalMs: config.retentionIntervalMs,
    log: log.child({ subsystem: 'retention' }),
  });
  const directorySync = directory
    ? new DirectorySyncJob({
        domain,
        intervalMs: config.directorySyncIntervalMs,
        log: log.child({ subsystem: 'directory' }),
      })
    : undefined;
  const frontEnd: PoolFrontEnd | undefined =
    pooled && location.dialect === 'postgres'
      ? new PoolFrontEnd({
          pool: config.pool!,
          name: config.frontEnd!,
          instance,
          version,
          connectionString: location.connectionString,
          heartbeatMs: config.poolHeartbeatMs,
          d: domain,
          domainBus: bus,
          hubBus,
          hasSubscribers: (roomId): boolean => realtime.hub.hasRoom(roomId),
          load: () => ({
            connections: realtime.connectionCount(),
            users: realtime.hub.userCount(),
          }),
          log: log.child({ subsystem: 'cluster' }),
        })
      : undefined;
  const admission = () => frontEnd?.admission();
  const poolLink =
    frontEnd &&
    new PoolLink({ pool: frontEnd.pool, store, log: log.child({ subsystem: 'pool-link' }) });
  const tls =
    config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined
      ? { cert: fs.readFileSync(config.tlsCertFile), key: fs.readFileSync(config.tlsKeyFile) }
      : undefined;
  const http = await buildHttpApp({
    tls,
    domain,
    config,
    log,
    webRoot: opts.webRoot,
    compliance,
    edition: frontEnd ? 'enterprise' : 'standard',
    pool: frontEnd &&
      poolLink && {
        name: frontEnd.pool,
        registry: frontEnd.registry,
        link: poolLink,
        admission,
        origins: () => frontEnd.origins(),
      },
    health: async () => {
      await store.getSettings();
      const checks: Record<string, unknown> = {
        store: 'ok',
        connections: realtime.connectionCount(),
      };
      if (!frontEnd) return { ok: true, checks };
      // Ready once registered in the pool; an idle front end is healthy, and says so.
      const registered = frontEnd.address !== '';
      checks.pool = {
        name: frontEnd.pool,
        frontEnd: frontEnd.name,
        state: !registered ? 'starting' : frontEnd.isActive() ? 'active' : 'idle',
      };
      return { ok: registered, checks };
    },
  });
  const realtime: RealtimeServer = new RealtimeServer({
    domain,
    bus: hubBus,
    log: log.child({ subsystem: 'realtime' }),
    version,
    maxFrameBytes: config.maxFrameBytes,
    maxBufferedBytes: config.maxBufferedBytes,
    pool: frontEnd && { name: frontEnd.pool, frontEnd: frontEnd.name, admission, link: poolLink },
  });
  realtime.attach(http.server);
  // XMPP streams are connections of the same hub: they see every live event a WebSocket sees.
  const xmppTls =
    config.xmppTlsCertFile !== undefined && config.xmppTlsKeyFile !== undefined
      ? {
          cert: fs.readFileSync(config.xmppTlsCertFile),
          key: fs.readFileSync(config.xmppTlsKeyFile),
        }
      : tls;
  const xmpp =
    config.xmppPort === undefined
      ? undefined
      : new XmppGateway({
          domain,
          hub: realtime.hub,
          log: log.child({ subsystem: 'xmpp' }),
          host: config.host,
          port: config.xmppPort,
          xmppDomain: config.xmppDomain,
          tls: xmppTls,
          allowPlaintext: config.xmppAllowPlaintext,
          admission,
          peers: config.xmppPeers,
          limits: {
            maxStanzaChars: config.xmppMaxStanzaBytes,
            maxDepth: 32,
            timeoutMs: config.xmppTimeoutMs,
            idleMs: config.xmppIdleMs,
            maxBufferedBytes: config.maxBufferedBytes,
          },
        });
  // Listening (and each room's position taken) before any client can connect.
  await frontEnd?.start();

  let closing: Promise<void> | undefined;
  return {
    config,
    log,
    store,
    domain,
    http,
    realtime,
    compliance,
    retention,
    directorySync,
    frontEnd,
    xmpp,
    address() {
      const a = http.server.address();
      return typeof a === 'object' && a
        ? { host: a.address, port: a.port }
        : { host: config.host, port: config.port };
    },
    async listen() {
      await http.listen({ host: config.host, port: config.port });
      await xmpp?.listen();
      if (frontEnd) {
        const a = http.server.address();
        const { address: host, port } =
          typeof a === 'object' && a ? a : { address: config.host, port: config.port };
        const shown = host.includes(':') ? `[${host}]` : host;
        const scheme = tls ? 'https' : 'http';
        await frontEnd.register(config.publicUrl ?? `${scheme}://${shown}:${port}`);
      }
      compliance.start();
      retention.start();
      directorySync?.start();
    },
    close() {
      closing ??= (async () => {
        // Stop taking new HTTP requests first; WebSocket clients get a goodbye and time to leave.
        const httpClosed = http.close();
        await xmpp?.drain();
        await realtime.drain(config.shutdownGraceMs);
        await httpClosed;
        await frontEnd?.stop();
        await retention.stop();
        await directorySync?.stop();
        await compliance.stop();
        await store.close();
      })();
      return closing;
    },
  };
}
