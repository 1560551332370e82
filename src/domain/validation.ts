import { z } from 'zod';
import { ValidationError } from '../errors.js';

// Control characters (C0, DEL, C1) and bidi overrides have no place in names.
// eslint-disable-next-line no-control-regex
const forbidden = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** A room, category or add-in name: trimmed, 1–256 characters, no control characters. */
export const nameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  .refine((v) => !forbidden.test(v), 'must not contain control characters');

// eslint-disable-next-line no-control-regex
const forbiddenInText = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** Control characters other than tab and newlines, refused in descriptions and messages. */
export function hasControlChars(text: string): boolean {
  return forbiddenInText.test(text);
}

export const descriptionSchema = z
  .string()
  .max(256, 'must be at most 256 characters')
  .refine((v) => !hasControlChars(v), 'must not contain control characters');

/** A login: letters, digits and . _ - @, 1–64 characters, case-insensitive. */
export const loginSchema = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[\p{L}\p{N}._@-]+$/u, 'may contain letters, digits and . _ - @ only');

export const passwordSchema = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(1024, 'must be at most 1024 characters');

/** Parses `value` with `schema` or throws a ValidationError whose details list every issue. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what = 'request'): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.message,
  }));
  const first = issues[0];
  const where = first && first.path ? `${first.path}: ` : '';
  throw new ValidationError(`invalid ${what}: ${where}${first?.message ?? 'invalid'}`, { issues });
}
