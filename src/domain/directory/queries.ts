import { z } from 'zod';
import { PrincipalNotFoundError } from '../../errors.js';
import type { Policy, Principal } from '../../store/store.js';
import type { Actor, Domain, PrincipalRef } from '../types.js';
import { parseInput } from '../validation.js';
import { effectivePolicy, requireAdmin, toRef, type EffectivePolicy } from './commands.js';

/** A user or group as administrators see it (never with its password hash). */
export type PrincipalDetail = Principal;

export interface GroupDetail extends Principal {
  members: PrincipalRef[];
}

const listSchema = z
  .object({
    filter: z.string().max(256).optional(),
    limit: z.number().int().min(1).max(500).default(100),
    offset: z.number().int().min(0).default(0),
  })
  .strict();

async function requireKind(d: Domain, name: string, kind: Principal['kind']): Promise<Principal> {
  const p = await d.store.getPrincipalByName(name);
  if (!p || p.kind !== kind) throw new PrincipalNotFoundError(name);
  return p;
}

/** Users in the directory, filtered by login or display name (administrators only). */
export async function listUsers(d: Domain, actor: Actor, input: unknown): Promise<Principal[]> {
  requireAdmin(actor);
  const q = parseInput(listSchema, input ?? {}, 'user list');
  return d.store.listPrincipals({ ...q, kind: 'user' });
}

export async function getUser(d: Domain, actor: Actor, login: string): Promise<Principal> {
  requireAdmin(actor);
  return requireKind(d, login, 'user');
}

/** Groups in the directory (administrators only). */
export async function listGroups(d: Domain, actor: Actor, input: unknown): Promise<Principal[]> {
  requireAdmin(actor);
  const q = parseInput(listSchema, input ?? {}, 'group list');
  return d.store.listPrincipals({ ...q, kind: 'group' });
}

/** A group with its direct members (administrators only). */
export async function getGroup(d: Domain, actor: Actor, name: string): Promise<GroupDetail> {
  requireAdmin(actor);
  const group = await requireKind(d, name, 'group');
  const members = await d.store.getPrincipals(await d.store.listGroupMembers(group.id));
  return { ...group, members: members.map(toRef) };
}

export async function listPolicies(d: Domain, actor: Actor): Promise<Policy[]> {
  requireAdmin(actor);
  return d.store.listPolicies();
}

/** The persistent chat policy that applies to a user, and where it comes from. */
export async function userPolicy(d: Domain, actor: Actor, login: string): Promise<EffectivePolicy> {
  requireAdmin(actor);
  const user = await requireKind(d, login, 'user');
  return effectivePolicy(d, user.id);
}
