import pg from 'pg';
import { StoreManagedByPatroniError } from '../../errors.js';
import { pgHosts, pgUrlFor, type PgHost } from '../store-url.js';

/**
 * Connections to a PostgreSQL store that may run as a primary with standbys. A store URL may
 * name several hosts the way libpq does (`postgres://user@db1:5432,db2:5432/perch`): every new
 * connection goes to the one that is the read-write primary now, tried in turn (the last primary
 * found first), the way libpq's `target_session_attrs=read-write` does, which node-postgres
 * lacks. After a failover, connections to the old primary break; the pools drop them, and the
 * new ones find the promoted standby. A URL with one host connects as node-postgres always does.
 */

export function describeHost(target: PgHost): string {
  return `${target.host}:${target.port}`;
}

/** Whether a connected session is on a standby (read-only, in recovery). */
export async function inRecovery(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
  return r.rows[0]!.standby;
}

/**
 * Whether a connected session cannot write: a standby, or a server told to refuse writes with
 * `default_transaction_read_only` (a former primary fenced by `perch pool failback`). libpq's
 * `target_session_attrs=read-write` asks the same question.
 */
export async function readOnly(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ ro: boolean }>(
    `SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on' AS ro`,
  );
  return r.rows[0]!.ro;
}

/** A connection to one host of a store URL, with the probe timeout; call connect() on it. */
function hostClient(connectionString: string, target: PgHost, name: string): pg.Client {
  const client = new pg.Client({
    connectionString: pgUrlFor(connectionString, target),
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    application_name: name,
  });
  client.on('error', () => {});
  return client;
}

/** The host found to be primary last, per multi-host URL: tried first next time. */
const lastPrimary = new Map<string, string>();

/** How long one host may take to answer when looking for the primary. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Finds the host that is primary now: connects to each in turn and asks. Throws an error that
 * names every host and why it was passed over (never a password).
 */
export async function findPrimary(connectionString: string): Promise<PgHost> {
  const hosts = pgHosts(connectionString);
  const known = lastPrimary.get(connectionString);
  const order = [...hosts].sort(
    (a, b) => Number(describeHost(b) === known) - Number(describeHost(a) === known),
  );
  const passed: string[] = [];
  for (const target of order) {
    const probe = hostClient(connectionString, target, 'perch-probe');
    try {
      await probe.connect();
      if (!(await readOnly(probe))) {
        lastPrimary.set(connectionString, describeHost(target));
        return target;
      }
      passed.push(
        `${describeHost(target)} is ${(await inRecovery(probe)) ? 'a standby' : 'read-only'}`,
      );
    } catch (err) {
      passed.push(`${describeHost(target)}: ${(err as Error).message}`);
    } finally {
      await probe.end().catch(() => {});
    }
  }
  throw new Error(`no read-write PostgreSQL primary found (${passed.join('; ')})`);
}

/**
 * A client that never crashes the process when its connection breaks while it is checked out
 * of a pool between two queries (a database restart or failover in the middle of a
 * transaction): pg emits 'error' then, and pg-pool listens only on idle clients. The broken
 * client is no longer queryable; its next query fails, and on release the pool drops it.
 */
class PerchClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.on('error', () => {});
  }
}

/**
 * The client class for a store URL: for one host, node-postgres' own (made crash-safe as above);
 * for several, one whose connect() first finds the primary, then connects there and checks again
 * (a switch between the two is refused rather than leaving a read-only connection in a pool).
 */
export function pgClientClass(connectionString: string): typeof pg.Client {
  if (pgHosts(connectionString).length < 2) return PerchClient;
  class PrimaryClient extends PerchClient {
    constructor(config?: string | pg.ClientConfig) {
      super({
        ...(typeof config === 'string' ? {} : config),
        connectionString: pgUrlFor(connectionString, pgHosts(connectionString)[0]!),
      });
    }

    // pg's connect() has two overloads (a promise, or a node-style callback): both are kept.
    override connect(): Promise<pg.Client>;
    override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
    override connect(
      callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void),
    ): Promise<pg.Client> | void {
      const done = this.connectToPrimary();
      if (!callback) return done;
      const cb = callback as (err: Error | null, c?: pg.Client) => void;
      done.then(
        (client) => cb(null, client),
        (err: Error) => cb(err),
      );
    }

    private async connectToPrimary(): Promise<pg.Client> {
      const target = await findPrimary(connectionString);
      // Where _connect() dials: set before it runs (node-postgres reads these fields).
      const self = this as unknown as {
        host: string;
        port: number;
        connectionParameters: { host: string; port: number };
      };
      self.host = target.host;
      self.port = target.port;
      self.connectionParameters.host = target.host;
      self.connectionParameters.port = target.port;
      await super.connect();
      if (await readOnly(this as unknown as pg.Client)) {
        await this.end().catch(() => {});
        lastPrimary.delete(connectionString);
        throw new Error(`${describeHost(target)} became a standby while connecting`);
      }
      return this as unknown as pg.Client;
    }
  }
  return PrimaryClient;
}

const INT8_OID = 20;

/**
 * Type parsers that read int8 as numbers (ids and millisecond timestamps stay far below 2^53), for
 * Perch's connections only (not pg's global type table).
 */
export const int8AsNumber = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * A pg pool on a store URL (one host or several), reading int8 as numbers. An idle client that
 * loses its connection (a restart, a failover) emits 'error' on the pool, which drops it; the
 * next query connects again (to the primary), so that must not crash the process. `more`: other
 * pool settings (e.g. the compliance store's idle_in_transaction_session_timeout).
 */
export function openPgPool(
  connectionString: string,
  max: number,
  name: string,
  more: Omit<pg.PoolConfig, 'connectionString' | 'max' | 'application_name'> = {},
): pg.Pool {
  const pool = new pg.Pool({
    ...more,
    connectionString,
    max,
    application_name: name,
    types: int8AsNumber,
    Client: pgClientClass(connectionString),
  });
  pool.on('error', () => {});
  return pool;
}

/** One connection on a store URL (one host or several); call connect() on it. */
export function pgClient(connectionString: string, config: pg.ClientConfig = {}): pg.Client {
  const Client = pgClientClass(connectionString);
  return new Client({ ...config, connectionString });
}

/** What one host of a store is doing, as `perch pool promote` sees it. */
export interface HostState {
  host: string;
  /** read-only: a former primary fenced with default_transaction_read_only (no longer written). */
  role: 'primary' | 'standby' | 'read-only' | 'unreachable';
  /** WAL position: written (primary) or replayed (standby). */
  lsn?: string;
  /** Whether a Patroni agent is connected to this host (it manages the host's PostgreSQL). */
  patroni?: boolean;
  error?: string;
}

/**
 * Asks every host of a store URL whether it is primary or standby, how far its WAL is, and whether
 * Patroni manages it: Patroni keeps a session open to its PostgreSQL under the application name
 * `Patroni` (pg_stat_activity shows application names to every user).
 */
export async function hostStates(connectionString: string): Promise<HostState[]> {
  return Promise.all(
    pgHosts(connectionString).map(async (target): Promise<HostState> => {
      const host = describeHost(target);
      const client = hostClient(connectionString, target, 'perch-promote');
      try {
        await client.connect();
        const r = await client.query<{
          standby: boolean;
          ro: boolean;
          lsn: string | null;
          patroni: boolean;
        }>(
          `SELECT pg_is_in_recovery() AS standby,
                  current_setting('transaction_read_only') = 'on' AS ro,
                  CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text
                       ELSE pg_current_wal_lsn()::text END AS lsn,
                  EXISTS (SELECT 1 FROM pg_stat_activity
                           WHERE application_name LIKE 'Patroni%') AS patroni`,
        );
        const row = r.rows[0]!;
        const role = row.standby ? 'standby' : row.ro ? 'read-only' : 'primary';
        return { host, role, lsn: row.lsn ?? undefined, patroni: row.patroni };
      } catch (err) {
        return { host, role: 'unreachable', error: (err as Error).message };
      } finally {
        await client.end().catch(() => {});
      }
    }),
  );
}

/** Orders WAL positions (`16/B374D848`). */
export function compareLsn(a: string, b: string): number {
  const value = (lsn: string) => {
    const [hi, lo] = lsn.split('/');
    return BigInt(`0x${hi}`) * 2n ** 32n + BigInt(`0x${lo}`);
  };
  const d = value(a) - value(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export type PromoteResult =
  | { action: 'none'; primary: string; hosts: HostState[] }
  | { action: 'promoted'; primary: string; lsn: string; hosts: HostState[] };

/**
 * Makes a standby of the store the primary when no host is primary (the primary died): the
 * standby that has replayed the most WAL is promoted with pg_promote() and waited for. When a
 * host already is primary nothing is done (idempotent). Never promotes while a primary answers:
 * that would make two. Refuses (StoreManagedByPatroniError) when Patroni manages any host that
 * answers: Patroni fails over by itself, and a standby promoted behind its back would hold no
 * leader key, so Patroni would demote it again or two nodes would each think they lead.
 */
export async function promoteStandby(connectionString: string): Promise<PromoteResult> {
  const hosts = await hostStates(connectionString);
  const managed = hosts.filter((h) => h.patroni);
  if (managed.length > 0) throw new StoreManagedByPatroniError(managed.map((h) => h.host));
  const primary = hosts.find((h) => h.role === 'primary');
  if (primary) return { action: 'none', primary: primary.host, hosts };
  const standbys = hosts
    .filter((h) => h.role === 'standby' && h.lsn !== undefined)
    .sort((a, b) => compareLsn(b.lsn!, a.lsn!));
  const best = standbys[0];
  if (!best) {
    const why = hosts.map((h) => `${h.host}: ${h.error ?? h.role}`).join('; ');
    throw new Error(`no standby to promote and no primary answering (${why})`);
  }
  const target = pgHosts(connectionString).find((t) => describeHost(t) === best.host)!;
  const client = hostClient(connectionString, target, 'perch-promote');
  await client.connect();
  try {
    const r = await client.query<{ done: boolean }>('SELECT pg_promote(true, 60) AS done');
    if (!r.rows[0]!.done) throw new Error(`${best.host} did not finish promotion within 60 s`);
  } catch (err) {
    const message = (err as Error).message;
    throw new Error(
      /permission denied/i.test(message)
        ? `${best.host} refused pg_promote(): the store's user needs superuser or EXECUTE on pg_promote (${message})`
        : `promoting ${best.host} failed: ${message}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  lastPrimary.set(connectionString, best.host);
  return { action: 'promoted', primary: best.host, lsn: best.lsn!, hosts };
}
