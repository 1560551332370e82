import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { seg, signedInClient, type ServerOptions } from './client.js';
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
import { ApiError, UsageError } from './errors.js';
import { emit, fields, isoTime, table } from './output.js';
import { resolveRoom } from './room.js';

interface Adapter {
  name: string;
  type: 'xml' | 'jsonl' | 'module';
  module?: string;
  enabled: boolean;
  outputDirectory?: string;
  oneChatRoomPerOutputFile: boolean;
  addChatRoomDetails: boolean;
  addUserDetails: boolean;
  createFileAttachmentsManifest: boolean;
  options: Record<string, unknown>;
}

interface ComplianceConfig {
  runInterval: number;
  uriDomain: string;
  maxRecordsPerRun: number;
  retentionDays: number | null;
  adapters: Adapter[];
}

interface AdapterStatus {
  name: string;
  type?: string;
  enabled: boolean;
  lastRunAt?: string | null;
  cursor: number | null;
  behind: number | null;
  runs: number;
  recordsExported: number;
  lastSuccessAt: string | null;
  lastError: string | null;
}

interface ComplianceStatus {
  worker?: { state: string; restarts: number; lastExit: string | null };
  lastPurge?: { finishedAt: string; purged: number } | null;
  backlog: number;
  store: { available: boolean; error: string | null };
  captured: number | null;
  lastCaptureAt: string | null;
  lastError: string | null;
  runInterval: number;
  adapters: AdapterStatus[];
}

const MIN_INTERVAL = 60;
const MAX_INTERVAL = 30 * 86_400;

/**
 * Lync's RunInterval as seconds: `d.hh:mm:ss` or `hh:mm:ss`, a number of seconds, or a number
 * with a unit (`90s`, `15m`, `2h`, `7d`); 1 minute to 30 days, as Lync allows.
 */
export function parseRunInterval(value: string): number {
  const v = value.trim();
  let seconds: number | undefined;
  const clock = /^(?:(\d{1,2})\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(v);
  const unit = /^(\d{1,9})\s*([smhd]?)$/i.exec(v);
  if (clock) {
    const [d, h, m, s] = [
      Number(clock[1] ?? 0),
      Number(clock[2]),
      Number(clock[3]),
      Number(clock[4]),
    ];
    if (h < 24 && m < 60 && s < 60) seconds = d * 86_400 + h * 3600 + m * 60 + s;
  } else if (unit) {
    const factor = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[unit[2]!.toLowerCase()]!;
    seconds = Number(unit[1]) * factor;
  }
  if (seconds === undefined) {
    throw new InvalidArgumentError(
      'must be d.hh:mm:ss, hh:mm:ss, seconds, or a number with s/m/h/d',
    );
  }
  if (seconds < MIN_INTERVAL || seconds > MAX_INTERVAL) {
    throw new InvalidArgumentError('must be from 1 minute to 30 days (00:01:00 to 30.00:00:00)');
  }
  return seconds;
}

/** Seconds as Lync writes a RunInterval: `d.hh:mm:ss`. */
function lyncInterval(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const rest = seconds % 86_400;
  const hh = String(Math.floor(rest / 3600)).padStart(2, '0');
  const mm = String(Math.floor((rest % 3600) / 60)).padStart(2, '0');
  const ss = String(rest % 60).padStart(2, '0');
  return `${d > 0 ? `${d}.` : ''}${hh}:${mm}:${ss}`;
}

/** Days, or `none` (commander keeps the raw text when a parser returns null, hence the word). */
function retention(value: string): number | 'none' {
  if (value.trim().toLowerCase() === 'none') return 'none';
  return intIn(1, 36_500)(value);
}

function showConfig(c: ComplianceConfig): string {
  return [
    fields([
      ['run interval', `${lyncInterval(c.runInterval)} (${c.runInterval} s)`],
      ['uri domain', c.uriDomain],
      ['max records per run', c.maxRecordsPerRun],
      ['retention days', c.retentionDays ?? 'forever'],
    ]),
    table(
      c.adapters,
      [
        ['ADAPTER', (a) => a.name],
        ['TYPE', (a) => (a.type === 'module' ? `module:${a.module}` : a.type)],
        ['ENABLED', (a) => a.enabled],
        ['OUTPUT DIR', (a) => a.outputDirectory ?? a.name],
        ['ROOM PER FILE', (a) => a.oneChatRoomPerOutputFile],
        ['ROOM DETAILS', (a) => a.addChatRoomDetails],
        ['USER DETAILS', (a) => a.addUserDetails],
        ['FILE MANIFEST', (a) => a.createFileAttachmentsManifest],
      ],
      '(no adapters: records are captured, not exported)',
    ),
  ].join('\n\n');
}

function showStatus(s: ComplianceStatus): string {
  return [
    fields([
      ['compliance store', s.store.available ? 'available' : `unavailable: ${s.store.error ?? ''}`],
      ['backlog', s.backlog],
      ['captured', s.captured],
      ['last capture', s.lastCaptureAt],
      ['last error', s.lastError],
      ...(s.worker
        ? ([
            [
              'worker',
              `${s.worker.state}${s.worker.restarts > 0 ? ` (${s.worker.restarts} restarts)` : ''}`,
            ],
          ] as [string, unknown][])
        : []),
      ...(s.lastPurge
        ? ([['last purge', `${s.lastPurge.finishedAt} (${s.lastPurge.purged} purged)`]] as [
            string,
            unknown,
          ][])
        : []),
    ]),
    s.adapters.length > 0
      ? table(s.adapters, [
          ['ADAPTER', (a) => a.name],
          ['ENABLED', (a) => a.enabled],
          ['LAST RUN', (a) => a.lastRunAt],
          ['CURSOR', (a) => a.cursor],
          ['BEHIND', (a) => a.behind],
          ['RUNS', (a) => a.runs],
          ['EXPORTED', (a) => a.recordsExported],
          ['LAST SUCCESS', (a) => a.lastSuccessAt],
          ['LAST ERROR', (a) => a.lastError],
        ])
      : '',
  ]
    .filter(Boolean)
    .join('\n\n');
}

interface SetOptions extends ServerOptions {
  runInterval?: number;
  uriDomain?: string;
  maxRecordsPerRun?: number;
  retentionDays?: number | 'none';
  adapter?: string;
  removeAdapter?: string;
  type?: Adapter['type'];
  module?: string;
  enabled?: boolean;
  outputDir?: string;
  oneRoomPerFile?: boolean;
  roomDetails?: boolean;
  userDetails?: boolean;
  fileManifest?: boolean;
}

/** Adapter flags and the adapter keys they set. */
const adapterFlags = [
  ['type', 'type'],
  ['module', 'module'],
  ['enabled', 'enabled'],
  ['outputDir', 'outputDirectory'],
  ['oneRoomPerFile', 'oneChatRoomPerOutputFile'],
  ['roomDetails', 'addChatRoomDetails'],
  ['userDetails', 'addUserDetails'],
  ['fileManifest', 'createFileAttachmentsManifest'],
] as const satisfies readonly (readonly [keyof SetOptions, keyof Adapter])[];

/** `perch compliance get|set` (Get/Set-CsPersistentChatComplianceConfiguration). */
export function registerComplianceCommands(program: Command): void {
  const compliance = program
    .command('compliance')
    .description('compliance capture: run interval, adapters, status (chat administrators)');

  serverCommand(compliance, 'get', 'show the compliance configuration and status')
    .addHelpText(
      'after',
      `
Prints the configuration (run interval, adapters and their options) and the status: the
compliance store's health, the outbox backlog and each adapter's cursor, lag and last error.
--json prints { config, status }; status is null when this server runs no compliance worker.

Example:
  perch compliance get --json`,
    )
    .action(async (opts: ServerOptions) => {
      const api = await signedInClient(opts);
      const config = await api.get<ComplianceConfig>('/compliance/config');
      let status: ComplianceStatus | null = null;
      try {
        status = await api.get<ComplianceStatus>('/compliance/status');
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 'compliance_unavailable')) throw err;
      }
      emit(opts.json, { config, status }, () =>
        [showConfig(config), status ? showStatus(status) : 'status: no compliance worker'].join(
          '\n\n',
        ),
      );
    });

  serverCommand(compliance, 'set', 'change the compliance configuration or one adapter')
    .option(
      '--run-interval <interval>',
      'time between adapter runs (RunInterval): d.hh:mm:ss, seconds, or 15m/2h/1d; 1 minute - 30 days',
      parseRunInterval,
    )
    .option('--uri-domain <domain>', 'domain in the user and channel URIs of the XML output')
    .option('--max-records-per-run <n>', 'records per adapter run (1-1000000)', intIn(1, 1_000_000))
    .option(
      '--retention-days <n|none>',
      'days records are kept (1-36500), or none: forever',
      retention,
    )
    .option(
      '--adapter <name>',
      'the adapter the adapter options below change (created if new)',
      nameOf(40),
    )
    .option('--remove-adapter <name>', 'remove an adapter', nameOf(40))
    .option(
      '--type <type>',
      'adapter type: xml (Lync format), jsonl or module',
      oneOf('xml', 'jsonl', 'module'),
    )
    .option('--module <name>', 'for --type module: file name in the adapter folder', nameOf(40))
    .option('--enabled <bool>', 'adapter on or off', parseBool)
    .option(
      '--output-dir <dir>',
      'adapter folder, relative to the compliance output folder (AdapterOutputDirectory)',
    )
    .option(
      '--one-room-per-file <bool>',
      'one output file per room (OneChatRoomPerOutputFile)',
      parseBool,
    )
    .option('--room-details <bool>', 'add room details (AddChatRoomDetails)', parseBool)
    .option('--user-details <bool>', 'add user details (AddUserDetails)', parseBool)
    .option(
      '--file-manifest <bool>',
      'write a manifest of file attachments (CreateFileAttachmentsManifest)',
      parseBool,
    )
    .addHelpText(
      'after',
      `
Global options change the configuration; --adapter NAME with adapter options changes that
adapter, creating it (type xml unless --type) when there is none of that name. The server
checks everything again (an output folder must stay inside the compliance output folder).

Examples:
  perch compliance set --run-interval 00:15:00
  perch compliance set --adapter lync --type xml --user-details true --room-details true
  perch compliance set --adapter lync --one-room-per-file true --file-manifest true --output-dir exports/lync
  perch compliance set --adapter lync --enabled false
  perch compliance set --remove-adapter lync`,
    )
    .action(async (opts: SetOptions) => {
      const adapterChange = Object.fromEntries(
        adapterFlags
          .filter(([flag]) => opts[flag] !== undefined)
          .map(([flag, key]) => [key, opts[flag]]),
      );
      if (Object.keys(adapterChange).length > 0 && opts.adapter === undefined) {
        throw new UsageError('adapter options need --adapter <name>');
      }
      if (opts.adapter !== undefined && opts.adapter === opts.removeAdapter) {
        throw new UsageError('--adapter and --remove-adapter name the same adapter');
      }
      const body: Record<string, unknown> = {};
      if (opts.runInterval !== undefined) body.runInterval = opts.runInterval;
      if (opts.uriDomain !== undefined) body.uriDomain = opts.uriDomain;
      if (opts.maxRecordsPerRun !== undefined) body.maxRecordsPerRun = opts.maxRecordsPerRun;
      if (opts.retentionDays !== undefined) {
        body.retentionDays = opts.retentionDays === 'none' ? null : opts.retentionDays;
      }
      const api = await signedInClient(opts);
      if (opts.adapter !== undefined || opts.removeAdapter !== undefined) {
        const current = await api.get<ComplianceConfig>('/compliance/config');
        let adapters = current.adapters;
        if (opts.removeAdapter !== undefined) {
          if (!adapters.some((a) => a.name === opts.removeAdapter)) {
            throw new UsageError(`there is no adapter named ${opts.removeAdapter}`);
          }
          adapters = adapters.filter((a) => a.name !== opts.removeAdapter);
        }
        if (opts.adapter !== undefined) {
          const existing = adapters.find((a) => a.name === opts.adapter);
          const changed = {
            ...(existing ?? { name: opts.adapter, type: 'xml' }),
            ...adapterChange,
          };
          adapters = existing
            ? adapters.map((a) => (a === existing ? (changed as Adapter) : a))
            : [...adapters, changed as Adapter];
        }
        body.adapters = adapters;
      }
      if (Object.keys(body).length === 0) throw new UsageError('nothing to change');
      const config = await api.request<ComplianceConfig>('PATCH', '/compliance/config', { body });
      emit(opts.json, config, () => `Changed the compliance configuration.\n${showConfig(config)}`);
    });

  registerOperations(compliance);
}

interface Hold {
  id: number;
  roomId: number | null;
  categoryId: number | null;
  userId: number | null;
  from: number | null;
  to: number | null;
  reason: string;
  placedBy: string;
  placedAt: number;
  releasedBy: string | null;
  releasedAt: number | null;
  releaseReason: string | null;
}

interface SearchRecord {
  recordId?: number;
  type?: string;
  at?: string;
  content?: string | null;
  sender?: { userName?: string } | null;
  room?: { id?: number; name?: string } | null;
}

interface FilterOptions extends ServerOptions {
  user?: string;
  room?: string;
  from?: string | number;
  to?: string | number;
  text?: string;
  type?: string[];
}

/** A date option as ms; a plain date that ends a range means the end of that day (UTC). */
function ms(value: string | number, endOfDay: boolean): number {
  if (typeof value === 'number') return value;
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  return endOfDay && /^\d{4}-\d{2}-\d{2}$/.test(value) ? t + 86_399_999 : t;
}

/** The search/hold criteria as the API takes them (the room resolved to its id). */
async function criteria(
  api: Awaited<ReturnType<typeof signedInClient>>,
  opts: FilterOptions,
): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  if (opts.user !== undefined) body.user = opts.user;
  if (opts.room !== undefined) body.roomId = (await resolveRoom(api, opts.room)).id;
  if (opts.from !== undefined) body.from = ms(opts.from, false);
  if (opts.to !== undefined) body.to = ms(opts.to, true);
  if (
    body.from !== undefined &&
    body.to !== undefined &&
    (body.from as number) > (body.to as number)
  ) {
    throw new UsageError('--from is after --to');
  }
  return body;
}

function filterOptions(cmd: Command): Command {
  return cmd
    .option('--user <login>', 'the acting user', nameOf(200))
    .option('--room <id|name>', 'the room', nameOf(256))
    .option('--from <date>', 'at or after this date or date-time', parseDate)
    .option('--to <date>', 'up to this date (the whole day) or date-time', parseDate);
}

function holdTable(holds: Hold[]): string {
  return table(
    holds,
    [
      ['ID', (h) => h.id],
      ['ROOM', (h) => h.roomId],
      ['CATEGORY', (h) => h.categoryId],
      ['USER', (h) => h.userId],
      ['FROM', (h) => isoTime(h.from)],
      ['TO', (h) => isoTime(h.to)],
      ['PLACED BY', (h) => h.placedBy],
      ['PLACED AT', (h) => isoTime(h.placedAt)],
      [
        'RELEASED',
        (h) => (h.releasedAt === null ? '' : `${isoTime(h.releasedAt)} by ${h.releasedBy}`),
      ],
      ['REASON', (h) => h.reason],
    ],
    '(no legal holds)',
  );
}

/** `perch compliance status|search|hold|purge`. */
function registerOperations(compliance: Command): void {
  serverCommand(compliance, 'status', "show the backlog, the worker and each adapter's progress")
    .addHelpText(
      'after',
      `
Prints the compliance store's health, the outbox backlog, records captured, the worker thread's
state, the last purge, and per adapter whether it is enabled, its last run, cursor, how many
records it is behind, runs, records exported, last success and last error.
Exit code 1 with compliance_unavailable when this server runs no compliance worker.

Example:
  perch compliance status --json`,
    )
    .action(async (opts: ServerOptions) => {
      const api = await signedInClient(opts);
      const status = await api.get<ComplianceStatus>('/compliance/status');
      emit(opts.json, status, () => showStatus(status));
    });

  interface SearchOptions extends FilterOptions {
    limit?: number;
    export?: 'xml' | 'jsonl';
    out?: string;
  }
  filterOptions(
    serverCommand(
      compliance,
      'search',
      'eDiscovery: search the compliance store, or export the matches',
    ),
  )
    .option('--text <text>', 'substring of the text, original, file name or query', nameOf(1000))
    .option(
      '--type <kind...>',
      'event types, any of them (CHAT, MESSAGE_REMOVED, ...); repeatable or comma-separated',
      collect,
    )
    .option('--limit <n>', 'records to show (1-1000, default 100)', intIn(1, 1000))
    .option(
      '--export <format>',
      'write every match to a file on the server instead: xml (Lync format) or jsonl',
      oneOf('xml', 'jsonl'),
    )
    .option('--out <dir>', 'with --export: download the file into this local folder')
    .addHelpText(
      'after',
      `
Searches everything captured (posts in history-off categories, originals of removed and replaced
messages, joins, file transfers, administration), oldest first. --json prints
{ records, nextAfterId } with records in the JSON-lines format. With --export the server writes
every match (no --limit) to <compliance output folder>/ediscovery/ and the command prints the
file's path and how many records it holds (--json: { format, file, path, records, ... }).
Searches and exports are themselves captured.

Examples:
  perch compliance search --user alice --from 2024-05-01 --to 2024-05-31 --type CHAT
  perch compliance search --room general --text invoice --limit 20
  perch compliance search --user alice --export xml`,
    )
    .action(async (opts: SearchOptions) => {
      const types = (opts.type ?? []).map((t) => t.toUpperCase());
      const bad = types.find((t) => !/^[A-Z_]{1,40}$/.test(t));
      if (bad !== undefined) throw new UsageError(`--type ${bad}: not an event type`);
      if (opts.export !== undefined && opts.limit !== undefined) {
        throw new UsageError('--limit does not apply to --export (every match is written)');
      }
      const api = await signedInClient(opts);
      const body = await criteria(api, opts);
      if (types.length > 0) body.types = types;
      if (opts.text !== undefined) body.text = opts.text;
      if (opts.out !== undefined && opts.export === undefined) {
        throw new UsageError('--out needs --export xml|jsonl');
      }
      if (opts.export !== undefined) {
        const r = await api.request<{ file: string; path: string; records: number }>(
          'POST',
          '/compliance/export',
          { body: { ...body, format: opts.export } },
        );
        if (opts.out === undefined) {
          emit(opts.json, r, () => `Exported ${r.records} records to ${r.path}`);
          return;
        }
        const local = path.resolve(opts.out, r.file);
        await api.download(`/compliance/exports/${seg(r.file)}`, local);
        emit(
          opts.json,
          { ...r, downloaded: local },
          () => `Downloaded ${r.records} records to ${local}`,
        );
        return;
      }
      if (opts.limit !== undefined) body.limit = opts.limit;
      const r = await api.request<{ records: SearchRecord[]; nextAfterId: number | null }>(
        'POST',
        '/compliance/search',
        { body },
      );
      emit(opts.json, r, () =>
        [
          table(
            r.records,
            [
              ['RECORD', (x) => x.recordId],
              ['AT', (x) => x.at],
              ['TYPE', (x) => x.type],
              ['USER', (x) => x.sender?.userName],
              ['ROOM', (x) => x.room?.name ?? x.room?.id],
              ['CONTENT', (x) => x.content],
            ],
            '(no records)',
          ),
          r.nextAfterId === null ? '' : '(more records match: narrow the search or raise --limit)',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  const hold = compliance
    .command('hold')
    .description('legal holds: records they cover are never purged');

  serverCommand(hold, 'list', 'list the active legal holds')
    .option('--released', 'include released holds')
    .action(async (opts: ServerOptions & { released?: boolean }) => {
      const api = await signedInClient(opts);
      const holds = await api.get<Hold[]>('/compliance/holds', {
        released: opts.released ? 'true' : 'false',
      });
      emit(opts.json, holds, () => holdTable(holds));
    });

  filterOptions(
    serverCommand(
      hold,
      'place',
      'place a legal hold on a room, a category, a user and/or a time range',
    ),
  )
    .option('--category <id|name>', 'every room of the category', nameOf(256))
    .requiredOption('--reason <text>', 'why (a case, a matter number)', nameOf(2000))
    .addHelpText(
      'after',
      `
The hold covers what matches every criterion given (at least one of --room, --category, --user,
--from, --to) and keeps it from both retention purges until it is released: compliance records
(perch compliance purge) and chat messages and files (perch category purge, the hourly job). A
hold on a room or a category alone stops all purging there.

Examples:
  perch compliance hold place --user alice --from 2024-01-01 --reason "matter 42"
  perch compliance hold place --category legal --reason "litigation hold"`,
    )
    .action(async (opts: FilterOptions & { reason: string; category?: string }) => {
      if ([opts.room, opts.category, opts.user, opts.from, opts.to].every((v) => v === undefined)) {
        throw new UsageError('a hold needs --room, --category, --user, --from or --to');
      }
      const api = await signedInClient(opts);
      const body = {
        ...(await criteria(api, opts)),
        ...(opts.category === undefined ? {} : { category: opts.category }),
        reason: opts.reason,
      };
      const h = await api.request<Hold>('POST', '/compliance/holds', { body });
      emit(opts.json, h, () => `Placed legal hold ${h.id}.\n${holdTable([h])}`);
    });

  serverCommand(hold, 'release <id>', 'release a legal hold (it stays listed)')
    .option('--reason <text>', 'why it is released', nameOf(2000))
    .action(async (id: string, opts: ServerOptions & { reason?: string }) => {
      const n = intIn(1, Number.MAX_SAFE_INTEGER)(id);
      const api = await signedInClient(opts);
      const h = await api.request<Hold>('POST', `/compliance/holds/${n}/release`, {
        body: opts.reason === undefined ? {} : { reason: opts.reason },
      });
      emit(opts.json, h, () => `Released legal hold ${h.id}.`);
    });

  destructive(
    serverCommand(compliance, 'purge', 'delete compliance records past the retention period now'),
  )
    .addHelpText(
      'after',
      `
Deletes records older than the retention days that every enabled adapter has exported and no
active legal hold covers (the worker also does this hourly). Without a terminal --force is
required; --what-if changes nothing.

Example:
  perch compliance purge --force`,
    )
    .action(async (opts: DestructiveOptions) => {
      if (!(await confirm(opts, 'purge compliance records past the retention period', {}))) return;
      const api = await signedInClient(opts);
      const r = await api.request<{
        purged: number;
        keptUnderHold: number;
        keptUnexported: number;
        cutoff: string | null;
      }>('POST', '/compliance/purge');
      emit(opts.json, r, () =>
        fields([
          ['purged', r.purged],
          ['kept under hold', r.keptUnderHold],
          ['kept unexported', r.keptUnexported],
          ['cutoff', r.cutoff ?? 'none (records are kept forever)'],
        ]),
      );
    });
}
