import { z } from 'zod';
import { PerchError } from '../../errors.js';
import type { AuditEntry } from '../../store/store.js';
import { requireAdmin } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';

/** Keys whose values never reach the audit trail (passwords, tokens, secrets, at any depth). */
const secretKey = /pass(word|phrase)?|secret|token|credential|api[-_]?key/i;

/** Parameters larger than this (as JSON) are replaced by their size, to keep rows small. */
const maxParamsChars = 16_384;

/** A copy of `value` with every secret-looking key's value replaced by `[redacted]`. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      secretKey.test(k) ? '[redacted]' : redactSecrets(v),
    ]),
  );
}

/** What an admin call is, as the transport saw it: the action's stable name and its inputs. */
export interface AdminCall {
  /** Stable action name, e.g. `user.set`, `room.remove`. */
  action: string;
  method: string;
  /** The request path (ids and names filled in). */
  path: string;
  /** Path parameters, query and body as received; secrets are removed here. */
  params: Record<string, unknown>;
}

function auditParams(params: Record<string, unknown>): Record<string, unknown> {
  const kept = Object.fromEntries(
    Object.entries(redactSecrets(params) as Record<string, unknown>).filter(
      ([, v]) =>
        v !== undefined &&
        !(v !== null && typeof v === 'object' && Object.keys(v as object).length === 0),
    ),
  );
  const chars = JSON.stringify(kept).length;
  return chars > maxParamsChars ? { truncated: true, chars } : kept;
}

/**
 * Runs one admin call under audit: the entry is written (`pending`) before `run` starts and
 * finished with `ok` or the error's stable code after it, so a change that committed always has
 * its entry, and a call cut short by a crash stays `pending` (outcome unknown) instead of
 * vanishing. Every audited transport call passes through here (see http/registry.ts).
 */
export async function audited<T>(
  d: Domain,
  actor: Pick<Actor, 'userId' | 'login'>,
  call: AdminCall,
  run: () => Promise<T>,
): Promise<T> {
  const id = await d.store.startAudit({
    actorId: actor.userId,
    actorName: actor.login,
    action: call.action,
    method: call.method,
    path: call.path,
    params: auditParams(call.params),
    createdAt: d.clock(),
  });
  // The change has happened (or failed) by the time the entry is finished: a failure to finish
  // it leaves the entry `pending` and is logged, and never turns the caller's answer into an error.
  const finish = (result: 'ok' | 'error', code: string | null) =>
    d.store.finishAudit(id, result, code, d.clock()).catch((e: unknown) => {
      d.log.error({ err: e, auditId: id }, 'could not finish an audit entry');
    });
  let result: T;
  try {
    result = await run();
  } catch (err) {
    await finish('error', err instanceof PerchError ? err.code : 'internal');
    throw err;
  }
  await finish('ok', null);
  return result;
}

const dateInput = z.union([
  z.number().int().min(0),
  z
    .string()
    .min(1)
    .max(40)
    .refine((s) => !Number.isNaN(Date.parse(s)), 'must be a date or date-time'),
]);

/** A date-only `until` means the end of that day (UTC), as elsewhere in the admin API. */
function toMs(v: string | number, endOfDay: boolean): number {
  if (typeof v === 'number') return v;
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  return endOfDay && /^\d{4}-\d{2}-\d{2}$/.test(v) ? ms + 86_399_999 : ms;
}

export const auditQuerySchema = z
  .object({
    actor: z.string().min(1).max(256).optional(),
    action: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z][a-z.-]*\*?$/, 'an action name such as user.set, or a prefix such as user.*')
      .optional(),
    result: z.enum(['pending', 'ok', 'error']).optional(),
    since: dateInput.optional(),
    until: dateInput.optional(),
    before: z.number().int().min(1).optional(),
    limit: z.number().int().min(1).max(1000).default(100),
  })
  .strict();

export interface AuditPage {
  entries: AuditEntry[];
  /** Pass as `before` for the next (older) page; null when this is the last one. */
  next: number | null;
}

/** The admin audit trail, newest first (chat administrators only). */
export async function listAudit(d: Domain, actor: Actor, input: unknown): Promise<AuditPage> {
  requireAdmin(actor);
  const q = parseInput(auditQuerySchema, input, 'audit query');
  const entries = await d.store.listAudit({
    actor: q.actor,
    action: q.action,
    result: q.result,
    since: q.since === undefined ? undefined : toMs(q.since, false),
    until: q.until === undefined ? undefined : toMs(q.until, true),
    beforeId: q.before,
    limit: q.limit + 1,
  });
  const more = entries.length > q.limit;
  const page = more ? entries.slice(0, q.limit) : entries;
  return { entries: page, next: more ? page.at(-1)!.id : null };
}
