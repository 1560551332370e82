import type { Command } from 'commander';
import { seg, signedInClient, type ServerOptions } from './client.js';
import { collect, intIn, nameOf, serverCommand } from './common.js';
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

/** `perch group new|get|add-member|remove-member` (administrators). */
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
