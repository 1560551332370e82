import type { Command } from 'commander';
import { signedInClient, type ServerOptions } from './client.js';
import { intIn, oneOf, parseDate, serverCommand } from './common.js';
import { emit, isoTime, table } from './output.js';

interface AuditEntry {
  id: number;
  actorName: string;
  action: string;
  method: string;
  path: string;
  params: Record<string, unknown>;
  result: 'pending' | 'ok' | 'error';
  errorCode: string | null;
  createdAt: number;
  finishedAt: number | null;
}

interface AuditPage {
  entries: AuditEntry[];
  next: number | null;
}

interface AuditOptions extends ServerOptions {
  actor?: string;
  action?: string;
  result?: string;
  since?: string | number;
  until?: string | number;
  before?: number;
  limit: number;
}

/** `perch audit get`: the admin audit trail the server records for every admin call. */
export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description(
      'the admin audit trail: who changed what, when and how it ended (chat administrators)',
    );

  serverCommand(audit, 'get', 'list admin actions, newest first')
    .option('--actor <login>', 'only actions of this administrator')
    .option('--action <name>', 'only this action (user.set), or a prefix ending in * (user.*)')
    .option(
      '--result <result>',
      'only calls that ended so: ok, error or pending',
      oneOf('ok', 'error', 'pending'),
    )
    .option('--since <date>', 'from this date or date-time', parseDate)
    .option('--until <date>', 'up to this date (the whole day) or date-time', parseDate)
    .option(
      '--before <id>',
      'entries older than this id (the "next" of the previous page)',
      intIn(1, Number.MAX_SAFE_INTEGER),
    )
    .option('--limit <n>', 'at most n entries (1-1000)', intIn(1, 1000), 100)
    .addHelpText(
      'after',
      `
Every call to the admin API that changes something is recorded before it runs and finished
with its result: ok, or error with the server's error code (refusals included). "pending"
means the server stopped during the call. Passwords, tokens and secrets in the parameters are
recorded as [redacted].

Actions: user.new user.set group.new group.set group.remove group.members policy.set
policy.remove policy.grant config.set category.new|set|remove addin.new|set|remove
room.new|set|remove|clear message.remove compliance.set compliance.run

Examples:
  perch audit get --since 2024-05-01 --actor admin
  perch audit get --action 'room.*' --result error --json
  perch audit get --limit 50 --before 1200`,
    )
    .action(async (opts: AuditOptions) => {
      const api = await signedInClient(opts);
      const page = await api.get<AuditPage>('/admin/audit', {
        actor: opts.actor,
        action: opts.action,
        result: opts.result,
        since: opts.since,
        until: opts.until,
        before: opts.before,
        limit: opts.limit,
      });
      emit(opts.json, page, () =>
        [
          table(page.entries, [
            ['ID', (e) => e.id],
            ['TIME', (e) => isoTime(e.createdAt)],
            ['ACTOR', (e) => e.actorName],
            ['ACTION', (e) => e.action],
            ['RESULT', (e) => (e.errorCode ? `error: ${e.errorCode}` : e.result)],
            ['PARAMETERS', (e) => JSON.stringify(e.params)],
          ]),
          page.next === null ? '' : `(more: add --before ${page.next})`,
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });
}
