import type { Command } from 'commander';
import { signedInClient } from './client.js';
import {
  confirm,
  destructive,
  intIn,
  parseDate,
  serverCommand,
  type DestructiveOptions,
} from './common.js';
import { UsageError } from './errors.js';
import { emit } from './output.js';
import { resolveRoom } from './room.js';

/** Lync's default text for Remove-CsPersistentChatMessage -ReplaceMessage. */
export const DEFAULT_REPLACEMENT =
  'This message was replaced by the Persistent Chat administrator.';

/** `perch message remove` (Remove-CsPersistentChatMessage). */
export function registerMessageCommands(program: Command): void {
  const message = program
    .command('message')
    .description('remove or replace messages; compliance keeps the original (chat administrators)');

  destructive(
    serverCommand(message, 'remove', 'remove or replace messages in one room')
      .requiredOption('--room <room>', 'the room (id or name)')
      .option(
        '--seq <n>',
        'one message, by its sequence number in the room',
        intIn(1, Number.MAX_SAFE_INTEGER),
      )
      .option('--author <login>', 'messages by this user')
      .option('--from <date>', 'messages posted at or after this date', parseDate)
      .option(
        '--to <date>',
        'messages posted up to and including this date (a date: that whole day)',
        parseDate,
      )
      .option('--all', 'every message of the room (when no other selector is given)')
      .option(
        '--replace [text]',
        `replace the text instead of removing (default text: "${DEFAULT_REPLACEMENT}")`,
      )
      .option('--limit <n>', 'change at most n messages (1-100000)', intIn(1, 100_000), 10_000),
  )
    .addHelpText(
      'after',
      `
Removed messages show as removed; replaced ones show the replacement text. Either way the
original text stays in the compliance record.

Examples:
  perch message remove --room "Release planning" --seq 42 --force
  perch message remove --room 7 --author mallory --from 2024-05-01 --to 2024-05-31 --replace --what-if`,
    )
    .action(
      async (
        opts: DestructiveOptions & {
          room: string;
          seq?: number;
          author?: string;
          from?: string | number;
          to?: string | number;
          all?: boolean;
          replace?: string | true;
          limit: number;
        },
      ) => {
        const selectors = [opts.author, opts.from, opts.to].filter((v) => v !== undefined);
        if (opts.seq !== undefined && (selectors.length > 0 || opts.all)) {
          throw new UsageError('--seq selects one message; do not combine it with other selectors');
        }
        if (opts.seq === undefined && selectors.length === 0 && !opts.all) {
          throw new UsageError('select messages with --seq, --author, --from/--to, or --all');
        }
        if (opts.all && selectors.length > 0) throw new UsageError('--all takes no other selector');
        const replacement =
          opts.replace === undefined
            ? undefined
            : opts.replace === true
              ? DEFAULT_REPLACEMENT
              : opts.replace;
        if (replacement !== undefined && replacement.trim() === '') {
          throw new UsageError('--replace needs a non-empty text');
        }
        const api = await signedInClient(opts);
        const room = await resolveRoom(api, opts.room);
        const selection = [
          opts.seq !== undefined ? `message #${opts.seq}` : undefined,
          opts.all ? 'every message' : undefined,
          opts.author !== undefined ? `messages by ${opts.author}` : undefined,
          opts.from !== undefined ? `from ${String(opts.from)}` : undefined,
          opts.to !== undefined ? `to ${String(opts.to)}` : undefined,
        ]
          .filter(Boolean)
          .join(' ');
        const target = {
          room: { id: room.id, name: room.name },
          seq: opts.seq,
          author: opts.author,
          from: opts.from,
          to: opts.to,
          replacement,
          limit: opts.limit,
        };
        const verb = replacement === undefined ? 'remove' : 'replace';
        if (
          !(await confirm(opts, `${verb} ${selection} in room ${room.name} (#${room.id})`, target))
        ) {
          return;
        }
        const res = await api.request<{ changed: number }>('POST', '/messages/remove', {
          body: {
            room: room.id,
            seq: opts.seq,
            author: opts.author,
            from: opts.from,
            to: opts.to,
            replacement,
            limit: opts.limit,
          },
        });
        emit(
          opts.json,
          { ...target, action: verb, changed: res.changed },
          () =>
            `${verb === 'remove' ? 'Removed' : 'Replaced'} ${res.changed} message(s) in room ${room.name}.`,
        );
      },
    );
}
