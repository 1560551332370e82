import { InvalidArgumentError, type Command } from 'commander';
import { poolNameSchema } from '../domain/pools/commands.js';
import { TopologyInvalidError } from '../errors.js';
import type { DrStep, PoolDrState } from '../topology/disaster-recovery.js';
import { intIn, localCommand } from './common.js';
import { UsageError } from './errors.js';
import { emit, fields, stdio, table } from './output.js';

function poolName(value: string): string {
  const r = poolNameSchema.safeParse(value);
  if (!r.success) throw new InvalidArgumentError(r.error.issues[0]?.message ?? 'invalid name');
  return r.data;
}

interface DrOptions {
  pool: string;
  topology?: string;
  json?: boolean;
}

/** The pool's two sites from the topology file (--topology, else $PERCH_TOPOLOGY). */
async function planFor(opts: DrOptions) {
  const file = opts.topology ?? (process.env.PERCH_TOPOLOGY || undefined);
  if (file === undefined) throw new UsageError('give --topology FILE (or set PERCH_TOPOLOGY)');
  const [{ checkTopologyFile, formatProblem, pathText }, { backupSitePlan }] = await Promise.all([
    import('../topology/validate.js'),
    import('../topology/disaster-recovery.js'),
  ]);
  const checked = await checkTopologyFile(file);
  if (!checked.topology) {
    for (const p of checked.problems) stdio.err(formatProblem(file, p));
    throw new TopologyInvalidError(
      file,
      checked.problems.map((p) => ({ path: pathText(p.path), message: p.message, check: p.check })),
    );
  }
  return backupSitePlan(checked.topology, opts.pool);
}

function showState(s: PoolDrState): string {
  const label = { normal: 'Normal', 'failed-over': 'FailedOver', unknown: 'unknown' }[s.state];
  return [
    fields([
      ['pool', s.pool],
      ['state', `${label}${s.stateChangedAt ? ` (since ${s.stateChangedAt})` : ''}`],
      ['primary', s.primary ? `${s.primary.host} (site ${s.primary.site})` : '(none answers)'],
      ['active', s.activeServers.length > 0 ? s.activeServers : '(none)'],
      ['file store', s.fileStore],
      ...(s.complianceStore ? [['compliance store', s.complianceStore] as [string, string]] : []),
    ]),
    '',
    table(s.hosts, [
      ['STORE HOST', (h) => h.host],
      ['SITE', (h) => h.site],
      ['ROLE', (h) => h.role],
      ['WAL', (h) => h.lsn ?? h.error ?? ''],
      ['LAG BYTES', (h) => h.lagBytes ?? ''],
      ['LAG S', (h) => (h.lagSeconds === undefined ? '' : h.lagSeconds.toFixed(1))],
      ['STREAMS FROM', (h) => (h.upstream ? `${h.upstream} (${h.receiver})` : (h.receiver ?? ''))],
    ]),
    ...(s.replication.length > 0
      ? [
          '',
          table(s.replication, [
            ['STANDBY (pg_stat_replication)', (r) => `${r.applicationName} ${r.clientAddr ?? ''}`],
            ['STATE', (r) => r.state],
            ['SYNC', (r) => r.syncState],
            ['LAG BYTES', (r) => r.lagBytes],
            ['REPLAY LAG S', (r) => r.lagSeconds.toFixed(3)],
          ]),
        ]
      : []),
    '',
    table(s.frontEnds, [
      ['FRONT END', (f) => f.name],
      ['SITE', (f) => f.site],
      ['STATE', (f) => f.state],
      ['LAST HEARTBEAT', (f) => f.lastHeartbeat],
      ['URL', (f) => f.url],
    ]),
  ].join('\n');
}

/** Each step on standard error as it finishes, so that standard output stays the result. */
function stepPrinter(steps: DrStep[]) {
  return (s: DrStep) => {
    steps.push(s);
    stdio.err(`${s.changed ? 'changed  ' : 'unchanged'} ${s.step}: ${s.detail}`);
  };
}

const topologyOption = [
  '--topology <file>',
  'the topology file naming the backup site (default: $PERCH_TOPOLOGY)',
] as const;

/**
 * `perch pool state|failover|failback` (Get/Set-CsPersistentChatState): disaster recovery of a
 * pool across two sites. Offline: they talk to the stores' hosts named by the topology.
 */
export function registerPoolDisasterRecovery(pool: Command): void {
  localCommand(
    pool,
    'state',
    'show a pool with a backup site: Normal/FailedOver, each store host with its replication lag, the active front ends',
  )
    .requiredOption('--pool <name>', 'the pool', poolName)
    .option(...topologyOption)
    .addHelpText(
      'after',
      `
Asks every store host of both sites (the chat store's and the backup store's) what it is:
primary, standby, read-only (a former primary fenced by failback) or unreachable. A standby's
lag is the WAL the primary has that it has not replayed (bytes) and, when behind, how old its
newest replayed transaction is (seconds, pg_last_xact_replay_timestamp); the primary's
pg_stat_replication rows are listed too. The state and active set are read from the primary
(or, when none answers, from a standby).

Example:
  perch pool state --pool chat1 --topology /etc/perch/topology.yaml`,
    )
    .action(async (opts: DrOptions) => {
      const plan = await planFor(opts);
      const { poolDrState } = await import('../topology/disaster-recovery.js');
      const state = await poolDrState(plan);
      emit(opts.json, state, () => showState(state));
    });

  localCommand(
    pool,
    'failover',
    "fail a pool over to its backup site: promote the backup store, make that site's front ends active (PoolState FailedOver)",
  )
    .requiredOption('--pool <name>', 'the pool', poolName)
    .option(...topologyOption)
    .option('--force', 'fail over even when the backup is further behind than --max-lag')
    .option(
      '--max-lag <seconds>',
      "refuse when the backup's newest transaction is older than this (default 60)",
      intIn(0, 86_400),
    )
    .addHelpText(
      'after',
      `
Refuses (failover_refused) while a store host of the pool's own site answers as primary: fence
that site first (stop PostgreSQL there), or two primaries would split the pool. Refuses when
the backup's newest replayed transaction is older than --max-lag seconds (posts after it would
be lost) unless --force. Then promotes the backup store with pg_promote(), resets
synchronous_standby_names on it, records FailedOver in the chat store and makes the backup
site's front ends (at most four) the active set; their file store and compliance store are the
backup site's. Each step prints on standard error. Running it again changes nothing.

The stores' user needs superuser (pg_promote, ALTER SYSTEM); give its password through
PGPASSWORD or ~/.pgpass. The runbook: docs/operations/disaster-recovery.md.

Example:
  perch pool failover --pool chat1 --topology /etc/perch/topology.yaml`,
    )
    .action(async (opts: DrOptions & { force?: boolean; maxLag?: number }) => {
      const plan = await planFor(opts);
      const { failover } = await import('../topology/disaster-recovery.js');
      const steps: DrStep[] = [];
      const state = await failover(
        plan,
        { force: opts.force, maxLagSeconds: opts.maxLag },
        stepPrinter(steps),
      );
      emit(
        opts.json,
        { steps, state },
        () => `Pool ${plan.pool} is FailedOver.\n${showState(state)}`,
      );
    });

  localCommand(
    pool,
    'failback',
    "switch a failed-over pool back to its own site once that site's store is a replica again (PoolState Normal)",
  )
    .requiredOption('--pool <name>', 'the pool', poolName)
    .option(...topologyOption)
    .option(
      '--wait <seconds>',
      'how long to wait for the rebuilt site to catch up (default 600)',
      intIn(1, 86_400),
    )
    .addHelpText(
      'after',
      `
First rebuild the pool's own site as a replica of the backup site's primary (pg_basebackup -R,
then start it; the runbook gives the commands). Then failback: waits for it to catch up, makes
it a synchronous standby (every post acknowledged from then on is in both sites), fences the
backup site's primary (default_transaction_read_only, its sessions ended: front ends reconnect),
waits until the last WAL is replayed, promotes the own site's store, records Normal and makes
the own site's front ends active. Clients are without service from the fence to the promotion.
Exits with failback_not_ready (and what to do) when the own site is not a replica yet. Running
it again goes on from where it stopped, or changes nothing. Afterwards rebuild the backup site's
store as a replica of the new primary.

Example:
  perch pool failback --pool chat1 --topology /etc/perch/topology.yaml`,
    )
    .action(async (opts: DrOptions & { wait?: number }) => {
      const plan = await planFor(opts);
      const { failback } = await import('../topology/disaster-recovery.js');
      const steps: DrStep[] = [];
      const state = await failback(plan, { waitSeconds: opts.wait }, stepPrinter(steps), (l) =>
        stdio.err(l),
      );
      emit(opts.json, { steps, state }, () => `Pool ${plan.pool} is Normal.\n${showState(state)}`);
    });
}
