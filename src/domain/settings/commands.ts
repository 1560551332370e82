import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import type { Store, StoreOps } from '../../store/store.js';

/**
 * Chat settings (Lync's Set-CsPersistentChatConfiguration), kept in the store so that an
 * administrator changes them at run time and every front end sees the same values.
 */
export const chatSettingsSchema = z.object({
  defaultHistory: z
    .number()
    .int()
    .min(1)
    .max(500)
    .default(30)
    .describe('Messages sent on join (Lync DefaultChatHistory), 1–500.'),
  maxFileSizeKb: z
    .number()
    .int()
    .min(1)
    .max(2_097_152)
    .default(20_000)
    .describe('Largest file a user may upload, in KB (Lync MaxFileSizeKB).'),
  participantUpdateLimit: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(75)
    .describe(
      'Roster updates stop when a room has more connected users than this, and resume below 80 % of it.',
    ),
  maxMessageChars: z
    .number()
    .int()
    .min(16)
    .max(100_000)
    .default(8_000)
    .describe('Longest message body (or story body) in characters.'),
  roomManagementUrl: z
    .string()
    .max(2048)
    .refine((v) => v === '' || /^https?:\/\//i.test(v), 'must be an http(s) URL or empty')
    .default('')
    .describe('Custom room management site sent to clients; empty means the built-in one.'),
});

export type ChatSettings = z.infer<typeof chatSettingsSchema>;
export const settingsPatchSchema = chatSettingsSchema.partial().strict();
export type SettingsPatch = z.infer<typeof settingsPatchSchema>;

export class SettingsService {
  private cache: ChatSettings | undefined;

  constructor(private readonly store: Store) {}

  async get(): Promise<ChatSettings> {
    if (this.cache) return this.cache;
    const raw = await this.store.getSettings();
    const values: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(raw)) {
      if (key in chatSettingsSchema.shape) values[key] = JSON.parse(value);
    }
    const parsed = chatSettingsSchema.safeParse(values);
    // A stored value that no longer validates falls back to the defaults instead of failing.
    this.cache = parsed.success ? parsed.data : chatSettingsSchema.parse({});
    return this.cache;
  }

  /**
   * Validates and stores a partial change; returns the full settings after it. `alongside` runs
   * in the same transaction with the values given (to record the change for compliance).
   */
  async set(
    patch: unknown,
    alongside?: (tx: StoreOps, changed: SettingsPatch) => Promise<void>,
  ): Promise<ChatSettings> {
    const parsed = settingsPatchSchema.safeParse(patch);
    if (!parsed.success) {
      throw new ValidationError('invalid settings', {
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      });
    }
    await this.store.transaction(async (tx) => {
      for (const [key, value] of Object.entries(parsed.data)) {
        if (value !== undefined) await tx.setSetting(key, JSON.stringify(value));
      }
      await alongside?.(tx, parsed.data);
    });
    this.cache = undefined;
    return this.get();
  }

  invalidate(): void {
    this.cache = undefined;
  }
}
