import { InvalidArgumentError, type Command } from 'commander';
import { signedInClient, type ServerOptions } from './client.js';
import { intIn, nameOf, oneOf, parseBool, serverCommand } from './common.js';
import { ApiError, UsageError } from './errors.js';
import { emit, fields, table } from './output.js';

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
  enabled: boolean;
  cursor: number | null;
  behind: number | null;
  runs: number;
  recordsExported: number;
  lastSuccessAt: string | null;
  lastError: string | null;
}

interface ComplianceStatus {
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
    ]),
    s.adapters.length > 0
      ? table(s.adapters, [
          ['ADAPTER', (a) => a.name],
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
}
