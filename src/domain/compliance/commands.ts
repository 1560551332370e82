import { z } from 'zod';
import type { ExportResult, SearchResult } from '../../compliance/ediscovery.js';
import type { Hold, NewHold, RecordQuery } from '../../compliance/types.js';
import type { PurgeResult } from '../../compliance/worker.js';
import { HoldNotFoundError, PrincipalNotFoundError } from '../../errors.js';
import { requireCategory } from '../categories/commands.js';
import { requireAdmin } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';

/** The compliance worker as the commands below use it (ComplianceThread in a server). */
export interface ComplianceBackend {
  purge(actorId: number | null): Promise<PurgeResult>;
  placeHold(hold: NewHold): Promise<Hold>;
  releaseHold(id: number, by: string, at: number, reason: string | null): Promise<Hold | undefined>;
  listHolds(includeReleased: boolean): Promise<Hold[]>;
  search(q: RecordQuery): Promise<SearchResult>;
  exportRecords(
    q: Omit<RecordQuery, 'limit' | 'afterId'>,
    format: 'xml' | 'jsonl',
  ): Promise<ExportResult>;
}

/** A time as ms since 1970 or an ISO-8601 string. */
const time = z
  .union([
    z.number().int().min(0),
    z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'an ISO-8601 time'),
  ])
  .transform((v) => (typeof v === 'number' ? v : Date.parse(v)));

const who = {
  user: z.string().min(1).max(200).optional().describe('Login of the acting user.'),
  userId: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('Id of the acting user (also for users since deleted).'),
};

export const holdInputSchema = z
  .object({
    roomId: z.number().int().positive().optional(),
    category: z
      .union([z.string().min(1).max(256), z.number().int().positive()])
      .optional()
      .describe('Every room of this category (name or id).'),
    ...who,
    from: time.optional().describe('Records that occurred at or after this time.'),
    to: time.optional().describe('Records that occurred at or before this time.'),
    reason: z.string().trim().min(1).max(2000).describe('Why (a case, a matter number).'),
  })
  .strict()
  .refine(
    (h) => [h.roomId, h.category, h.user, h.userId, h.from, h.to].some((v) => v !== undefined),
    'a hold needs a room, a category, a user or a time range',
  )
  .refine((h) => h.from === undefined || h.to === undefined || h.from <= h.to, {
    message: '`from` is after `to`',
    path: ['to'],
  });

const filters = {
  ...who,
  roomId: z.number().int().positive().optional(),
  from: time.optional(),
  to: time.optional(),
  types: z
    .array(z.string().regex(/^[A-Z_]{1,40}$/))
    .max(40)
    .optional()
    .describe('Event types (CHAT, MESSAGE_REMOVED, JOIN, ...); any of them.'),
  text: z
    .string()
    .min(1)
    .max(500)
    .optional()
    .describe(
      'Case-insensitive substring of the text, original text, replacement, query or file name.',
    ),
};

export const searchInputSchema = z
  .object({
    ...filters,
    limit: z.number().int().min(1).max(1000).default(100),
    afterId: z.number().int().min(0).optional().describe('`nextAfterId` of the previous page.'),
  })
  .strict();

export const exportInputSchema = z
  .object({ ...filters, format: z.enum(['xml', 'jsonl']).default('jsonl') })
  .strict();

async function userIdOf(
  d: Domain,
  input: { user?: string; userId?: number },
): Promise<number | null> {
  if (input.userId !== undefined) return input.userId;
  if (input.user === undefined) return null;
  const p = await d.store.getPrincipalByName(input.user);
  if (!p || p.kind !== 'user') throw new PrincipalNotFoundError(input.user);
  return p.id;
}

async function toQuery(
  d: Domain,
  input: z.output<typeof exportInputSchema> | z.output<typeof searchInputSchema>,
): Promise<Omit<RecordQuery, 'limit'>> {
  const userId = await userIdOf(d, input);
  return {
    ...(userId === null ? {} : { userId }),
    ...(input.roomId === undefined ? {} : { roomId: input.roomId }),
    ...(input.from === undefined ? {} : { from: input.from }),
    ...(input.to === undefined ? {} : { to: input.to }),
    ...(input.types === undefined ? {} : { kinds: input.types }),
    ...(input.text === undefined ? {} : { text: input.text }),
  };
}

/** Writes a compliance event about compliance itself (holds, eDiscovery) to the outbox. */
async function audit(
  d: Domain,
  actor: Actor,
  kind: string,
  payload: Record<string, unknown>,
): Promise<void> {
  await d.store.recordActivity({
    kind,
    actorId: actor.userId,
    roomId: null,
    createdAt: d.clock(),
    payload,
  });
}

/** Places a legal hold (administrators); captured as LEGAL_HOLD_PLACED. */
export async function placeHold(
  d: Domain,
  actor: Actor,
  backend: ComplianceBackend,
  input: unknown,
): Promise<Hold> {
  requireAdmin(actor);
  const h = parseInput(holdInputSchema, input, 'legal hold');
  const hold = await backend.placeHold({
    roomId: h.roomId ?? null,
    categoryId: h.category === undefined ? null : (await requireCategory(d, h.category)).id,
    userId: await userIdOf(d, h),
    from: h.from ?? null,
    to: h.to ?? null,
    reason: h.reason,
    placedBy: actor.login,
    placedAt: d.clock(),
  });
  await audit(d, actor, 'LEGAL_HOLD_PLACED', { ...hold });
  return hold;
}

/** Releases an active legal hold (administrators); captured as LEGAL_HOLD_RELEASED. */
export async function releaseHold(
  d: Domain,
  actor: Actor,
  backend: ComplianceBackend,
  id: number,
  input: unknown,
): Promise<Hold> {
  requireAdmin(actor);
  const { reason } = parseInput(
    z.object({ reason: z.string().trim().min(1).max(2000).optional() }).strict(),
    input ?? {},
    'release',
  );
  const hold = await backend.releaseHold(id, actor.login, d.clock(), reason ?? null);
  if (!hold) throw new HoldNotFoundError(id);
  await audit(d, actor, 'LEGAL_HOLD_RELEASED', { ...hold });
  return hold;
}

/** Active legal holds, or every hold ever placed (administrators). */
export async function listHolds(
  actor: Actor,
  backend: ComplianceBackend,
  includeReleased: boolean,
): Promise<Hold[]> {
  requireAdmin(actor);
  return backend.listHolds(includeReleased);
}

/** Runs the retention purge now (administrators); captured as COMPLIANCE_PURGED. */
export async function purgeNow(actor: Actor, backend: ComplianceBackend): Promise<PurgeResult> {
  requireAdmin(actor);
  return backend.purge(actor.userId);
}

/** eDiscovery search of the compliance store (administrators); captured as COMPLIANCE_SEARCHED. */
export async function searchCompliance(
  d: Domain,
  actor: Actor,
  backend: ComplianceBackend,
  input: unknown,
): Promise<SearchResult> {
  requireAdmin(actor);
  const s = parseInput(searchInputSchema, input, 'compliance search');
  const q = await toQuery(d, s);
  const result = await backend.search({
    ...q,
    limit: s.limit,
    ...(s.afterId === undefined ? {} : { afterId: s.afterId }),
  });
  await audit(d, actor, 'COMPLIANCE_SEARCHED', { query: q, returned: result.records.length });
  return result;
}

/** eDiscovery export to a file on the server (administrators); captured as COMPLIANCE_EXPORTED. */
export async function exportCompliance(
  d: Domain,
  actor: Actor,
  backend: ComplianceBackend,
  input: unknown,
): Promise<ExportResult> {
  requireAdmin(actor);
  const e = parseInput(exportInputSchema, input, 'compliance export');
  const q = await toQuery(d, e);
  const result = await backend.exportRecords(q, e.format);
  await audit(d, actor, 'COMPLIANCE_EXPORTED', { query: q, ...result });
  return result;
}
