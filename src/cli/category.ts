import { InvalidArgumentError, type Command } from 'commander';
import { seg, signedInClient, type ApiClient, type ServerOptions } from './client.js';
import {
  collect,
  confirm,
  destructive,
  nameOf,
  parseBool,
  serverCommand,
  type DestructiveOptions,
} from './common.js';
import type { RetentionResult } from '../domain/categories/retention.js';
import { UsageError } from './errors.js';
import { emit, fields, names, table } from './output.js';

interface Ref {
  id: number;
  name: string;
}

export interface CategoryRecord {
  id: number;
  name: string;
  description: string;
  fileUpload: boolean;
  invitations: boolean;
  history: boolean;
  retentionDays?: number | null;
  allowed?: Ref[];
  denied?: Ref[];
  creators?: Ref[];
}

function categoryDetail(c: CategoryRecord): string {
  return fields([
    ['id', c.id],
    ['name', c.name],
    ['description', c.description],
    ['file upload', c.fileUpload],
    ['invitations', c.invitations],
    ['history', c.history],
    ['retention', retention(c.retentionDays)],
    ['allowed', names(c.allowed)],
    ['denied', names(c.denied)],
    ['creators', names(c.creators)],
  ]);
}

function retention(days: number | null | undefined): string {
  return days === null || days === undefined ? 'forever' : `${days} days`;
}

/** `--retention-days`: 1-36500, or none (keep forever; commander turns a null into ''). */
function parseRetention(value: string): number | 'none' {
  if (/^(none|forever)$/i.test(value)) return 'none';
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 36_500) {
    throw new InvalidArgumentError('a number of days from 1 to 36500, or "none"');
  }
  return n;
}

const lists = [
  ['allowed', 'allowed', 'allowed'],
  ['denied', 'denied', 'denied'],
  ['creators', 'creator', 'creators'],
] as const;

type ListOpts = Record<string, string[] | undefined>;

function listOptions(cmd: Command, withChanges: boolean): Command {
  cmd
    .option(
      '--allowed <names>',
      'users and groups in scope (repeatable, comma-separated; "" for none)',
      collect,
    )
    .option('--denied <names>', 'users and groups out of scope; deny wins over allow', collect)
    .option('--creators <names>', 'users and groups who may create rooms', collect);
  if (withChanges) {
    for (const [, flag] of lists) {
      cmd
        .option(`--add-${flag} <names>`, `add to the ${flag} list`, collect)
        .option(`--remove-${flag} <names>`, `remove from the ${flag} list`, collect);
    }
  }
  return cmd;
}

/** Turns `--allowed`, `--add-allowed`, `--remove-allowed`, ... into full lists for the API. */
async function listChanges(
  api: ApiClient,
  ref: string,
  opts: ListOpts,
): Promise<Partial<Record<'allowed' | 'denied' | 'creators', string[]>>> {
  const out: Partial<Record<'allowed' | 'denied' | 'creators', string[]>> = {};
  let current: CategoryRecord | undefined;
  for (const [key, flag, optKey] of lists) {
    const cap = flag[0]!.toUpperCase() + flag.slice(1);
    const all = opts[optKey];
    const add = opts[`add${cap}`];
    const remove = opts[`remove${cap}`];
    if (all !== undefined) {
      if (add || remove) {
        throw new UsageError(
          `--${optKey} replaces the list; do not combine it with --add-${flag} or --remove-${flag}`,
        );
      }
      out[key] = all;
    } else if (add || remove) {
      current ??= await api.get<CategoryRecord>(`/categories/${seg(ref)}`);
      const drop = new Set((remove ?? []).map((n) => n.toLowerCase()));
      const kept = (current[key] ?? [])
        .map((p) => p.name)
        .filter((n) => !drop.has(n.toLowerCase()));
      const have = new Set(kept.map((n) => n.toLowerCase()));
      out[key] = [...kept, ...(add ?? []).filter((n) => !have.has(n.toLowerCase()))];
    }
  }
  return out;
}

/** `perch category get|new|set|remove` (administrators). */
export function registerCategoryCommands(program: Command): void {
  const category = program
    .command('category')
    .description(
      'categories: scope (allowed - denied), creators and room defaults (chat administrators)',
    );

  serverCommand(category, 'get [category]', 'show one category (by id or name), or list them')
    .addHelpText(
      'after',
      '\nExamples:\n  perch category get\n  perch category get engineering --json',
    )
    .action(async (ref: string | undefined, opts: ServerOptions) => {
      const api = await signedInClient(opts);
      if (ref !== undefined) {
        const c = await api.get<CategoryRecord>(`/categories/${seg(ref)}`);
        emit(opts.json, c, () => categoryDetail(c));
        return;
      }
      const all = await api.get<CategoryRecord[]>('/categories');
      emit(opts.json, all, () =>
        table(all, [
          ['ID', (c) => c.id],
          ['NAME', (c) => c.name],
          ['UPLOAD', (c) => c.fileUpload],
          ['INVITES', (c) => c.invitations],
          ['HISTORY', (c) => c.history],
          ['RETENTION', (c) => retention(c.retentionDays)],
          ['ALLOWED', (c) => names(c.allowed)],
          ['DENIED', (c) => names(c.denied)],
          ['CREATORS', (c) => names(c.creators)],
        ]),
      );
    });

  listOptions(
    serverCommand(category, 'new <name>', 'create a category')
      .option(
        '--description <text>',
        'what the category is for (at most 256 characters)',
        nameOf(256),
      )
      .option('--file-upload', 'allow file uploads in its rooms (default off)')
      .option('--invitations', 'send invitations when members are added (default off)')
      .option('--no-history', 'keep no message history (default: history kept)')
      .option(
        '--retention-days <days>',
        'purge messages and files older than this many days (1-36500; default none: kept forever)',
        parseRetention,
      ),
    false,
  )
    .addHelpText(
      'after',
      '\nExample:\n  perch category new engineering --allowed engineers --denied contractors --creators leads --file-upload',
    )
    .action(
      async (
        name: string,
        opts: ServerOptions &
          ListOpts & {
            description?: string;
            fileUpload?: boolean;
            invitations?: boolean;
            history: boolean;
            retentionDays?: number | 'none';
          },
      ) => {
        const api = await signedInClient(opts);
        const c = await api.request<CategoryRecord>('POST', '/categories', {
          body: {
            name,
            description: opts.description,
            fileUpload: opts.fileUpload ?? false,
            invitations: opts.invitations ?? false,
            history: opts.history,
            retentionDays: opts.retentionDays === 'none' ? null : (opts.retentionDays ?? null),
            allowed: opts.allowed,
            denied: opts.denied,
            creators: opts.creators,
          },
        });
        emit(opts.json, c, () => `Created category ${c.name} (#${c.id}).\n${categoryDetail(c)}`);
      },
    );

  listOptions(
    serverCommand(
      category,
      'set <category>',
      'change a category; narrowing its scope prunes room roles at once',
    )
      .option('--name <name>', 'rename the category', nameOf(256))
      .option('--description <text>', 'new description', nameOf(256))
      .option('--file-upload <bool>', 'allow file uploads', parseBool)
      .option('--invitations <bool>', 'send invitations', parseBool)
      .option('--history <bool>', 'keep message history', parseBool)
      .option(
        '--retention-days <days>',
        'purge messages and files older than this many days (1-36500), or "none" to keep them forever',
        parseRetention,
      ),
    true,
  )
    .addHelpText(
      'after',
      '\nLists: --allowed replaces the list; --add-allowed/--remove-allowed change it (same for denied, creator).\n\nRetention: the server purges messages and files older than --retention-days every hour (and on `perch category purge`), except what a legal hold covers (`perch compliance hold place --category|--room`). Compliance keeps its own copy.\n\nExamples:\n  perch category set engineering --add-denied mallory\n  perch category set engineering --file-upload false --history true\n  perch category set chatter --retention-days 90',
    )
    .action(
      async (
        ref: string,
        opts: ServerOptions &
          ListOpts & {
            name?: string;
            description?: string;
            fileUpload?: boolean;
            invitations?: boolean;
            history?: boolean;
            retentionDays?: number | 'none';
          },
      ) => {
        const api = await signedInClient(opts);
        const body: Record<string, unknown> = {
          name: opts.name,
          description: opts.description,
          fileUpload: opts.fileUpload,
          invitations: opts.invitations,
          history: opts.history,
          retentionDays: opts.retentionDays === 'none' ? null : opts.retentionDays,
          ...(await listChanges(api, ref, opts)),
        };
        for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
        if (Object.keys(body).length === 0) throw new UsageError('nothing to change');
        const c = await api.request<CategoryRecord>('PATCH', `/categories/${seg(ref)}`, { body });
        emit(opts.json, c, () => `Changed category ${c.name}.\n${categoryDetail(c)}`);
      },
    );

  destructive(
    serverCommand(
      category,
      'purge [category]',
      "delete messages and files past their category's retention period now",
    ),
  )
    .addHelpText(
      'after',
      `
Deletes, from the chat store, messages and files older than the retention days of their category
(all categories with a retention, or only the one named), except what an active legal hold covers;
the server also does this every hour. Compliance keeps its copy of every message. Without a
terminal --force is required; --what-if changes nothing.

Example:
  perch category purge chatter --force`,
    )
    .action(async (ref: string | undefined, opts: DestructiveOptions) => {
      const what = ref === undefined ? 'every category with a retention' : `category ${ref}`;
      if (!(await confirm(opts, `purge expired messages of ${what}`, {}))) return;
      const api = await signedInClient(opts);
      const r = await api.request<RetentionResult>('POST', '/retention/purge', {
        body: ref === undefined ? {} : { category: ref },
      });
      emit(opts.json, r, () =>
        table(
          r.categories,
          [
            ['CATEGORY', (c) => c.category],
            ['RETENTION', (c) => `${c.retentionDays} days`],
            ['CUTOFF', (c) => c.cutoff],
            ['HELD', (c) => c.held],
            ['MESSAGES', (c) => c.messages],
            ['FILES', (c) => c.files],
          ],
          '(no category has a retention period)',
        ),
      );
    });

  destructive(
    serverCommand(category, 'remove <category>', 'delete a category; it must hold no rooms'),
  )
    .addHelpText('after', '\nExample:\n  perch category remove old-projects --force')
    .action(async (ref: string, opts: DestructiveOptions) => {
      const api = await signedInClient(opts);
      const c = await api.get<CategoryRecord>(`/categories/${seg(ref)}`);
      const target = { id: c.id, name: c.name };
      if (!(await confirm(opts, `remove category ${c.name} (#${c.id})`, target))) return;
      await api.request('DELETE', `/categories/${c.id}`);
      emit(opts.json, { removed: true, category: target }, () => `Removed category ${c.name}.`);
    });
}
