import type { Command } from 'commander';
import type { DirectorySyncSummary } from '../domain/directory/sync.js';
import { signedInClient, type ServerOptions } from './client.js';
import { serverCommand } from './common.js';
import { emit, stdio } from './output.js';

function list(label: string, names: readonly string[]): string[] {
  return names.length === 0 ? [] : [`${label} (${names.length}): ${names.join(', ')}`];
}

/** The human summary of a sync: counts read, then each kind of change. */
export function describeSync(r: DirectorySyncSummary): string {
  const lines = [
    `${r.dryRun ? 'would sync' : 'synced'}: ${r.read.users} users, ${r.read.groups} groups, ${r.read.ous} organisational units read`,
    ...list('created', r.created),
    ...list(
      'renamed',
      r.renamed.map((x) => `${x.from} -> ${x.to}`),
    ),
    ...list('updated', r.updated),
    ...list('disabled', r.disabled),
    ...list('enabled', r.enabled),
    ...list('removed from the directory (disabled)', r.removed),
    ...r.memberships.map(
      (m) =>
        `members of ${m.group}:${m.added.length ? ` +${m.added.join(' +')}` : ''}${m.removed.length ? ` -${m.removed.join(' -')}` : ''}`,
    ),
    ...list('signed out', r.signedOut),
    ...list(
      'not synced, the name is taken by a local user or group',
      r.conflicts.map((c) => `${c.name} (${c.dn})`),
    ),
    ...list('skipped, no id or name attribute', r.read.skipped),
  ];
  const changes =
    r.created.length +
    r.renamed.length +
    r.updated.length +
    r.disabled.length +
    r.enabled.length +
    r.removed.length +
    r.memberships.length;
  if (changes === 0) lines.push('no changes');
  return lines.join('\n');
}

/** `perch directory sync`: users and groups from LDAP / Active Directory. */
export function registerDirectoryCommands(program: Command): void {
  const directory = program
    .command('directory')
    .description('the LDAP / Active Directory users and groups are synced from');

  serverCommand(
    directory,
    'sync',
    'sync users, groups, nested membership and organisational units from the directory now',
  )
    .option('--dry-run', 'show what would change, change nothing')
    .addHelpText(
      'after',
      `
The server reads the whole directory (PERCH_DIRECTORY_FILE) before writing anything: if the
directory cannot be read, nothing changes and the error is reported (directory_unavailable).
Users disabled or removed in the directory are signed out at once; their messages stay.
The server also syncs on its own every PERCH_DIRECTORY_SYNC_INTERVAL_MS (15 minutes).

Examples:
  perch directory sync --dry-run
  perch directory sync --json`,
    )
    .action(async (opts: ServerOptions & { dryRun?: boolean }) => {
      const api = await signedInClient(opts);
      stdio.err(
        `perch: ${opts.dryRun ? 'reading the directory (dry run)' : 'syncing from the directory'}…`,
      );
      const r = await api.request<DirectorySyncSummary>('POST', '/directory/sync', {
        body: { dryRun: opts.dryRun === true },
      });
      stdio.err(
        `perch: read ${r.read.users} users, ${r.read.groups} groups, ${r.read.ous} organisational units`,
      );
      emit(opts.json, r, () => describeSync(r));
    });
}
