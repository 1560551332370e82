import type { Command } from 'commander';
import { signedInClient, type ServerOptions } from './client.js';
import { intIn, serverCommand } from './common.js';
import { UsageError } from './errors.js';
import { emit, table } from './output.js';
import { resolveRoom } from './room.js';

interface Eligible {
  scope: string;
  users: { id: number; name: string; displayName: string }[];
  more: boolean;
}

/** `perch principal eligible` (Get-CsPersistentChatEligiblePrincipal). */
export function registerPrincipalCommands(program: Command): void {
  const principal = program
    .command('principal')
    .description('users and groups as roles see them (chat administrators)');

  serverCommand(
    principal,
    'eligible',
    'list the users who may be placed in a role, groups expanded',
  )
    .option('--category <category>', 'users in the scope of this category (id or name)')
    .option('--room <room>', "users who may be added to this room (its category's scope)")
    .option('--presenters', 'with --room: users who may present in this auditorium room')
    .option('--filter <text>', 'only logins or display names containing this; * is a wildcard')
    .option('--limit <n>', 'at most n users (1-10000)', intIn(1, 10_000), 100)
    .addHelpText(
      'after',
      `
Scope is allowed minus denied (deny wins), with nested groups expanded; disabled users are
never eligible. Presenters of a closed or secret auditorium must be its members.

Examples:
  perch principal eligible --category engineering --filter "a*"
  perch principal eligible --room "All hands" --presenters --json`,
    )
    .action(
      async (
        opts: ServerOptions & {
          category?: string;
          room?: string;
          presenters?: boolean;
          filter?: string;
          limit: number;
        },
      ) => {
        if ((opts.category === undefined) === (opts.room === undefined)) {
          throw new UsageError('give either --category or --room');
        }
        if (opts.presenters && opts.room === undefined)
          throw new UsageError('--presenters needs --room');
        const api = await signedInClient(opts);
        const room = opts.room === undefined ? undefined : await resolveRoom(api, opts.room);
        const r = await api.get<Eligible>('/principals/eligible', {
          category: opts.category,
          room: room?.id,
          presenters: opts.presenters,
          filter: opts.filter,
          limit: opts.limit,
        });
        emit(opts.json, r, () =>
          [
            table(r.users, [
              ['LOGIN', (u) => u.name],
              ['DISPLAY NAME', (u) => u.displayName],
            ]),
            r.more ? `(more than ${opts.limit}; raise --limit or narrow --filter)` : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      },
    );
}
