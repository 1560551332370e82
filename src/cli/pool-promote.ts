import { InvalidArgumentError, type Command } from 'commander';
import { PerchError } from '../errors.js';
import { parseStoreUrl, pgHosts, redact } from '../store/store-url.js';
import { localCommand } from './common.js';
import { CliError, UsageError } from './errors.js';
import { emit, stdio } from './output.js';

function postgresStoreUrl(value: string): string {
  try {
    if (parseStoreUrl(value).dialect !== 'postgres') throw new Error('not PostgreSQL');
  } catch {
    throw new InvalidArgumentError(
      'a PostgreSQL store URL naming its hosts: postgres://user@db1:5432,db2:5432/perch',
    );
  }
  return value;
}

/**
 * `perch pool promote`: after the primary of a pool's PostgreSQL store is lost, makes its most
 * advanced standby the primary (the manual failover inside a site; Lync's mirroring failover).
 * Offline: it talks to the store's hosts, not to a front end.
 */
export function registerPoolPromote(pool: Command): void {
  localCommand(
    pool,
    'promote',
    "promote the store's most advanced standby when its primary is lost (manual failover in a site)",
  )
    .option(
      '--store <url>',
      'the chat store with every host, primary first: postgres://user@db1:5432,db2:5432/perch (default: $PERCH_STORE_URL)',
      postgresStoreUrl,
    )
    .addHelpText(
      'after',
      `
Asks every host of the store what it is. If one answers as primary, nothing is done (the
command is idempotent, and never makes a second primary). Otherwise the standby that has
replayed the most WAL is promoted with pg_promote() and waited for. Front ends given the same
host list find the new primary by themselves as their connections to the old one break; posts
acknowledged before the loss are on a synchronous standby and survive.

Do not start the old primary again as it is: it would be a second primary. Make it a standby of
the new one (pg_rewind, or a fresh pg_basebackup) first. The store's user needs superuser or
EXECUTE on pg_promote(); give its password through PGPASSWORD or ~/.pgpass.

When Patroni manages the store (a Patroni agent is connected to any host that answers), it
refuses with store_managed_by_patroni and does nothing: Patroni fails over by itself; move the
primary by hand with \`patronictl switchover\` or \`patronictl failover\` instead.

Exit codes: 0 promoted or nothing to do, 1 no standby could be promoted or Patroni manages the
store.

Example:
  perch pool promote --store postgres://perch@db1.example.org:5432,db2.example.org:5432/perch_pool1`,
    )
    .action(async (opts: { store?: string; json?: boolean }) => {
      const url = opts.store ?? (process.env.PERCH_STORE_URL || undefined);
      if (url === undefined) throw new UsageError('give --store (or set PERCH_STORE_URL)');
      postgresStoreUrl(url);
      if (pgHosts(url).length < 2)
        throw new UsageError('the store URL names one host: list the primary and its standbys');
      const { promoteStandby } = await import('../store/postgres/connect.js');
      if (!opts.json) stdio.err(`Asking ${pgHosts(url).length} hosts of ${redact(url)}...`);
      const result = await promoteStandby(url).catch((err: unknown) => {
        if (err instanceof PerchError) throw err;
        throw new CliError('promote_failed', (err as Error).message);
      });
      emit(opts.json, result, () =>
        [
          ...result.hosts.map(
            (h) =>
              `  ${h.host}: ${h.role}${h.lsn ? ` at ${h.lsn}` : ''}${h.error ? ` (${h.error})` : ''}`,
          ),
          result.action === 'none'
            ? `${result.primary} is the primary; nothing to do.`
            : `Promoted ${result.primary} (replayed up to ${result.lsn}); it is the primary now.`,
        ].join('\n'),
      );
    });
}
