import { InvalidArgumentError, type Command } from 'commander';
import type { z } from 'zod';
import { chatSettingsSchema } from '../domain/settings/commands.js';
import { signedInClient, type ServerOptions } from './client.js';
import { serverCommand } from './common.js';
import { UsageError } from './errors.js';
import { emit, fields } from './output.js';

type Settings = z.infer<typeof chatSettingsSchema>;

/** Flag, settings key and what it means (Lync's CsPersistentChatConfiguration parameters). */
const settings = [
  ['history-count', 'defaultHistory', 'messages sent on join (DefaultChatHistory), 1-500'],
  ['max-file-size-kb', 'maxFileSizeKb', 'largest upload in KB (MaxFileSizeKB), 1-2097152'],
  [
    'participant-update-limit',
    'participantUpdateLimit',
    'roster updates stop above this many users in a room (ParticipantUpdateLimit), 1-100000',
  ],
  ['max-message-chars', 'maxMessageChars', 'longest message in characters, 16-100000'],
  [
    'room-management-url',
    'roomManagementUrl',
    'custom room management site (RoomManagementUrl), http(s) URL or "" for the built-in one',
  ],
] as const satisfies readonly (readonly [string, keyof Settings, string])[];

/** Checks a value with the server's own settings schema, so the limits are the same. */
function checked(key: keyof Settings): (value: string) => unknown {
  const schema = chatSettingsSchema.shape[key];
  return (raw) => {
    const text = raw.trim();
    if (key === 'roomManagementUrl') {
      const r = schema.safeParse(text);
      if (!r.success) throw new InvalidArgumentError('must be an http:// or https:// URL, or ""');
      return r.data;
    }
    const r = schema.safeParse(/^\d{1,16}$/.test(text) ? Number(text) : NaN);
    if (!r.success) {
      const inner = (schema as typeof chatSettingsSchema.shape.defaultHistory).unwrap();
      throw new InvalidArgumentError(
        `must be a whole number from ${inner.minValue} to ${inner.maxValue}`,
      );
    }
    return r.data;
  };
}

function show(s: Settings): string {
  return fields(settings.map(([flag, key]) => [flag, s[key] === '' ? '(built-in)' : s[key]]));
}

/** `perch config get|set` (Get/Set-CsPersistentChatConfiguration). */
export function registerConfigCommands(program: Command): void {
  const config = program
    .command('config')
    .description(
      'chat settings: history count, file size, participant-update limit, message size, room management URL',
    );

  serverCommand(config, 'get', 'show the chat settings')
    .addHelpText('after', '\nExample:\n  perch config get --json')
    .action(async (opts: ServerOptions) => {
      const api = await signedInClient(opts);
      const s = await api.get<Settings>('/settings');
      emit(opts.json, s, () => show(s));
    });

  const set = serverCommand(config, 'set', 'change chat settings (chat administrators)');
  for (const [flag, key, help] of settings) {
    set.option(`--${flag} <${key === 'roomManagementUrl' ? 'url' : 'n'}>`, help, checked(key));
  }
  set
    .addHelpText(
      'after',
      '\nExamples:\n  perch config set --history-count 50 --max-file-size-kb 10000\n  perch config set --room-management-url ""',
    )
    .action(async (opts: ServerOptions & Partial<Record<string, unknown>>) => {
      const body: Record<string, unknown> = {};
      for (const [flag, key] of settings) {
        const optKey = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        if (opts[optKey] !== undefined) body[key] = opts[optKey];
      }
      if (Object.keys(body).length === 0) throw new UsageError('nothing to change');
      const api = await signedInClient(opts);
      const s = await api.request<Settings>('PATCH', '/settings', { body });
      emit(opts.json, s, () => `Changed the chat settings.\n${show(s)}`);
    });
}
