import { z } from 'zod';
import { AddinNotFoundError, ConflictError } from '../../errors.js';
import type { Addin } from '../../store/store.js';
import { requireAdmin } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { nameSchema, parseInput } from '../validation.js';

// Add-ins (Lync's New/Set/Get/Remove-CsPersistentChatAddin): a named URL that rooms show in a
// side pane. Only chat administrators register and change them.

/** An add-in name: like room names, but at most 50 characters (Lync's limit). */
export const addinNameSchema = nameSchema.pipe(z.string().max(50, 'must be at most 50 characters'));

/** Only absolute http and https URLs: an add-in is loaded by clients, so no other scheme. */
export const addinUrlSchema = z
  .string()
  .trim()
  .max(2048, 'must be at most 2048 characters')
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an absolute http:// or https:// URL');

const newAddinSchema = z.object({ name: addinNameSchema, url: addinUrlSchema }).strict();
const addinPatchSchema = z
  .object({ name: addinNameSchema, url: addinUrlSchema })
  .partial()
  .strict();

/** Finds an add-in by numeric id or by name. */
export async function requireAddin(d: Domain, ref: string | number): Promise<Addin> {
  const a =
    typeof ref === 'number' || /^\d+$/.test(ref)
      ? await d.store.getAddin(Number(ref))
      : await d.store.getAddinByName(ref);
  if (!a) throw new AddinNotFoundError();
  return a;
}

function nameConflict(name: string): ConflictError {
  return new ConflictError(
    'addin_exists',
    `an add-in named ${JSON.stringify(name)} already exists`,
  );
}

/**
 * The origins of every registered add-in: the web client may frame these (and nothing else), so
 * that a room's add-in pane loads while no other page can be framed.
 */
export async function addinOrigins(d: Domain): Promise<string[]> {
  const origins = new Set<string>();
  for (const a of await d.store.listAddins()) {
    try {
      origins.add(new URL(a.url).origin);
    } catch {
      // Stored URLs were validated on the way in; one that no longer parses is left out.
    }
  }
  return [...origins].sort();
}

export async function listAddins(d: Domain, actor: Actor): Promise<Addin[]> {
  requireAdmin(actor);
  return d.store.listAddins();
}

export async function getAddin(d: Domain, actor: Actor, ref: string | number): Promise<Addin> {
  requireAdmin(actor);
  return requireAddin(d, ref);
}

/** Registers an add-in; names are unique (case-insensitive). */
export async function createAddin(d: Domain, actor: Actor, input: unknown): Promise<Addin> {
  requireAdmin(actor);
  const v = parseInput(newAddinSchema, input, 'add-in');
  const now = d.clock();
  return d.store.transaction(async (tx) => {
    if (await tx.getAddinByName(v.name)) throw nameConflict(v.name);
    const addin = await tx.createAddin(v.name, v.url, now);
    await tx.recordActivity({
      kind: 'ADDIN_CREATED',
      actorId: actor.userId,
      roomId: null,
      createdAt: now,
      payload: { addinId: addin.id, name: addin.name, url: addin.url },
    });
    return addin;
  });
}

/** Renames an add-in or changes its URL; rooms that use it see the change at once. */
export async function updateAddin(
  d: Domain,
  actor: Actor,
  ref: string | number,
  input: unknown,
): Promise<Addin> {
  requireAdmin(actor);
  const v = parseInput(addinPatchSchema, input, 'add-in change');
  const addin = await requireAddin(d, ref);
  await d.store.transaction(async (tx) => {
    if (v.name !== undefined) {
      const other = await tx.getAddinByName(v.name);
      if (other && other.id !== addin.id) throw nameConflict(v.name);
    }
    await tx.updateAddin(addin.id, v);
    await tx.recordActivity({
      kind: 'ADDIN_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: { addinId: addin.id, name: addin.name, changes: v },
    });
  });
  return (await d.store.getAddin(addin.id))!;
}

/** Unregisters an add-in; rooms that used it are left without one. */
export async function deleteAddin(d: Domain, actor: Actor, ref: string | number): Promise<void> {
  requireAdmin(actor);
  const addin = await requireAddin(d, ref);
  await d.store.transaction(async (tx) => {
    await tx.deleteAddin(addin.id);
    await tx.recordActivity({
      kind: 'ADDIN_DELETED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: { addinId: addin.id, name: addin.name, url: addin.url },
    });
  });
  // Cached rooms still hold the add-in's id; the store has set it to null.
  d.access.invalidateAll();
}
