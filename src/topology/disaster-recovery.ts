import pg from 'pg';
import { PgPoolRegistry } from '../cluster/registry.js';
import {
  activeFrontEnds,
  MAX_ACTIVE_FRONT_ENDS,
  presentPool,
  type FrontEndView,
} from '../domain/pools/commands.js';
import {
  PoolFailbackNotReadyError,
  PoolFailoverRefusedError,
  PoolNoBackupSiteError,
} from '../errors.js';
import { hostStates, openPgPool, type HostState } from '../store/postgres/connect.js';
import { pgHosts, pgUrlFor, pgUrlWithHosts, type PgHost } from '../store/store-url.js';
import type { Topology } from './schema.js';

/**
 * Disaster recovery across sites (Lync's stretched pool with a log-shipped backup database):
 * the chat store's PostgreSQL cluster streams asynchronously to a replica in the backup site.
 * `failover` promotes the replica and makes the backup site's front ends active; `failback`
 * switches back once the original site was rebuilt as a replica of it. Everything here speaks
 * SQL to the stores' hosts (pg_promote, ALTER SYSTEM, pg_terminate_backend); copying data
 * directories (pg_basebackup) and stopping servers are the operator's steps
 * (docs/operations/disaster-recovery.md).
 */

export type PoolState = 'normal' | 'failed-over';

/** What the topology says about a pool's two sites. */
export interface BackupSitePlan {
  pool: string;
  site: string;
  backupSite: string;
  /** The chat store in the pool's own site (its primary and standbys). */
  chatUrl: string;
  /** The chat store's replica in the backup site. */
  backupUrl: string;
  siteFrontEnds: string[];
  backupFrontEnds: string[];
  fileStore: string;
  backupFileStore: string;
  complianceStore?: string;
  backupComplianceStore?: string;
}

/** The pool's two sites from a (validated) topology; PoolNoBackupSiteError when it has none. */
export function backupSitePlan(topology: Topology, poolName: string): BackupSitePlan {
  const pool = topology.pools.find((p) => p.name === poolName);
  if (!pool) {
    throw new PoolNoBackupSiteError(
      poolName,
      `the topology has no such pool (it has ${topology.pools.map((p) => p.name).join(', ')})`,
    );
  }
  if (!pool.backupStore || !pool.backupSite || !pool.backupFileStore) {
    throw new PoolNoBackupSiteError(
      poolName,
      'the topology gives it no backup site (backupStore, backupSite, backupFileStore)',
    );
  }
  const url = (name: string) => topology.stores.find((s) => s.name === name)!.url;
  const inSite = (site: string) =>
    pool.frontEnds.filter((f) => (f.site ?? pool.site) === site).map((f) => f.name);
  return {
    pool: pool.name,
    site: pool.site,
    backupSite: pool.backupSite,
    chatUrl: url(pool.chatStore),
    backupUrl: url(pool.backupStore),
    siteFrontEnds: inSite(pool.site),
    backupFrontEnds: inSite(pool.backupSite),
    fileStore: pool.fileStore!,
    backupFileStore: pool.backupFileStore,
    complianceStore: pool.complianceStore,
    backupComplianceStore: pool.backupComplianceStore,
  };
}

const PROBE_TIMEOUT_MS = 5_000;

/** Runs `fn` on a connection to one host of a store URL. */
async function onHost<T>(url: string, host: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const target = pgHosts(url).find((h) => `${h.host}:${h.port}` === host) ?? parseHost(host);
  const client = new pg.Client({
    connectionString: pgUrlFor(url, target),
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    application_name: 'perch-dr',
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

function parseHost(host: string): PgHost {
  const i = host.lastIndexOf(':');
  return { host: host.slice(0, i), port: Number(host.slice(i + 1)) };
}

/** The pool's registry on one host (a single-host URL: no search for the primary). */
function registryOn(url: string, host: string): PgPoolRegistry {
  return new PgPoolRegistry(openPgPool(pgUrlFor(url, parseHost(host)), 1, 'perch-dr'), 0);
}

/** One store host as `perch pool state` shows it. */
export interface SiteHost extends HostState {
  site: string;
  /** WAL the primary has that this standby has not replayed yet. */
  lagBytes?: number;
  /** 0 when caught up; else how old the newest transaction it replayed is. */
  lagSeconds?: number;
  /** The server it streams from (`host:port`), and the WAL receiver's status. */
  upstream?: string;
  receiver?: string;
}

/** A standby the primary streams to (pg_stat_replication). */
export interface ReplicationRow {
  applicationName: string;
  clientAddr: string | null;
  state: string;
  syncState: string;
  lagBytes: number;
  /** replay_lag: how long ago the standby replayed what the primary had flushed; 0 when idle. */
  lagSeconds: number;
}

export interface PoolDrState {
  pool: string;
  /** Normal, FailedOver, or unknown when no host can be read. */
  state: PoolState | 'unknown';
  stateChangedAt: string | null;
  /** The read-write primary now (`host:port`) and its site; undefined when none answers. */
  primary?: { host: string; site: string };
  hosts: SiteHost[];
  replication: ReplicationRow[];
  activeServers: string[];
  frontEnds: (FrontEndView & { site: string })[];
  /** Where the active front ends keep files and compliance records. */
  fileStore: string;
  complianceStore?: string;
}

function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return BigInt(`0x${hi}`) * 2n ** 32n + BigInt(`0x${lo}`);
}

/** Every host of both sites with its role, WAL position and lag. */
async function siteHosts(plan: BackupSitePlan): Promise<SiteHost[]> {
  const [own, backup] = await Promise.all([hostStates(plan.chatUrl), hostStates(plan.backupUrl)]);
  const hosts: SiteHost[] = [
    ...own.map((h) => ({ ...h, site: plan.site })),
    ...backup.map((h) => ({ ...h, site: plan.backupSite })),
  ];
  const primary = hosts.find((h) => h.role === 'primary');
  const all = pgUrlWithHosts(plan.chatUrl, plan.backupUrl);
  await Promise.all(
    hosts
      .filter((h) => h.role === 'standby')
      .map(async (h) => {
        const r = await onHost(all, h.host, (c) =>
          c.query<{ age: number | null; upstream: string | null; status: string | null }>(
            `SELECT EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS age,
                    (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver) AS upstream,
                    (SELECT status FROM pg_stat_wal_receiver) AS status`,
          ),
        ).catch(() => undefined);
        const row = r?.rows[0];
        h.upstream = row?.upstream ?? undefined;
        h.receiver = row?.status ?? 'not receiving';
        if (primary?.lsn && h.lsn) {
          const bytes = lsnValue(primary.lsn) - lsnValue(h.lsn);
          h.lagBytes = Number(bytes > 0n ? bytes : 0n);
          h.lagSeconds = h.lagBytes === 0 ? 0 : Math.max(0, row?.age ?? 0);
        }
      }),
  );
  return hosts;
}

/** `perch pool state`: Normal/FailedOver, the hosts of both sites with lag, the active set. */
export async function poolDrState(
  plan: BackupSitePlan,
  now = Date.now(),
  heartbeatMs = 5_000,
): Promise<PoolDrState> {
  const hosts = await siteHosts(plan);
  const all = pgUrlWithHosts(plan.chatUrl, plan.backupUrl);
  const primary = hosts.find((h) => h.role === 'primary');
  // Read from the primary; without one, from any host that answers (a standby is readable).
  const reader = primary ?? hosts.find((h) => h.role !== 'unreachable');
  let state: PoolDrState['state'] = 'unknown';
  let stateChangedAt: string | null = null;
  let replication: ReplicationRow[] = [];
  let activeServers: string[] = [];
  let frontEnds: PoolDrState['frontEnds'] = [];
  if (reader) {
    const registry = registryOn(all, reader.host);
    try {
      const record = await registry.get(plan.pool);
      if (record) {
        activeServers = activeFrontEnds(record);
        const view = presentPool(record, now, heartbeatMs);
        frontEnds = view.frontEnds.map((f) => ({
          ...f,
          site: plan.backupFrontEnds.includes(f.name) ? plan.backupSite : plan.site,
        }));
      }
    } finally {
      await registry.close();
    }
    await onHost(all, reader.host, async (c) => {
      const r = await c.query<{ state: string; state_changed_at: number | null }>(
        'SELECT state, state_changed_at::float8 AS state_changed_at FROM pools WHERE name = $1',
        [plan.pool],
      );
      state = (r.rows[0]?.state as PoolState | undefined) ?? 'normal';
      const at = r.rows[0]?.state_changed_at;
      stateChangedAt = at === null || at === undefined ? null : new Date(at).toISOString();
      if (reader === primary) {
        const rep = await c.query<{
          application_name: string;
          client_addr: string | null;
          state: string;
          sync_state: string;
          lag_bytes: number | null;
          lag_seconds: number | null;
        }>(
          `SELECT application_name, client_addr::text AS client_addr, state, sync_state,
                  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS lag_bytes,
                  EXTRACT(epoch FROM replay_lag)::float8 AS lag_seconds
             FROM pg_stat_replication ORDER BY application_name`,
        );
        replication = rep.rows.map((row) => ({
          applicationName: row.application_name,
          clientAddr: row.client_addr,
          state: row.state,
          syncState: row.sync_state,
          lagBytes: row.lag_bytes ?? 0,
          lagSeconds: row.lag_seconds ?? 0,
        }));
      }
    });
  }
  const failedOver = (state as PoolDrState['state']) === 'failed-over';
  return {
    pool: plan.pool,
    state,
    stateChangedAt,
    ...(primary ? { primary: { host: primary.host, site: primary.site } } : {}),
    hosts,
    replication,
    activeServers,
    frontEnds,
    fileStore: failedOver ? plan.backupFileStore : plan.fileStore,
    ...(plan.complianceStore
      ? { complianceStore: failedOver ? plan.backupComplianceStore : plan.complianceStore }
      : {}),
  };
}

/** One step of a failover or failback, printed as it finishes. */
export interface DrStep {
  step: string;
  changed: boolean;
  detail: string;
}

type Report = (step: DrStep) => void;

/** Records the pool state in the chat store on `host` (the primary); false if it already was. */
async function recordState(url: string, host: string, pool: string, state: PoolState) {
  const registry = registryOn(url, host);
  try {
    await registry.define(pool, Date.now());
  } finally {
    await registry.close();
  }
  return onHost(url, host, async (c) => {
    const r = await c.query(
      'UPDATE pools SET state = $2, state_changed_at = $3 WHERE name = $1 AND state <> $2',
      [pool, state, Date.now()],
    );
    return (r.rowCount ?? 0) > 0;
  });
}

/** Makes `names` (at most four) the active set through the primary on `host`. */
async function activate(url: string, host: string, pool: string, names: string[]) {
  const wanted = names.slice(0, MAX_ACTIVE_FRONT_ENDS);
  const registry = registryOn(url, host);
  try {
    const current = (await registry.get(pool))?.activeServers ?? null;
    if (current !== null && JSON.stringify(current) === JSON.stringify(wanted)) return false;
    await registry.setActiveServers(pool, wanted, Date.now());
    return true;
  } finally {
    await registry.close();
  }
}

/** Sets (or with `undefined` resets) a server setting with ALTER SYSTEM; false if unchanged. */
async function setSystem(c: pg.Client, name: string, value: string | undefined) {
  const r = await c.query<{ v: string }>(`SELECT current_setting($1) AS v`, [name]);
  const current = r.rows[0]!.v;
  if (value === undefined ? current === '' || current === 'off' : current === value) return false;
  await c.query(
    value === undefined
      ? `ALTER SYSTEM RESET ${name}`
      : `ALTER SYSTEM SET ${name} = ${c.escapeLiteral(value)}`,
  );
  await c.query('SELECT pg_reload_conf()');
  return true;
}

async function promote(url: string, host: string): Promise<void> {
  await onHost(url, host, async (c) => {
    const r = await c.query<{ done: boolean }>('SELECT pg_promote(true, 60) AS done');
    if (!r.rows[0]!.done) throw new Error(`${host} did not finish promotion within 60 s`);
  });
}

/** A primary's own settings after a promotion: commits wait for no standby, writes allowed. */
async function primarySettings(url: string, host: string, report: Report): Promise<void> {
  await onHost(url, host, async (c) => {
    const sync = await setSystem(c, 'synchronous_standby_names', undefined);
    report({
      step: 'synchronous standby',
      changed: sync,
      detail: sync
        ? `${host}: synchronous_standby_names reset (commits no longer wait for a standby that is gone)`
        : `${host}: commits wait for no standby`,
    });
    const ro = await setSystem(c, 'default_transaction_read_only', undefined);
    if (ro) report({ step: 'writes', changed: true, detail: `${host}: read-only reset` });
  });
}

export interface FailoverOptions {
  /** Fail over even when the backup's newest transaction is older than maxLagSeconds. */
  force?: boolean;
  maxLagSeconds?: number;
}

/**
 * `perch pool failover` (Set-CsPersistentChatState -PoolState FailedOver): refuses while a host
 * of the pool's own site still answers as primary (PoolFailoverRefusedError, primary_site_answers:
 * fence it first), or when the backup's newest transaction is older than maxLagSeconds without
 * `force`; else promotes the replica, records FailedOver and makes the backup site's front ends
 * active. Idempotent: each step done already is reported unchanged.
 */
export async function failover(
  plan: BackupSitePlan,
  opts: FailoverOptions,
  report: Report,
): Promise<PoolDrState> {
  const all = pgUrlWithHosts(plan.chatUrl, plan.backupUrl);
  const hosts = await siteHosts(plan);
  const own = hosts.filter((h) => h.site === plan.site);
  const backup = hosts.filter((h) => h.site === plan.backupSite);
  const say = (h: SiteHost) => `${h.host} (${h.site}): ${h.role}${h.lsn ? ` at ${h.lsn}` : ''}`;
  report({ step: 'hosts', changed: false, detail: hosts.map(say).join('; ') });

  const ownPrimary = own.find((h) => h.role === 'primary');
  if (ownPrimary) {
    throw new PoolFailoverRefusedError(
      'primary_site_answers',
      `${ownPrimary.host} in site ${plan.site} still answers as the primary: a failover now would make two primaries. ` +
        `If site ${plan.site} is really lost, fence it first: stop PostgreSQL there (pg_ctlcluster 15 main stop -m immediate, ` +
        `or power the host off) and keep its front ends from reaching site ${plan.backupSite}; then run perch pool failover again.`,
    );
  }
  let target = backup.find((h) => h.role === 'primary');
  if (target) {
    report({ step: 'promote', changed: false, detail: `${target.host} is the primary already` });
  } else {
    const standby = backup.find((h) => h.role === 'standby');
    if (!standby) {
      throw new PoolFailoverRefusedError(
        'backup_unreachable',
        `no standby of site ${plan.backupSite} answers (${backup.map((h) => `${h.host}: ${h.error ?? h.role}`).join('; ')})`,
      );
    }
    if (own.some((h) => h.role === 'standby')) {
      throw new PoolFailoverRefusedError(
        'primary_site_answers',
        `${own.find((h) => h.role === 'standby')!.host} in site ${plan.site} answers as a standby: the site is not lost. ` +
          'Promote it with perch pool promote (a failover inside the site loses nothing).',
      );
    }
    const age = await onHost(all, standby.host, async (c) => {
      const r = await c.query<{ age: number | null; at: Date | null }>(
        `SELECT pg_last_xact_replay_timestamp() AS at,
                EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS age`,
      );
      return r.rows[0]!;
    });
    const max = opts.maxLagSeconds ?? 60;
    const seconds = age.age ?? Infinity;
    report({
      step: 'backup',
      changed: false,
      detail: `${standby.host} replayed up to ${standby.lsn}; its newest transaction is ${age.at ? `from ${age.at.toISOString()} (${seconds.toFixed(1)} s ago)` : 'unknown'}`,
    });
    if (seconds > max && !opts.force) {
      throw new PoolFailoverRefusedError(
        'backup_behind',
        `the backup store's newest transaction is ${Number.isFinite(seconds) ? `${seconds.toFixed(1)} s` : 'of unknown'} old, more than --max-lag ${max} s: ` +
          `posts acknowledged in site ${plan.site} after it are not in the backup and would be lost. A live pool writes a heartbeat ` +
          'every few seconds, so this is about when the backup last heard from the primary. If the primary site went down that long ' +
          'ago, nothing more can be recovered: run again with --force.',
      );
    }
    await promote(all, standby.host).catch((err: unknown) => {
      throw new Error(`promoting ${standby.host} failed: ${(err as Error).message}`);
    });
    target = standby;
    report({
      step: 'promote',
      changed: true,
      detail: `promoted ${standby.host} (replayed up to ${standby.lsn})`,
    });
  }
  await primarySettings(all, target.host, report);
  const changed = await recordState(all, target.host, plan.pool, 'failed-over');
  report({
    step: 'state',
    changed,
    detail: changed ? 'Normal -> FailedOver' : 'FailedOver already',
  });
  const active = await activate(all, target.host, plan.pool, plan.backupFrontEnds);
  report({
    step: 'active set',
    changed: active,
    detail: `${plan.backupFrontEnds.slice(0, MAX_ACTIVE_FRONT_ENDS).join(', ')} (site ${plan.backupSite})${active ? '' : ' already'}`,
  });
  report({
    step: 'files and compliance',
    changed: false,
    detail: `site ${plan.backupSite}'s front ends keep files in ${plan.backupFileStore}${plan.backupComplianceStore ? ` and compliance records in ${plan.backupComplianceStore} (promoted with the chat store)` : ''}`,
  });
  return poolDrState(plan);
}

export interface FailbackOptions {
  /** How long to wait for the rebuilt site to catch up (default 600 s). */
  waitSeconds?: number;
}

async function waitFor(
  what: string,
  deadline: number,
  check: () => Promise<string | true>,
  progress: (line: string) => void,
): Promise<void> {
  let last = 0;
  for (;;) {
    const answer = await check();
    if (answer === true) return;
    if (Date.now() > deadline) throw new PoolFailbackNotReadyError(`${what}: ${answer}`);
    if (Date.now() - last > 5_000) {
      progress(`waiting: ${answer}`);
      last = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * `perch pool failback` (Lync's failback with PoolState Normal): once the pool's own site was
 * rebuilt as a replica of the backup site's primary (an operator step: pg_basebackup), waits for
 * it to catch up, makes it synchronous (every post acknowledged from then on is on it), fences
 * the backup with default_transaction_read_only and ends its sessions, waits for the last WAL to
 * be replayed, promotes the original site, records Normal and makes its front ends active.
 * Idempotent: run again after any step, it goes on from where things are.
 */
export async function failback(
  plan: BackupSitePlan,
  opts: FailbackOptions,
  report: Report,
  progress: (line: string) => void = () => {},
): Promise<PoolDrState> {
  const all = pgUrlWithHosts(plan.chatUrl, plan.backupUrl);
  const deadline = Date.now() + (opts.waitSeconds ?? 600) * 1000;
  let hosts = await siteHosts(plan);
  const say = (h: SiteHost) => `${h.host} (${h.site}): ${h.role}${h.lsn ? ` at ${h.lsn}` : ''}`;
  report({ step: 'hosts', changed: false, detail: hosts.map(say).join('; ') });
  const own = () => hosts.filter((h) => h.site === plan.site);
  const backup = () => hosts.filter((h) => h.site === plan.backupSite);

  let home = own().find((h) => h.role === 'primary');
  if (!home) {
    const current = backup().find((h) => h.role === 'primary' || h.role === 'read-only');
    if (!current) {
      throw new PoolFailbackNotReadyError(
        `no primary answers in site ${plan.backupSite} (${backup().map(say).join('; ')}): fail over first, or bring it back`,
      );
    }
    const replica = own().find((h) => h.role === 'standby');
    if (!replica) {
      throw new PoolFailbackNotReadyError(
        `site ${plan.site}'s store (${own()
          .map((h) => h.host)
          .join(', ')}) is not a replica of ${current.host} yet: ` +
          `rebuild it (pg_basebackup -h ${parseHost(current.host).host} -p ${parseHost(current.host).port} -D DATADIR -R -X stream, ` +
          'then start it; docs/operations/disaster-recovery.md) and run perch pool failback again',
      );
    }
    const lagOf = async () => {
      hosts = await siteHosts(plan);
      return hosts.find((h) => h.host === replica.host)!;
    };
    if (current.role === 'primary') {
      await waitFor(
        `${replica.host} did not catch up with ${current.host}`,
        deadline,
        async () => {
          const r = await lagOf();
          if (r.role === 'standby' && r.receiver === 'streaming' && (r.lagBytes ?? 1) < 1 << 20)
            return true;
          return `${r.host} ${r.role}, ${r.receiver ?? 'no receiver'}, ${r.lagBytes ?? '?'} bytes behind`;
        },
        progress,
      );
      report({
        step: 'catch up',
        changed: false,
        detail: `${replica.host} streams from ${current.host}`,
      });
      const sync = await onHost(all, current.host, (c) =>
        setSystem(c, 'synchronous_standby_names', '*'),
      );
      await waitFor(
        `${replica.host} did not become a synchronous standby`,
        deadline,
        () =>
          onHost(all, current.host, async (c) => {
            const r = await c.query(
              `SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'`,
            );
            return (r.rowCount ?? 0) > 0 || 'no synchronous standby streaming yet';
          }),
        progress,
      );
      report({
        step: 'synchronous',
        changed: sync,
        detail: `${current.host} waits for ${replica.host} on every commit: acknowledged posts are in site ${plan.site} too`,
      });
      const ended = await onHost(all, current.host, async (c) => {
        await setSystem(c, 'default_transaction_read_only', 'on');
        const r = await c.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
        );
        return r.rowCount ?? 0;
      });
      report({
        step: 'fence',
        changed: true,
        detail: `${current.host} refuses writes now (default_transaction_read_only); ${ended} sessions ended`,
      });
    } else {
      report({ step: 'fence', changed: false, detail: `${current.host} refuses writes already` });
    }
    const finalLsn = await onHost(all, current.host, async (c) => {
      const r = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return r.rows[0]!.lsn;
    });
    await waitFor(
      `${replica.host} did not replay up to ${finalLsn}`,
      deadline,
      async () => {
        const r = await lagOf();
        return (
          (r.lsn !== undefined && lsnValue(r.lsn) >= lsnValue(finalLsn)) ||
          `${r.host} replayed ${r.lsn ?? '?'} of ${finalLsn}`
        );
      },
      progress,
    );
    report({
      step: 'replayed',
      changed: false,
      detail: `${replica.host} has everything up to ${finalLsn}`,
    });
    await promote(all, replica.host);
    report({
      step: 'promote',
      changed: true,
      detail: `promoted ${replica.host} (site ${plan.site})`,
    });
    home = replica;
  } else {
    report({
      step: 'promote',
      changed: false,
      detail: `${home.host} (site ${plan.site}) is the primary already`,
    });
  }
  await primarySettings(all, home.host, report);
  const changed = await recordState(all, home.host, plan.pool, 'normal');
  report({ step: 'state', changed, detail: changed ? 'FailedOver -> Normal' : 'Normal already' });
  const active = await activate(all, home.host, plan.pool, plan.siteFrontEnds);
  report({
    step: 'active set',
    changed: active,
    detail: `${plan.siteFrontEnds.slice(0, MAX_ACTIVE_FRONT_ENDS).join(', ')} (site ${plan.site})${active ? '' : ' already'}`,
  });
  const after = await poolDrState(plan);
  const stale = after.hosts.find((h) => h.site === plan.backupSite && h.role !== 'standby');
  if (stale) {
    report({
      step: 'backup site',
      changed: false,
      detail: `${stale.host} is ${stale.role}: rebuild it as a replica of ${home.host} (docs/operations/disaster-recovery.md)`,
    });
  }
  return after;
}
