import { z } from 'zod';

// Edge schemas shared by the routes. Path and query values arrive as strings: these turn them into
// the numbers and booleans the domain expects, refusing anything that is not written plainly
// (no `1e3`, `0x10`, ` 7` or `-1`).

/** A positive integer id written in decimal, as a path or query string. */
export const idString = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer')
  .transform(Number)
  .pipe(z.number().int().max(Number.MAX_SAFE_INTEGER));

/** A non-negative integer query value no greater than `max`. */
export function intString(max: number, min = 0) {
  return z
    .string()
    .regex(/^(0|[1-9][0-9]{0,15})$/, 'must be a non-negative integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

/** `true`/`false` (also `1`/`0`) as a query value. */
export const boolString = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');

/** A comma-separated query list, e.g. `authors=alice,bob`. */
export function csvString<T extends z.ZodType<unknown, string>>(item: T, max: number) {
  return z
    .string()
    .max(16_384)
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).max(max));
}

export const idParams = z.object({ id: idString.describe('Numeric id.') });

/** A name or login in the path (users, groups, policies, categories by name). */
export const nameString = z.string().min(1).max(256);

export const principalNames = z.array(z.string().min(1).max(256)).max(10_000);

/** Dates as milliseconds since the epoch, ISO date-times with offset, or ISO dates. */
export const dateValue = z.union([
  z.number().int().min(0),
  z.iso.datetime({ offset: true }),
  z.iso.date(),
]);
