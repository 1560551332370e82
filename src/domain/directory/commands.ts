import crypto from 'node:crypto';
import { z } from 'zod';
import {
  AccountDisabledError,
  AdminRequiredError,
  ChatDisabledError,
  ConflictError,
  DirectoryManagedError,
  InvalidCredentialsError,
  PolicyNotFoundError,
  PrincipalNotFoundError,
  RuleViolationError,
  TooManyAttemptsError,
  UnauthenticatedError,
} from '../../errors.js';
import type { Policy, Principal, PrincipalKind, StoreOps } from '../../store/store.js';
import { logForPool, type ChangeEvent } from '../events.js';
import type { Actor, Domain, PrincipalRef } from '../types.js';
import { loginSchema, parseInput, passwordSchema } from '../validation.js';
import { ensureScramCredentials, scramCredentials } from './scram.js';

/** Stores only a hash of each session token, so a leaked database yields no usable token. */
export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('base64url');
}

export function toRef(p: Principal): PrincipalRef {
  return { id: p.id, kind: p.kind, name: p.name, displayName: p.displayName };
}

export function requireAdmin(actor: Actor): void {
  if (!actor.isAdmin) throw new AdminRequiredError();
}

/** Refuses every chat function to a user whose effective policy has persistent chat off. */
export function requireChat(actor: Actor & { chatEnabled?: boolean }): void {
  if (actor.chatEnabled === false) throw new ChatDisabledError();
}

export interface SignInResult {
  token: string;
  expiresAt: number;
  user: PrincipalRef & { isAdmin: boolean };
}

const signInSchema = z.object({
  login: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
});

/**
 * Verifies a login and password and opens a session. Failures are throttled per login and per
 * client address; every failure answers the same `invalid_credentials`, whether the login exists
 * or not.
 */
export async function signIn(d: Domain, input: unknown, clientKey: string): Promise<SignInResult> {
  const { login, password } = parseInput(signInSchema, input, 'sign-in');
  const keys = [`login:${login.toLowerCase()}`, `client:${clientKey}`];
  const wait = Math.max(...keys.map((k) => d.throttle.waitMs(k)));
  if (wait > 0) throw new TooManyAttemptsError(Math.ceil(wait / 1000));
  const user = await d.store.getPrincipalByName(login);
  let ok: boolean;
  if (user?.kind === 'user' && user.source === 'ldap') {
    // A directory user: the directory checks the password by a bind as the user's DN. An
    // unreachable directory is `directory_unavailable`, not a failed attempt.
    const link = await d.store.getDirectoryLink(user.id);
    ok = !!d.directory && !!link && (await d.directory.verifyPassword(link.dn, password));
  } else {
    const hash = user?.kind === 'user' ? await d.store.getPasswordHash(user.id) : null;
    // Verify against a dummy hash when the user is unknown so that timing reveals nothing.
    ok = (await d.hasher.verify(hash ?? (await dummyHash(d)), password)) && hash !== null;
  }
  if (!user || user.kind !== 'user' || !ok) {
    for (const k of keys) d.throttle.fail(k);
    throw new InvalidCredentialsError();
  }
  if (user.disabled) throw new AccountDisabledError();
  for (const k of keys) d.throttle.succeed(k);
  // Users from before migration 012 get their SCRAM credentials at their next sign-in.
  await ensureScramCredentials(d, user, password);
  return openSession(d, user);
}

/** Opens a session for a user whose credentials were just verified (any sign-in method). */
export async function openSession(d: Domain, user: Principal): Promise<SignInResult> {
  const token = crypto.randomBytes(32).toString('base64url');
  const now = d.clock();
  const expiresAt = now + d.sessionTtlMs;
  await d.store.createSession(hashToken(token), user.id, now, expiresAt);
  return { token, expiresAt, user: { ...toRef(user), isAdmin: user.isAdmin } };
}

let dummy: Promise<string> | undefined;
function dummyHash(d: Domain): Promise<string> {
  dummy ??= d.hasher.hash(crypto.randomBytes(16).toString('hex'));
  return dummy;
}

/** Resolves a session token into the actor it stands for, or throws `unauthenticated`. */
export async function authenticate(
  d: Domain,
  token: string,
): Promise<Actor & { chatEnabled: boolean }> {
  if (!token || token.length > 200) throw new UnauthenticatedError('invalid session token');
  const session = await d.store.getSession(hashToken(token));
  if (!session || session.revokedAt !== null || session.expiresAt <= d.clock()) {
    throw new UnauthenticatedError('session expired or revoked');
  }
  const user = await d.store.getPrincipal(session.userId);
  if (!user || user.disabled) throw new UnauthenticatedError('account disabled');
  return actorFor(d, user);
}

/** Builds the actor for a known user (also used by the CLI's offline commands). */
export async function actorFor(
  d: Domain,
  user: Principal,
): Promise<Actor & { chatEnabled: boolean }> {
  const principalIds = await d.access.principalIds(user.id);
  const policy = await effectivePolicy(d, user.id, principalIds);
  return {
    userId: user.id,
    login: user.name,
    displayName: user.displayName,
    isAdmin: user.isAdmin,
    principalIds,
    chatEnabled: policy.enabled,
  };
}

export async function signOut(d: Domain, token: string, all: boolean): Promise<void> {
  const hashed = hashToken(token);
  const session = await d.store.getSession(hashed);
  if (!session) return;
  const now = d.clock();
  const event = {
    type: 'user.signed_out',
    userId: session.userId,
    all,
    tokenHash: hashed,
  } as const;
  await d.store.transaction(async (tx) => {
    if (all) await tx.revokeUserSessions(session.userId, now);
    else await tx.revokeSession(hashed, now);
    await logForPool(d, tx, [event]);
  });
  d.events.publish(event);
}

// ------------------------------------------------------------------ users and groups

const newUserSchema = z.object({
  login: loginSchema,
  displayName: z.string().trim().min(1).max(256).optional(),
  email: z.email().max(256).optional(),
  password: passwordSchema,
  isAdmin: z.boolean().default(false),
});

const userPatchSchema = z
  .object({
    displayName: z.string().trim().min(1).max(256),
    email: z.email().max(256).nullable(),
    password: passwordSchema,
    disabled: z.boolean(),
    isAdmin: z.boolean(),
  })
  .partial()
  .strict();

async function createPrincipalChecked(
  d: { store: StoreOps; clock: () => number },
  kind: PrincipalKind,
  values: {
    name: string;
    displayName: string;
    email?: string | null;
    description?: string | null;
    passwordHash?: string | null;
    isAdmin?: boolean;
  },
): Promise<Principal> {
  if (await d.store.getPrincipalByName(values.name)) {
    throw new ConflictError(
      'principal_exists',
      `a user or group named ${JSON.stringify(values.name)} already exists`,
    );
  }
  return d.store.createPrincipal({ kind, ...values }, d.clock());
}

export async function createUser(d: Domain, actor: Actor, input: unknown): Promise<Principal> {
  requireAdmin(actor);
  const v = parseInput(newUserSchema, input, 'user');
  const passwordHash = await d.hasher.hash(v.password);
  const scram = await scramCredentials(v.password);
  return d.store.transaction(async (tx) => {
    const user = await createPrincipalChecked({ ...d, store: tx }, 'user', {
      name: v.login,
      displayName: v.displayName ?? v.login,
      email: v.email ?? null,
      passwordHash,
      isAdmin: v.isAdmin,
    });
    await tx.saveScramCredentials(user.id, scram, user.createdAt);
    await tx.recordActivity({
      kind: 'USER_CREATED',
      actorId: actor.userId,
      roomId: null,
      createdAt: user.createdAt,
      payload: { user: user.name, displayName: user.displayName, isAdmin: user.isAdmin },
    });
    return user;
  });
}

async function requirePrincipal(d: Domain, name: string, kind?: PrincipalKind): Promise<Principal> {
  const p = await d.store.getPrincipalByName(name);
  if (!p || (kind && p.kind !== kind)) throw new PrincipalNotFoundError(name);
  return p;
}

export async function updateUser(
  d: Domain,
  actor: Actor,
  login: string,
  input: unknown,
): Promise<Principal> {
  requireAdmin(actor);
  const v = parseInput(userPatchSchema, input, 'user change');
  const user = await requirePrincipal(d, login, 'user');
  if (user.source === 'ldap') {
    const managed = (['password', 'disabled', 'displayName', 'email'] as const).filter(
      (k) => v[k] !== undefined,
    );
    if (managed.length > 0) throw new DirectoryManagedError(user.name, managed);
  }
  if (user.id === actor.userId && (v.disabled === true || v.isAdmin === false)) {
    throw new RuleViolationError(
      'cannot_demote_self',
      'administrators cannot disable or demote themselves',
    );
  }
  const now = d.clock();
  // Hash before the transaction: argon2 is slow and a transaction holds the store's writer.
  const passwordHash = v.password === undefined ? undefined : await d.hasher.hash(v.password);
  const scram = v.password === undefined ? undefined : await scramCredentials(v.password);
  const events: ChangeEvent[] = [];
  if (v.disabled === true || v.password !== undefined) {
    events.push({ type: 'user.signed_out', userId: user.id, all: true });
  }
  if (v.isAdmin !== undefined) events.push({ type: 'directory.changed' });
  await d.store.transaction(async (tx) => {
    await tx.updatePrincipal(
      user.id,
      {
        displayName: v.displayName,
        email: v.email,
        disabled: v.disabled,
        isAdmin: v.isAdmin,
        passwordHash,
      },
      now,
    );
    if (scram) await tx.saveScramCredentials(user.id, scram, now);
    if (v.disabled === true || v.password !== undefined) await tx.revokeUserSessions(user.id, now);
    await tx.recordActivity({
      kind: 'USER_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: now,
      payload: { user: user.name, changes: Object.keys(v) },
    });
    await logForPool(d, tx, events);
  });
  for (const event of events) d.events.publish(event);
  return (await d.store.getPrincipal(user.id))!;
}

/** Users and groups matching a filter: the directory look-up used to fill role lists. */
export async function lookupPrincipals(
  d: Domain,
  actor: Actor,
  input: { filter?: string; kind?: PrincipalKind; limit?: number; offset?: number },
): Promise<Principal[]> {
  requireChat(actor);
  const q = parseInput(
    z.object({
      filter: z.string().max(256).optional(),
      kind: z.enum(['user', 'group']).optional(),
      limit: z.number().int().min(1).max(200).default(50),
      offset: z.number().int().min(0).default(0),
    }),
    input,
    'look-up',
  );
  return d.store.listPrincipals(q);
}

const newGroupSchema = z.object({
  name: loginSchema,
  displayName: z.string().trim().min(1).max(256).optional(),
  description: z.string().max(1024).optional(),
  members: z.array(z.string().min(1).max(256)).max(10_000).default([]),
});

export async function createGroup(d: Domain, actor: Actor, input: unknown): Promise<Principal> {
  requireAdmin(actor);
  const v = parseInput(newGroupSchema, input, 'group');
  const members = await resolvePrincipals(d, v.members);
  const group = await d.store.transaction(async (tx) => {
    if (await tx.getPrincipalByName(v.name)) {
      throw new ConflictError(
        'principal_exists',
        `a user or group named ${JSON.stringify(v.name)} already exists`,
      );
    }
    const g = await tx.createPrincipal(
      {
        kind: 'group',
        name: v.name,
        displayName: v.displayName ?? v.name,
        description: v.description ?? null,
      },
      d.clock(),
    );
    await tx.addGroupMembers(
      g.id,
      members.map((m) => m.id),
    );
    await tx.recordActivity({
      kind: 'GROUP_CREATED',
      actorId: actor.userId,
      roomId: null,
      createdAt: g.createdAt,
      payload: { group: g.name, members: members.map((m) => m.name) },
    });
    return g;
  });
  return group;
}

/** Adds and removes group members; refuses a change that would make a group contain itself. */
export async function changeGroupMembers(
  d: Domain,
  actor: Actor,
  groupName: string,
  input: unknown,
): Promise<number[]> {
  requireAdmin(actor);
  const v = parseInput(
    z.object({
      add: z.array(z.string().min(1).max(256)).max(10_000).default([]),
      remove: z.array(z.string().min(1).max(256)).max(10_000).default([]),
    }),
    input,
    'group change',
  );
  const group = await requirePrincipal(d, groupName, 'group');
  if (group.source === 'ldap') throw new DirectoryManagedError(group.name, ['its members']);
  const add = await resolvePrincipals(d, v.add);
  const remove = await resolvePrincipals(d, v.remove);
  const ancestors = await d.store.ancestry(group.id);
  const cyclic = add.filter((p) => ancestors.includes(p.id));
  if (cyclic.length > 0) {
    throw new RuleViolationError(
      'group_cycle',
      `a group cannot contain itself: ${cyclic.map((p) => p.name).join(', ')}`,
    );
  }
  await d.store.transaction(async (tx) => {
    await tx.addGroupMembers(
      group.id,
      add.map((p) => p.id),
    );
    await tx.removeGroupMembers(
      group.id,
      remove.map((p) => p.id),
    );
    await tx.recordActivity({
      kind: 'GROUP_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: {
        group: group.name,
        added: add.map((p) => p.name),
        removed: remove.map((p) => p.name),
      },
    });
    await logForPool(d, tx, [{ type: 'directory.changed' }]);
  });
  d.access.invalidateDirectory();
  d.events.publish({ type: 'directory.changed' });
  return d.store.listGroupMembers(group.id);
}

/** Resolves names to principals, failing with `principal_not_found` naming the first unknown. */
export async function resolvePrincipals(
  d: Domain | { store: Domain['store'] },
  names: readonly string[],
): Promise<Principal[]> {
  const unique = [...new Set(names.map((n) => n.trim()))];
  const found = await d.store.getPrincipalsByNames(unique);
  const byKey = new Map(found.map((p) => [p.name.normalize('NFKC').toLowerCase(), p]));
  const missing = unique.filter((n) => !byKey.has(n.normalize('NFKC').toLowerCase()));
  if (missing.length > 0) throw new PrincipalNotFoundError(missing[0]);
  return unique.map((n) => byKey.get(n.normalize('NFKC').toLowerCase())!);
}

// ------------------------------------------------------------------ policies

export interface EffectivePolicy {
  enabled: boolean;
  policy: string;
  /** Where it comes from: `user`, `group:<name>` or `global`. */
  source: string;
}

/**
 * Persistent chat policy resolution: a policy granted to the user wins; otherwise policies
 * granted to the user's groups (nearest nesting first is not tracked, so when groups disagree the
 * disabling one wins, which errs on the side of compliance); otherwise the global policy.
 */
export async function effectivePolicy(
  d: Domain,
  userId: number,
  principalIds?: number[],
): Promise<EffectivePolicy> {
  const ids = principalIds ?? (await d.access.principalIds(userId));
  const grants = await d.store.getGrants(ids);
  const policies = new Map((await d.store.listPolicies()).map((p) => [p.name, p]));
  const own = grants.find((g) => g.principalId === userId);
  if (own) {
    const p = policies.get(own.policyName);
    if (p) return { enabled: p.enabled, policy: p.name, source: 'user' };
  }
  const groupGrants = grants.filter((g) => g.principalId !== userId && policies.has(g.policyName));
  if (groupGrants.length > 0) {
    const chosen = groupGrants.find((g) => !policies.get(g.policyName)!.enabled) ?? groupGrants[0]!;
    const group = await d.store.getPrincipal(chosen.principalId);
    const p = policies.get(chosen.policyName)!;
    return {
      enabled: p.enabled,
      policy: p.name,
      source: `group:${group?.name ?? chosen.principalId}`,
    };
  }
  const global = policies.get('global');
  return { enabled: global?.enabled ?? true, policy: 'global', source: 'global' };
}

const policySchema = z.object({
  name: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .regex(/^[\w.-]+$/, 'may contain letters, digits and . _ - only'),
  enabled: z.boolean(),
  description: z.string().max(1024).nullable().default(null),
});

/** Creates or replaces a policy; the change is captured for compliance (POLICY_CHANGED). */
export async function upsertPolicy(d: Domain, actor: Actor, input: unknown): Promise<Policy> {
  requireAdmin(actor);
  const p = parseInput(policySchema, input, 'policy');
  await d.store.transaction(async (tx) => {
    const before = await tx.getPolicy(p.name);
    await tx.upsertPolicy(p);
    await tx.recordActivity({
      kind: 'POLICY_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: { policy: p.name, created: before === undefined, before: before ?? null, after: p },
    });
    await logForPool(d, tx, [{ type: 'directory.changed' }]);
  });
  d.events.publish({ type: 'directory.changed' });
  return p;
}

/**
 * Deletes a policy and its grants (POLICY_DELETED); the global policy cannot be deleted and is
 * reset to its default (on) instead (POLICY_CHANGED).
 */
export async function removePolicy(d: Domain, actor: Actor, name: string): Promise<void> {
  requireAdmin(actor);
  await d.store.transaction(async (tx) => {
    const before = await tx.getPolicy(name);
    if (name === 'global') {
      const reset = { name: 'global', enabled: true, description: 'default policy' };
      await tx.upsertPolicy(reset);
      await tx.recordActivity({
        kind: 'POLICY_CHANGED',
        actorId: actor.userId,
        roomId: null,
        createdAt: d.clock(),
        payload: {
          policy: name,
          created: false,
          reset: true,
          before: before ?? null,
          after: reset,
        },
      });
      await logForPool(d, tx, [{ type: 'directory.changed' }]);
      return;
    }
    if (!before) throw new PolicyNotFoundError(name);
    await tx.deletePolicy(name);
    await tx.recordActivity({
      kind: 'POLICY_DELETED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: { policy: name, before },
    });
    await logForPool(d, tx, [{ type: 'directory.changed' }]);
  });
  d.events.publish({ type: 'directory.changed' });
}

/** Grants a policy to a user or group, or removes its grant with null (POLICY_GRANTED). */
export async function grantPolicy(
  d: Domain,
  actor: Actor,
  principalName: string,
  policyName: string | null,
): Promise<void> {
  requireAdmin(actor);
  const p = await requirePrincipal(d, principalName);
  await d.store.transaction(async (tx) => {
    if (policyName !== null && !(await tx.getPolicy(policyName))) {
      throw new PolicyNotFoundError(policyName);
    }
    const [before] = await tx.getGrants([p.id]);
    await tx.setGrant(p.id, policyName);
    await tx.recordActivity({
      kind: 'POLICY_GRANTED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: {
        principal: p.name,
        kind: p.kind,
        policy: policyName,
        previous: before?.policyName ?? null,
      },
    });
    await logForPool(d, tx, [{ type: 'directory.changed' }]);
  });
  d.events.publish({ type: 'directory.changed' });
}

/** Creates the `admin` account and the global policy on first start. Returns true if created. */
export async function bootstrap(d: Domain, adminPassword: string): Promise<boolean> {
  if (!(await d.store.getPolicy('global'))) {
    await d.store.upsertPolicy({ name: 'global', enabled: true, description: 'default policy' });
  }
  if (await d.store.getPrincipalByName('admin')) return false;
  const admin = await d.store.createPrincipal(
    {
      kind: 'user',
      name: 'admin',
      displayName: 'Chat administrator',
      isAdmin: true,
      passwordHash: await d.hasher.hash(adminPassword),
    },
    d.clock(),
  );
  await d.store.saveScramCredentials(admin.id, await scramCredentials(adminPassword), d.clock());
  return true;
}

// ------------------------------------------------------------------ group changes and removal

const groupPatchSchema = z
  .object({
    name: loginSchema,
    displayName: z.string().trim().min(1).max(256),
    description: z.string().max(1024).nullable(),
  })
  .partial()
  .strict();

/**
 * Renames a group or changes its display name or description. Everything that names the group
 * (roles, category lists, memberships, grants) refers to it by id, so a rename keeps them all.
 */
export async function updateGroup(
  d: Domain,
  actor: Actor,
  groupName: string,
  input: unknown,
): Promise<Principal> {
  requireAdmin(actor);
  const v = parseInput(groupPatchSchema, input, 'group change');
  const group = await requirePrincipal(d, groupName, 'group');
  if (group.source === 'ldap') throw new DirectoryManagedError(group.name, Object.keys(v));
  const now = d.clock();
  await d.store.transaction(async (tx) => {
    if (v.name !== undefined) {
      const other = await tx.getPrincipalByName(v.name);
      if (other && other.id !== group.id) {
        throw new ConflictError(
          'principal_exists',
          `a user or group named ${JSON.stringify(v.name)} already exists`,
        );
      }
    }
    await tx.updatePrincipal(group.id, v, now);
    await tx.recordActivity({
      kind: 'GROUP_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: now,
      payload: {
        group: v.name ?? group.name,
        ...(v.name !== undefined && v.name !== group.name ? { renamedFrom: group.name } : {}),
        changes: v,
      },
    });
    await logForPool(d, tx, [{ type: 'directory.changed' }]);
  });
  d.events.publish({ type: 'directory.changed' });
  return (await d.store.getPrincipal(group.id))!;
}

/** Where a group is named, by name: what removing it takes away, and what blocks it. */
export interface GroupReferences {
  group: PrincipalRef;
  members: number;
  rooms: { id: number; name: string; roles: string[] }[];
  categories: { id: number; name: string; lists: string[] }[];
  parentGroups: string[];
  policy: string | null;
  /**
   * Why the group cannot be removed: removing it would widen access, because it is on a
   * category's denied list (an ethical wall) or holds a policy grant (which may turn chat off).
   */
  blockers: string[];
}

async function describeReferences(store: StoreOps, group: Principal): Promise<GroupReferences> {
  const refs = await store.principalReferences(group.id);
  const rooms = new Map<number, { id: number; name: string; roles: string[] }>();
  for (const r of refs.roomRoles) {
    let entry = rooms.get(r.roomId);
    if (!entry) {
      const room = await store.getRoom(r.roomId);
      entry = { id: r.roomId, name: room?.name ?? `#${r.roomId}`, roles: [] };
      rooms.set(r.roomId, entry);
    }
    entry.roles.push(r.role);
  }
  const categories = new Map<number, { id: number; name: string; lists: string[] }>();
  for (const c of refs.categoryLists) {
    let entry = categories.get(c.categoryId);
    if (!entry) {
      const category = await store.getCategory(c.categoryId);
      entry = { id: c.categoryId, name: category?.name ?? `#${c.categoryId}`, lists: [] };
      categories.set(c.categoryId, entry);
    }
    entry.lists.push(c.list);
  }
  const parents = await store.getPrincipals(refs.parentGroups);
  const blockers = [
    ...[...categories.values()]
      .filter((c) => c.lists.includes('denied'))
      .map((c) => `it is on the denied list of category ${c.name}`),
    ...(refs.policy === null ? [] : [`it holds the policy ${refs.policy}`]),
  ];
  return {
    group: toRef(group),
    members: (await store.listGroupMembers(group.id)).length,
    rooms: [...rooms.values()],
    categories: [...categories.values()],
    parentGroups: parents.map((p) => p.name).sort(),
    policy: refs.policy,
    blockers,
  };
}

/** What removing a group would take away (administrators); `perch group remove --what-if`. */
export async function groupReferences(
  d: Domain,
  actor: Actor,
  groupName: string,
): Promise<GroupReferences> {
  requireAdmin(actor);
  return describeReferences(d.store, await requirePrincipal(d, groupName, 'group'));
}

/**
 * Removes a group. Its memberships (as member and as container), room roles and places on
 * allowed and creator lists go with it: each of those only ever gave access, so access can only
 * narrow. A group on a category's denied list, or holding a policy grant, is refused
 * (`group_in_use`): removing it would silently widen access (an ethical wall would fall, or a
 * policy that turns chat off would stop applying), so the administrator changes those first.
 */
export async function removeGroup(
  d: Domain,
  actor: Actor,
  groupName: string,
): Promise<GroupReferences> {
  requireAdmin(actor);
  const group = await requirePrincipal(d, groupName, 'group');
  if (group.source === 'ldap') throw new DirectoryManagedError(group.name, ['whether it exists']);
  const refs = await d.store.transaction(async (tx) => {
    // Read inside the transaction so that the check and the delete see the same references.
    const r = await describeReferences(tx, group);
    if (r.blockers.length > 0) {
      throw new ConflictError(
        'group_in_use',
        `group ${group.name} cannot be removed: ${r.blockers.join('; ')}`,
        { blockers: r.blockers },
      );
    }
    await tx.deletePrincipal(group.id);
    await tx.recordActivity({
      kind: 'GROUP_DELETED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: {
        group: group.name,
        members: r.members,
        rooms: r.rooms,
        categories: r.categories,
        parentGroups: r.parentGroups,
      },
    });
    await logForPool(d, tx, [
      { type: 'directory.changed' },
      ...r.rooms.map((room) => ({ type: 'room.access_changed' as const, roomId: room.id })),
    ]);
    return r;
  });
  d.access.invalidateDirectory();
  d.events.publish({ type: 'directory.changed' });
  for (const room of refs.rooms) d.events.publish({ type: 'room.access_changed', roomId: room.id });
  return refs;
}
