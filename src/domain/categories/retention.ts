import { z } from 'zod';
import type { HoldScope } from '../../compliance/types.js';
import type { Category, RetentionHold } from '../../store/store.js';
import { requireAdmin } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';
import { requireCategory } from './commands.js';

/** Messages (and files) deleted per transaction: short, so that posts interleave with a purge. */
export const RETENTION_BATCH = 1000;
const DAY_MS = 86_400_000;

/**
 * Where the retention purge reads the active legal holds: the compliance store, through the
 * compliance worker (holds are one concept, kept with the records they protect). When it cannot
 * answer, the purge does not run: a purge never goes ahead without knowing the holds.
 */
export type HoldSource = () => Promise<HoldScope[]>;

export interface RetentionRoomResult {
  roomId: number;
  messages: number;
  files: number;
}

export interface RetentionCategoryResult {
  categoryId: number;
  category: string;
  retentionDays: number;
  /** Messages and files created before this time were eligible (ISO-8601). */
  cutoff: string;
  /** True when an active hold on the whole category stopped its purge. */
  held: boolean;
  messages: number;
  files: number;
  rooms: RetentionRoomResult[];
}

/** What a retention purge of the chat store did. */
export interface RetentionResult {
  startedAt: string;
  finishedAt: string;
  messages: number;
  files: number;
  categories: RetentionCategoryResult[];
}

export interface RetentionOptions {
  /** The administrator who asked (null: the scheduled job). */
  actorId: number | null;
  /** Only this category. */
  categoryId?: number;
  batchSize?: number;
  /** Stops the purge between batches (server shutdown). */
  signal?: AbortSignal;
  /** Called after each batch with the running totals (the job logs progress with it). */
  onProgress?: (p: { category: string; messages: number; files: number }) => void;
}

/** The holds that can cover messages of `c`, as the store applies them. */
function holdsFor(holds: HoldScope[], c: Category): RetentionHold[] {
  return holds
    .filter((h) => h.categoryId === null || h.categoryId === c.id)
    .map((h) => ({ roomId: h.roomId, userId: h.userId, from: h.from, to: h.to }));
}

const wholly = (h: RetentionHold) =>
  h.roomId === null && h.userId === null && h.from === null && h.to === null;

/**
 * Purges, from the chat store, messages and files older than their category's retention period,
 * except what an active legal hold covers (a hold on the category or one of its rooms stops all
 * purging there; one on a user or a time range keeps those). Deletes in batches of `batchSize`,
 * each in one transaction with a MESSAGES_PURGED compliance record per room (category, room,
 * counts, cutoff), reading the holds again before every batch; files are removed from disk after
 * their batch commits. Sequence numbers are never reused: a room's history simply starts later.
 */
export async function purgeExpiredMessages(
  d: Domain,
  holdSource: HoldSource,
  o: RetentionOptions,
): Promise<RetentionResult> {
  const startedAt = d.clock();
  const batchSize = o.batchSize ?? RETENTION_BATCH;
  const all = await d.store.listCategories();
  const categories = all.filter(
    (c) => c.retentionDays !== null && (o.categoryId === undefined || c.id === o.categoryId),
  );
  const result: RetentionResult = {
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: '',
    messages: 0,
    files: 0,
    categories: [],
  };
  for (const c of categories) {
    const days = c.retentionDays!;
    const cutoff = startedAt - days * DAY_MS;
    const rooms = new Map<number, RetentionRoomResult>();
    const r: RetentionCategoryResult = {
      categoryId: c.id,
      category: c.name,
      retentionDays: days,
      cutoff: new Date(cutoff).toISOString(),
      held: false,
      messages: 0,
      files: 0,
      rooms: [],
    };
    result.categories.push(r);
    for (;;) {
      if (o.signal?.aborted) break;
      // Read before every batch: a hold placed during a purge stops it at the next batch.
      const holds = holdsFor(await holdSource(), c);
      if (holds.some(wholly)) {
        r.held = true;
        break;
      }
      const { batch, keys } = await d.store.transaction(async (tx) => {
        const purged = await tx.purgeCategory({
          categoryId: c.id,
          cutoff,
          holds,
          limit: batchSize,
        });
        for (const room of purged.rooms) {
          await tx.recordActivity({
            kind: 'MESSAGES_PURGED',
            actorId: o.actorId,
            roomId: room.roomId,
            createdAt: d.clock(),
            payload: {
              categoryId: c.id,
              category: c.name,
              roomId: room.roomId,
              messages: room.messages,
              files: room.files,
              retentionDays: days,
              cutoff,
            },
          });
        }
        return { batch: purged.rooms, keys: purged.fileKeys };
      });
      for (const key of keys) await d.files.remove(key);
      let messages = 0;
      let files = 0;
      for (const room of batch) {
        const sum = rooms.get(room.roomId) ?? { roomId: room.roomId, messages: 0, files: 0 };
        sum.messages += room.messages;
        sum.files += room.files;
        rooms.set(room.roomId, sum);
        messages += room.messages;
        files += room.files;
      }
      r.messages += messages;
      r.files += files;
      if (messages > 0 || files > 0) {
        o.onProgress?.({ category: c.name, messages: r.messages, files: r.files });
      }
      if (messages < batchSize && files < batchSize) break;
    }
    r.rooms = [...rooms.values()].sort((a, b) => a.roomId - b.roomId);
    result.messages += r.messages;
    result.files += r.files;
  }
  result.finishedAt = new Date(d.clock()).toISOString();
  return result;
}

const purgeInputSchema = z
  .object({
    category: z
      .union([z.string().min(1).max(256), z.number().int().positive()])
      .optional()
      .describe('Only this category (name or id); default every category with a retention.'),
  })
  .strict();

/** Runs the chat-store retention purge now (administrators). */
export async function purgeRetentionNow(
  d: Domain,
  actor: Actor,
  holdSource: HoldSource,
  input: unknown,
): Promise<RetentionResult> {
  requireAdmin(actor);
  const v = parseInput(purgeInputSchema, input ?? {}, 'retention purge');
  const categoryId =
    v.category === undefined ? undefined : (await requireCategory(d, v.category)).id;
  return purgeExpiredMessages(d, holdSource, {
    actorId: actor.userId,
    ...(categoryId === undefined ? {} : { categoryId }),
  });
}

export { purgeInputSchema as retentionPurgeInputSchema };
