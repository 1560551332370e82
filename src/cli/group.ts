import type { Command } from 'commander';
import { seg, signedInClient, type ServerOptions } from './client.js';
import {
  collect,
  confirm,
  destructive,
  intIn,
  nameOf,
  serverCommand,
  type DestructiveOptions,
} from './common.js';
import { UsageError } from './errors.js';
import { emit, fields, names, table } from './output.js';

interface Ref {
  id: number;
  kind: 'user' | 'group';
  name: string;
  displayName: string;
}

interface GroupRecord {
  id: number;
  name: string;
  displayName: string;
  description: string | null;
  source: string;
  members?: Ref[];
}

function groupDetail(g: GroupRecord): string {
  const members = g.members ?? [];
  return [
    fields([
      ['name', g.name],
      ['display name', g.displayName],
      ['description', g.description],
      ['members', members.length],
    ]),
    members.length > 0
      ? table(members, [
          ['MEMBER', (m) => m.name],
          ['KIND', (m) => m.kind],
          ['DISPLAY NAME', (m) => m.displayName],
        ])
      : '',
  ]
    .filter(Boolean)
    .join('\n\n');
}

interface GroupReferences {
  group: Ref;
  members: number;
  rooms: { id: number; name: string; roles: string[] }[];
  categories: { id: number; name: string; lists: string[] }[];
  parentGroups: string[];
  policy: string | null;
  blockers: string[];
}

/** What removing the group takes away, one line per kind of reference. */
function takenAway(r: GroupReferences): string {
  const lines = [
    r.rooms.length > 0
      ? `room roles: ${r.rooms.map((x) => `${x.name} (${x.roles.join(', ')})`).join('; ')}`
      : '',
    r.categories.length > 0
      ? `category lists: ${r.categories.map((x) => `${x.name} (${x.lists.join(', ')})`).join('; ')}`
      : '',
    r.parentGroups.length > 0 ? `member of: ${r.parentGroups.join(', ')}` : '',
    `its ${r.members} direct member(s) stay; only their membership of ${r.group.name} ends`,
  ];
  return lines
    .filter(Boolean)
    .map((l) => `  - ${l}`)
    .join('\n');
}

/** `perch group new|get|set|remove|add-member|remove-member` (administrators). */
export function registerGroupCommands(program: Command): void {
  const group = program
    .command('group')
    .description(
      'groups of the built-in directory; groups may contain groups (chat administrators)',
    );

  serverCommand(group, 'new <name>', 'create a group')
    .option('--display-name <name>', 'name shown to others (default: the name)', nameOf(256))
    .option('--description <text>', 'what the group is for', nameOf(1024))
    .option(
      '--member <names>',
      'initial members, users or groups (repeatable, comma-separated)',
      collect,
    )
    .addHelpText(
      'after',
      '\nExample:\n  perch group new legal --member alice,bob --member compliance',
    )
    .action(
      async (
        name: string,
        opts: ServerOptions & { displayName?: string; description?: string; member?: string[] },
      ) => {
        const api = await signedInClient(opts);
        const g = await api.request<GroupRecord>('POST', '/groups', {
          body: {
            name,
            displayName: opts.displayName,
            description: opts.description,
            members: opts.member,
          },
        });
        emit(opts.json, g, () => `Created group ${g.name}.\n${groupDetail(g)}`);
      },
    );

  serverCommand(group, 'get [name]', 'show one group with its direct members, or list groups')
    .option('--filter <text>', 'list groups whose name or display name contains this')
    .option('--limit <n>', 'list at most n groups (1-500)', intIn(1, 500), 100)
    .addHelpText('after', '\nExamples:\n  perch group get\n  perch group get legal --json')
    .action(
      async (
        name: string | undefined,
        opts: ServerOptions & { filter?: string; limit: number },
      ) => {
        const api = await signedInClient(opts);
        if (name !== undefined) {
          const g = await api.get<GroupRecord>(`/groups/${seg(name)}`);
          emit(opts.json, g, () => groupDetail(g));
          return;
        }
        const groups = await api.get<GroupRecord[]>('/groups', {
          filter: opts.filter,
          limit: opts.limit,
        });
        emit(opts.json, groups, () =>
          table(groups, [
            ['NAME', (g) => g.name],
            ['DISPLAY NAME', (g) => g.displayName],
            ['DESCRIPTION', (g) => g.description],
          ]),
        );
      },
    );

  serverCommand(group, 'set <name>', 'rename a group or change its display name or description')
    .option('--name <new>', 'new name (roles, lists, grants and memberships follow)', nameOf(64))
    .option('--display-name <name>', 'name shown to others', nameOf(256))
    .option('--description <text>', 'what the group is for', nameOf(1024))
    .option('--no-description', 'clear the description')
    .addHelpText(
      'after',
      `
Everything that names a group (room roles, category lists, policy grants, memberships) refers
to it by id, so a renamed group keeps them all.

Examples:
  perch group set legal --display-name "Legal department" --description "Counsel and paralegals"
  perch group set legal --name legal-eu`,
    )
    .action(
      async (
        name: string,
        opts: ServerOptions & { name?: string; displayName?: string; description?: string | false },
      ) => {
        const body: Record<string, unknown> = {};
        if (opts.name !== undefined) body.name = opts.name;
        if (opts.displayName !== undefined) body.displayName = opts.displayName;
        // commander sets `description: true` by default because of --no-description.
        if (typeof opts.description === 'string') body.description = opts.description;
        if (opts.description === false) body.description = null;
        if (Object.keys(body).length === 0) throw new UsageError('nothing to change');
        const api = await signedInClient(opts);
        const g = await api.request<GroupRecord>('PATCH', `/groups/${seg(name)}`, { body });
        emit(opts.json, g, () => `Changed group ${g.name}.\n${groupDetail(g)}`);
      },
    );

  destructive(serverCommand(group, 'remove <name>', 'remove a group'))
    .addHelpText(
      'after',
      `
The group's room roles (member, manager, presenter), its places on category allowed and
creator lists and its memberships (of other groups, and of its own members) go with it; those
only ever granted access, so access can only narrow. The users themselves stay.

A group that is on a category's denied list, or that holds a policy grant, is refused with
group_in_use: removing it would silently widen access (an ethical wall would fall, or a policy
that turns chat off would stop applying). Change the category (category set --remove-denied)
or the grant (policy grant <group> --none) first. --what-if shows all of this.

Examples:
  perch group remove old-project --what-if
  perch group remove old-project --force`,
    )
    .action(async (name: string, opts: DestructiveOptions) => {
      const api = await signedInClient(opts);
      const refs = await api.get<GroupReferences>(`/groups/${seg(name)}/references`);
      if (opts.whatIf) {
        emit(opts.json, { whatIf: true, action: `remove group ${refs.group.name}`, ...refs }, () =>
          refs.blockers.length > 0
            ? `What if: remove group ${refs.group.name}: refused, ${refs.blockers.join('; ')}.`
            : `What if: remove group ${refs.group.name}, taking away:\n${takenAway(refs)}`,
        );
        return;
      }
      if (!(await confirm(opts, `remove group ${refs.group.name}`, { name: refs.group.name }))) {
        return;
      }
      const removed = await api.request<GroupReferences>('DELETE', `/groups/${seg(name)}`);
      emit(
        opts.json,
        { removed: true, ...removed },
        () => `Removed group ${removed.group.name}, and with it:\n${takenAway(removed)}`,
      );
    });

  for (const [verb, key, done] of [
    ['add-member', 'add', 'Added'],
    ['remove-member', 'remove', 'Removed'],
  ] as const) {
    serverCommand(
      group,
      `${verb} <group> <members...>`,
      `${key} users or groups ${key === 'add' ? 'to' : 'from'} a group`,
    )
      .addHelpText('after', `\nExample:\n  perch group ${verb} legal alice bob`)
      .action(async (name: string, members: string[], opts: ServerOptions) => {
        const api = await signedInClient(opts);
        const g = await api.request<GroupRecord>('PATCH', `/groups/${seg(name)}/members`, {
          body: { [key]: members },
        });
        emit(
          opts.json,
          g,
          () =>
            `${done} ${members.join(', ')}. ${g.name} now has: ${names(g.members) || '(no members)'}`,
        );
      });
  }
}
