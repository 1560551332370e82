import type { Command } from 'commander';
import { signedInClient, type ApiClient, type ServerOptions } from './client.js';
import {
  collect,
  confirm,
  destructive,
  intIn,
  nameOf,
  oneOf,
  parseBool,
  parseDate,
  serverCommand,
  type DestructiveOptions,
} from './common.js';
import { ApiError, CliError, UsageError } from './errors.js';
import { emit, fields, names, table } from './output.js';

interface Ref {
  id: number;
  kind: 'user' | 'group';
  name: string;
  displayName: string;
}

export interface RoomRecord {
  id: number;
  name: string;
  description: string;
  category: { id: number; name: string };
  privacy: 'open' | 'closed' | 'secret';
  type: 'normal' | 'auditorium';
  disabled: boolean;
  invitations: 'inherit' | 'off';
  invitationsEnabled: boolean;
  fileUpload: boolean;
  history: boolean;
  addin: { id: number; name: string; url: string } | null;
  lastSeq: number;
  memberCount: number;
  members?: Ref[];
  managers?: Ref[];
  presenters?: Ref[];
}

/**
 * Finds a room's id from an id or a name. Administrators look names up in the full room list
 * (disabled rooms included); others in the room directory, which shows what they may find.
 */
export async function resolveRoom(api: ApiClient, ref: string): Promise<RoomRecord> {
  if (/^\d{1,15}$/.test(ref)) return api.get<RoomRecord>(`/rooms/${ref}`);
  let rooms: RoomRecord[];
  try {
    rooms = await api.get<RoomRecord[]>('/admin/rooms', { name: ref, limit: 1 });
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'admin_required')) throw err;
    const found = await api.get<RoomRecord[]>('/rooms', {
      text: ref,
      includeDescription: false,
      limit: 500,
    });
    const key = ref.normalize('NFKC').toLowerCase();
    rooms = found.filter((r) => r.name.normalize('NFKC').toLowerCase() === key);
  }
  const room = rooms[0];
  if (!room) throw new CliError('room_not_found', `no room named ${JSON.stringify(ref)}`);
  return room;
}

export function roomTable(rooms: RoomRecord[]): string {
  return table(rooms, [
    ['ID', (r) => r.id],
    ['NAME', (r) => r.name],
    ['CATEGORY', (r) => r.category.name],
    ['PRIVACY', (r) => r.privacy],
    ['TYPE', (r) => r.type],
    ['DISABLED', (r) => r.disabled],
    ['MEMBERS', (r) => r.memberCount],
    ['ADDIN', (r) => r.addin?.name],
  ]);
}

function roomDetail(r: RoomRecord): string {
  return fields([
    ['id', r.id],
    ['name', r.name],
    ['description', r.description],
    ['category', r.category.name],
    ['privacy', r.privacy],
    ['type', r.type],
    ['disabled', r.disabled],
    ['invitations', `${r.invitations} (${r.invitationsEnabled ? 'on' : 'off'})`],
    ['file upload', r.fileUpload],
    ['history', r.history],
    ['add-in', r.addin ? `${r.addin.name} <${r.addin.url}>` : null],
    ['messages', r.lastSeq],
    ['members', r.members ? names(r.members) : `${r.memberCount} (not visible to you)`],
    ['managers', r.managers ? names(r.managers) : ''],
    ['presenters', r.presenters ? names(r.presenters) : ''],
  ]);
}

const privacy = oneOf('open', 'closed', 'secret');
const roomType = oneOf('normal', 'auditorium');
const invitations = oneOf('inherit', 'off');

type RoleOpts = {
  members?: string[];
  addMember?: string[];
  removeMember?: string[];
  managers?: string[];
  addManager?: string[];
  removeManager?: string[];
  presenters?: string[];
  addPresenter?: string[];
  removePresenter?: string[];
};

/** Builds a role list change: a full list, or `{ add, remove }`. */
function listChange(
  flag: string,
  all: string[] | undefined,
  add: string[] | undefined,
  remove: string[] | undefined,
): unknown {
  if (all !== undefined) {
    if (add || remove)
      throw new UsageError(
        `--${flag}s replaces the list; do not combine it with --add-${flag} or --remove-${flag}`,
      );
    return all;
  }
  if (add || remove) return { add: add ?? [], remove: remove ?? [] };
  return undefined;
}

function roleOptions(cmd: Command): Command {
  for (const role of ['member', 'manager', 'presenter']) {
    cmd
      .option(
        `--${role}s <names>`,
        `replace the ${role}s with this list ("" for none)`,
        collectOrEmpty,
      )
      .option(
        `--add-${role} <names>`,
        `add ${role}s (users or groups; repeatable, comma-separated)`,
        collect,
      )
      .option(`--remove-${role} <names>`, `remove ${role}s`, collect);
  }
  return cmd;
}

function collectOrEmpty(value: string, previous: string[] | undefined): string[] {
  return collect(value, previous ?? []);
}

/** `perch room get|new|set|remove|clear`. */
export function registerRoomCommands(program: Command): void {
  const room = program
    .command('room')
    .description(
      'chat rooms: settings, roles, removal and clearing (administrators; managers for their rooms)',
    );

  serverCommand(room, 'get [room]', 'show one room (by id or name), or list rooms with filters')
    .option('--category <category>', 'only rooms in this category')
    .option('--filter <text>', 'only rooms whose name contains this')
    .option('--search-description', 'let --filter match the description too')
    .option('--disabled <bool>', 'only disabled (true) or enabled (false) rooms', parseBool)
    .option('--privacy <privacy>', 'only open, closed or secret rooms', privacy)
    .option('--type <type>', 'only normal or auditorium rooms', roomType)
    .option('--addin <name>', 'only rooms using this add-in')
    .option('--member <name>', 'only rooms listing this user or group as a member')
    .option('--manager <name>', 'only rooms listing this user or group as a manager')
    .option('--limit <n>', 'list at most n rooms (1-10000)', intIn(1, 10_000), 100)
    .addHelpText(
      'after',
      '\nListing needs the chat administrator role; it includes disabled rooms.\n\nExamples:\n  perch room get\n  perch room get --category engineering --disabled true\n  perch room get "Release planning" --json',
    )
    .action(
      async (
        ref: string | undefined,
        opts: ServerOptions & {
          category?: string;
          filter?: string;
          searchDescription?: boolean;
          disabled?: boolean;
          privacy?: string;
          type?: string;
          addin?: string;
          member?: string;
          manager?: string;
          limit: number;
        },
      ) => {
        const api = await signedInClient(opts);
        if (ref !== undefined) {
          const r = await resolveRoom(api, ref);
          emit(opts.json, r, () => roomDetail(r));
          return;
        }
        const rooms = await api.get<RoomRecord[]>('/admin/rooms', {
          category: opts.category,
          filter: opts.filter,
          includeDescription: opts.searchDescription,
          disabled: opts.disabled,
          privacy: opts.privacy,
          type: opts.type,
          addin: opts.addin,
          member: opts.member,
          manager: opts.manager,
          limit: opts.limit,
        });
        emit(opts.json, rooms, () => roomTable(rooms));
      },
    );

  roleOptions(
    serverCommand(room, 'new <name>', 'create a room in a category')
      .requiredOption('--category <category>', 'category (id or name) the room belongs to')
      .option(
        '--description <text>',
        'what the room is about (at most 256 characters)',
        nameOf(256),
      )
      .option('--privacy <privacy>', 'open, closed or secret', privacy, 'closed')
      .option('--type <type>', 'normal or auditorium (only presenters post)', roomType, 'normal')
      .option(
        '--invitations <mode>',
        "inherit (the category's setting) or off",
        invitations,
        'inherit',
      )
      .option('--addin <name>', 'add-in shown with the room'),
  )
    .addHelpText(
      'after',
      '\nExample:\n  perch room new "Release planning" --category engineering --privacy closed --members alice,bob --managers alice',
    )
    .action(
      async (
        name: string,
        opts: ServerOptions &
          RoleOpts & {
            category: string;
            description?: string;
            privacy: string;
            type: string;
            invitations: string;
            addin?: string;
          },
      ) => {
        if (
          opts.addMember ||
          opts.addManager ||
          opts.addPresenter ||
          opts.removeMember ||
          opts.removeManager ||
          opts.removePresenter
        ) {
          throw new UsageError('a new room takes --members, --managers and --presenters');
        }
        const api = await signedInClient(opts);
        const r = await api.request<RoomRecord>('POST', '/rooms', {
          body: {
            name,
            category: /^\d+$/.test(opts.category) ? Number(opts.category) : opts.category,
            description: opts.description,
            privacy: opts.privacy,
            type: opts.type,
            invitations: opts.invitations,
            addin: opts.addin,
            members: opts.members,
            managers: opts.managers,
            presenters: opts.presenters,
          },
        });
        emit(opts.json, r, () => `Created room ${r.name} (#${r.id}).\n${roomDetail(r)}`);
      },
    );

  roleOptions(
    serverCommand(room, 'set <room>', "change a room's settings and roles")
      .option('--name <name>', 'rename the room', nameOf(256))
      .option('--description <text>', 'new description', nameOf(256))
      .option(
        '--category <category>',
        'move the room to another category (roles outside its scope are dropped)',
      )
      .option('--privacy <privacy>', 'open, closed or secret', privacy)
      .option('--type <type>', 'normal or auditorium', roomType)
      .option('--disabled <bool>', 'true disables the room (everyone is disconnected)', parseBool)
      .option('--invitations <mode>', 'inherit or off', invitations)
      .option('--addin <name>', 'attach this add-in')
      .option('--no-addin', 'detach the add-in'),
  )
    .addHelpText(
      'after',
      '\nRole lists: --members replaces the list; --add-member/--remove-member change it.\n\nExamples:\n  perch room set "Release planning" --add-member carol --remove-member bob\n  perch room set 12 --disabled true\n  perch room set 12 --addin wiki',
    )
    .action(
      async (
        ref: string,
        opts: ServerOptions &
          RoleOpts & {
            name?: string;
            description?: string;
            category?: string;
            privacy?: string;
            type?: string;
            disabled?: boolean;
            invitations?: string;
            addin?: string | false;
          },
      ) => {
        const body: Record<string, unknown> = {
          name: opts.name,
          description: opts.description,
          category:
            opts.category === undefined
              ? undefined
              : /^\d+$/.test(opts.category)
                ? Number(opts.category)
                : opts.category,
          privacy: opts.privacy,
          type: opts.type,
          disabled: opts.disabled,
          invitations: opts.invitations,
          // Commander gives --no-addin as false and leaves `addin` true when neither is given.
          addin:
            opts.addin === false ? null : typeof opts.addin === 'string' ? opts.addin : undefined,
          members: listChange('member', opts.members, opts.addMember, opts.removeMember),
          managers: listChange('manager', opts.managers, opts.addManager, opts.removeManager),
          presenters: listChange(
            'presenter',
            opts.presenters,
            opts.addPresenter,
            opts.removePresenter,
          ),
        };
        for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
        if (Object.keys(body).length === 0) throw new UsageError('nothing to change');
        const api = await signedInClient(opts);
        const { id } = await resolveRoom(api, ref);
        const r = await api.request<RoomRecord>('PATCH', `/rooms/${id}`, { body });
        emit(opts.json, r, () => `Changed room ${r.name} (#${r.id}).\n${roomDetail(r)}`);
      },
    );

  destructive(serverCommand(room, 'remove <room>', 'delete a room with all its messages and files'))
    .addHelpText(
      'after',
      '\nExamples:\n  perch room remove "Old project" --what-if\n  perch room remove 12 --force',
    )
    .action(async (ref: string, opts: DestructiveOptions) => {
      const api = await signedInClient(opts);
      const r = await resolveRoom(api, ref);
      const target = { id: r.id, name: r.name, category: r.category.name, messages: r.lastSeq };
      if (
        !(await confirm(
          opts,
          `remove room ${r.name} (#${r.id}) and its ${r.lastSeq} message(s)`,
          target,
        ))
      )
        return;
      await api.request('DELETE', `/rooms/${r.id}`);
      emit(opts.json, { removed: true, room: target }, () => `Removed room ${r.name} (#${r.id}).`);
    });

  destructive(
    serverCommand(room, 'clear <room>', 'delete the messages of a room up to and including a date'),
  )
    .requiredOption(
      '--end-date <date>',
      'last day (2024-05-01, whole day), date-time with offset, or epoch ms',
      parseDate,
    )
    .addHelpText(
      'after',
      '\nCompliance keeps what it captured. Example:\n  perch room clear "Release planning" --end-date 2023-12-31 --force',
    )
    .action(async (ref: string, opts: DestructiveOptions & { endDate: string | number }) => {
      const api = await signedInClient(opts);
      const r = await resolveRoom(api, ref);
      const target = { id: r.id, name: r.name, upTo: opts.endDate };
      if (
        !(await confirm(
          opts,
          `clear room ${r.name} (#${r.id}) up to and including ${String(opts.endDate)}`,
          target,
        ))
      )
        return;
      const res = await api.request<{ deleted: number }>('POST', `/rooms/${r.id}/clear`, {
        body: { upTo: opts.endDate },
      });
      emit(
        opts.json,
        { room: target, deleted: res.deleted },
        () => `Cleared room ${r.name}: deleted ${res.deleted} message(s).`,
      );
    });
}
