import type { Command } from 'commander';
import { seg, signedInClient, type ServerOptions } from './client.js';
import { serverCommand } from './common.js';
import { UsageError } from './errors.js';
import { emit } from './output.js';
import { resolveRoom, type RoomRecord } from './room.js';

const roles = ['chat-admin', 'member', 'manager', 'presenter'] as const;
type Role = (typeof roles)[number];

/** `perch role grant|revoke`: the chat administrator role, and room roles with `--room`. */
export function registerRoleCommands(program: Command): void {
  const role = program
    .command('role')
    .description(
      'grant and revoke roles: chat administrator (global) and room member/manager/presenter',
    );

  for (const verb of ['grant', 'revoke'] as const) {
    serverCommand(role, `${verb} <role> <principal>`, `${verb} a role (${roles.join(', ')})`)
      .option('--room <room>', 'the room (id or name), for member, manager and presenter')
      .addHelpText(
        'after',
        `
chat-admin makes a user a chat administrator (users only; you cannot revoke your own).
member, manager and presenter apply to one room (users or groups; within the category scope).

Examples:
  perch role ${verb} chat-admin alice
  perch role ${verb} manager legal-team --room "Case 42"`,
      )
      .action(
        async (roleName: string, principal: string, opts: ServerOptions & { room?: string }) => {
          if (!(roles as readonly string[]).includes(roleName)) {
            throw new UsageError(
              `unknown role ${JSON.stringify(roleName)}; use one of ${roles.join(', ')}`,
            );
          }
          const r = roleName as Role;
          const api = await signedInClient(opts);
          if (r === 'chat-admin') {
            if (opts.room !== undefined)
              throw new UsageError('chat-admin is a global role; drop --room');
            const u = await api.request<{ name: string; isAdmin: boolean }>(
              'PATCH',
              `/users/${seg(principal)}`,
              {
                body: { isAdmin: verb === 'grant' },
              },
            );
            emit(
              opts.json,
              { role: r, principal: u.name, granted: u.isAdmin },
              () => `${u.name} is ${u.isAdmin ? 'now' : 'no longer'} a chat administrator.`,
            );
            return;
          }
          if (opts.room === undefined) throw new UsageError(`${r} is a room role; give --room`);
          const room = await resolveRoom(api, opts.room);
          const change = verb === 'grant' ? { add: [principal] } : { remove: [principal] };
          const updated = await api.request<RoomRecord>('PATCH', `/rooms/${room.id}`, {
            body: { [`${r}s`]: change },
          });
          emit(
            opts.json,
            {
              role: r,
              principal,
              room: { id: updated.id, name: updated.name },
              granted: verb === 'grant',
            },
            () =>
              `${verb === 'grant' ? 'Granted' : 'Revoked'} ${r} ${verb === 'grant' ? 'to' : 'from'} ${principal} in room ${updated.name} (#${updated.id}).`,
          );
        },
      );
  }
}
