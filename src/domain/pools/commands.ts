import { z } from 'zod';
import {
  FrontEndNotFoundError,
  PoolNotFoundError,
  TooManyActiveServersError,
  ValidationError,
} from '../../errors.js';
import { requireAdmin } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';

/** At most this many front ends of a pool serve clients at once (Lync's limit too). */
export const MAX_ACTIVE_FRONT_ENDS = 4;

/** A front end is reported unreachable when its heartbeat is older than this many intervals. */
export const MISSED_HEARTBEATS = 3;

/** A pool or front-end name: letters, digits, dot, dash and underscore, 1–64 characters. */
export const poolNameSchema = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain letters, digits and . _ - only');

export interface FrontEndRecord {
  name: string;
  url: string;
  version: string;
  registeredAt: number;
  startedAt: number;
  heartbeatAt: number;
  /** When it stopped cleanly; null while running or after a crash. */
  stoppedAt: number | null;
  connections: number;
  users: number;
}

export interface PoolRecord {
  name: string;
  /** The chosen active set, or null when none was chosen. */
  activeServers: string[] | null;
  frontEnds: FrontEndRecord[];
}

/** Where pools and their front ends are recorded (the chat store of an Enterprise Edition pool). */
export interface PoolRegistry {
  /** How often front ends write their heartbeat, in milliseconds. */
  readonly heartbeatMs: number;
  get(pool: string): Promise<PoolRecord | undefined>;
  /** Records the active set (null clears it) and tells every front end of the pool. */
  setActiveServers(pool: string, names: string[] | null, now: number): Promise<void>;
}

/**
 * The front ends that serve clients: the chosen set, or while none was chosen the first four to
 * have registered.
 */
export function activeFrontEnds(pool: PoolRecord): string[] {
  if (pool.activeServers !== null) return pool.activeServers;
  return [...pool.frontEnds]
    .sort((a, b) => a.registeredAt - b.registeredAt || a.name.localeCompare(b.name))
    .slice(0, MAX_ACTIVE_FRONT_ENDS)
    .map((f) => f.name);
}

export type FrontEndState = 'active' | 'idle' | 'stopped' | 'unreachable';

export interface FrontEndView {
  name: string;
  url: string;
  version: string;
  /** In the active set: serves new client sessions when running. */
  active: boolean;
  /** Running and active, running and idle, stopped cleanly, or silent (crashed or cut off). */
  state: FrontEndState;
  lastHeartbeat: string;
  startedAt: string;
  connections: number;
  users: number;
}

export interface PoolView {
  name: string;
  /** Whether an administrator chose the active set (else: the first four registered). */
  activeSetChosen: boolean;
  activeServers: string[];
  frontEnds: FrontEndView[];
}

/** The pool as `perch pool get` shows it (Get-CsPersistentChatState plus per-server load). */
export function presentPool(pool: PoolRecord, now: number, heartbeatMs: number): PoolView {
  const active = activeFrontEnds(pool);
  return {
    name: pool.name,
    activeSetChosen: pool.activeServers !== null,
    activeServers: active,
    frontEnds: [...pool.frontEnds]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((f) => {
        const isActive = active.includes(f.name);
        const state: FrontEndState =
          f.stoppedAt !== null
            ? 'stopped'
            : now - f.heartbeatAt > MISSED_HEARTBEATS * heartbeatMs
              ? 'unreachable'
              : isActive
                ? 'active'
                : 'idle';
        return {
          name: f.name,
          url: f.url,
          version: f.version,
          active: isActive,
          state,
          lastHeartbeat: new Date(f.heartbeatAt).toISOString(),
          startedAt: new Date(f.startedAt).toISOString(),
          connections: state === 'stopped' ? 0 : f.connections,
          users: state === 'stopped' ? 0 : f.users,
        };
      }),
  };
}

function requirePools(pools: PoolRegistry | undefined): PoolRegistry {
  if (!pools) throw new PoolNotFoundError();
  return pools;
}

/** A pool's active set and its front ends with state, heartbeat and load (administrators). */
export async function getPool(
  d: Domain,
  actor: Actor,
  pools: PoolRegistry | undefined,
  name: unknown,
): Promise<PoolView> {
  requireAdmin(actor);
  const registry = requirePools(pools);
  const poolName = parseInput(poolNameSchema, name, 'pool name');
  const pool = await registry.get(poolName);
  if (!pool) throw new PoolNotFoundError(poolName);
  return presentPool(pool, d.clock(), registry.heartbeatMs);
}

export const activeServersSchema = z
  .object({
    /** Front-end names; an empty list (or null) makes every front end idle, as for a failback. */
    servers: z.array(poolNameSchema).nullable(),
  })
  .strict();

/**
 * Chooses which front ends of a pool serve clients (Set-CsPersistentChatActiveServer): at most
 * four, each one that has registered in the pool. Front ends left out keep their connections
 * and refuse new sessions. An empty list makes them all idle.
 */
export async function setActiveServers(
  d: Domain,
  actor: Actor,
  pools: PoolRegistry | undefined,
  name: unknown,
  input: unknown,
): Promise<PoolView> {
  requireAdmin(actor);
  const registry = requirePools(pools);
  const poolName = parseInput(poolNameSchema, name, 'pool name');
  const { servers } = parseInput(activeServersSchema, input, 'active servers');
  const names = servers ?? [];
  const unique = [...new Set(names)];
  if (unique.length !== names.length) {
    throw new ValidationError('a front end is listed twice', { servers: names });
  }
  if (unique.length > MAX_ACTIVE_FRONT_ENDS) {
    throw new TooManyActiveServersError(MAX_ACTIVE_FRONT_ENDS, unique.length);
  }
  const pool = await registry.get(poolName);
  if (!pool) throw new PoolNotFoundError(poolName);
  const known = new Set(pool.frontEnds.map((f) => f.name));
  const unknown = unique.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new FrontEndNotFoundError(poolName, unknown);
  await registry.setActiveServers(poolName, unique, d.clock());
  return presentPool({ ...pool, activeServers: unique }, d.clock(), registry.heartbeatMs);
}
