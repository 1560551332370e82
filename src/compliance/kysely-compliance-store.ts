import { CompiledQuery, sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Dialect } from '../store/store.js';
import { runComplianceMigrations } from './migrate.js';
import type {
  ComplianceAdapterTable,
  ComplianceDatabase,
  ComplianceHoldTable,
  ComplianceRecordTable,
} from './schema.js';
import type {
  AdapterState,
  ComplianceRecord,
  ComplianceStore,
  Hold,
  LeaseFence,
  NewComplianceRecord,
  NewHold,
  RecordQuery,
} from './types.js';

const n = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const nn = (v: unknown): number | null => (v === null || v === undefined ? null : n(v));

function toRecord(r: Selectable<ComplianceRecordTable>): ComplianceRecord {
  return {
    id: n(r.id),
    outboxId: n(r.outbox_id),
    kind: r.kind,
    occurredAt: n(r.occurred_at),
    capturedAt: n(r.captured_at),
    actorId: nn(r.actor_id),
    roomId: nn(r.room_id),
    actor: r.actor === null ? null : (JSON.parse(r.actor) as ComplianceRecord['actor']),
    room: r.room === null ? null : (JSON.parse(r.room) as ComplianceRecord['room']),
    payload: JSON.parse(r.payload) as Record<string, unknown>,
  };
}

function toState(r: Selectable<ComplianceAdapterTable>): AdapterState {
  return {
    name: r.name,
    cursor: n(r.cursor),
    pending:
      r.pending_start === null || r.pending_end === null
        ? null
        : { start: n(r.pending_start), end: n(r.pending_end), config: r.pending_config ?? '{}' },
    runs: n(r.runs),
    recordsExported: n(r.records_exported),
    lastRunAt: nn(r.last_run_at),
    lastSuccessAt: nn(r.last_success_at),
    lastError: r.last_error,
    lastErrorAt: nn(r.last_error_at),
  };
}

function toHold(r: Selectable<ComplianceHoldTable>): Hold {
  return {
    id: n(r.id),
    roomId: nn(r.room_id),
    categoryId: nn(r.category_id),
    userId: nn(r.user_id),
    from: nn(r.from_at),
    to: nn(r.to_at),
    reason: r.reason,
    placedBy: r.placed_by,
    placedAt: n(r.placed_at),
    releasedBy: r.released_by,
    releasedAt: nn(r.released_at),
    releaseReason: r.release_reason,
  };
}

/** True for a record (of the outer `compliance_records`) that an active legal hold covers. */
const held = sql<boolean>`EXISTS (SELECT 1 FROM compliance_holds h WHERE h.released_at IS NULL
  AND (h.room_id IS NULL OR h.room_id = compliance_records.room_id)
  AND (h.category_id IS NULL OR h.category_id = compliance_records.category_id)
  AND (h.user_id IS NULL OR h.user_id = compliance_records.actor_id)
  AND (h.from_at IS NULL OR compliance_records.occurred_at >= h.from_at)
  AND (h.to_at IS NULL OR compliance_records.occurred_at <= h.to_at))`;

/** True when a compiled statement's parameters are exactly `values`, in order. */
function sameValues(parameters: readonly unknown[], values: readonly unknown[]): boolean {
  return parameters.length === values.length && parameters.every((p, i) => p === values[i]);
}

/** The category a record belongs to: its room's when captured, or a category event's own. */
function categoryOf(r: NewComplianceRecord): number | null {
  if (r.room?.categoryId != null) return r.room.categoryId;
  const id = r.payload.categoryId;
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : null;
}

/**
 * The fence of a run's writes: renews the worker lease inside the caller's transaction when
 * `lease.holder` holds it and it has not expired at `now`. On PostgreSQL the UPDATE locks the lease
 * row, so a takeover (acquireLease) waits for this transaction and then sees the renewal.
 */
async function renewHeldLease(
  trx: Transaction<ComplianceDatabase>,
  lease: LeaseFence,
  now: number,
): Promise<boolean> {
  const r = await trx
    .updateTable('compliance_lease')
    .set({ expires_at: now + lease.ttlMs })
    .where('name', '=', 'worker')
    .where('holder', '=', lease.holder)
    .where('expires_at', '>=', now)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The compliance store over Kysely: the same SQL on SQLite and PostgreSQL. */
export class KyselyComplianceStore implements ComplianceStore {
  constructor(
    protected readonly db: Kysely<ComplianceDatabase>,
    readonly dialect: Dialect,
  ) {}

  migrate(): Promise<string[]> {
    return runComplianceMigrations(this.db as unknown as Kysely<unknown>, this.dialect);
  }

  async insertRecords(records: NewComplianceRecord[], capturedAt: number): Promise<number> {
    if (records.length === 0) return 0;
    const rowOf = (r: NewComplianceRecord) => ({
      outbox_id: r.outboxId,
      kind: r.kind,
      occurred_at: r.occurredAt,
      captured_at: capturedAt,
      actor_id: r.actorId,
      room_id: r.roomId,
      category_id: categoryOf(r),
      actor: r.actor === null ? null : JSON.stringify(r.actor),
      room: r.room === null ? null : JSON.stringify(r.room),
      payload: JSON.stringify(r.payload),
    });
    return this.db.transaction().execute(async (trx) => {
      const insert = (row: ReturnType<typeof rowOf>) =>
        trx
          .insertInto('compliance_records')
          .values(row)
          .onConflict((oc) => oc.column('outbox_id').doNothing());
      // One row per statement keeps ids in outbox order and stays under parameter limits. The
      // statement is built and compiled once per drain, then run with each record's values in
      // the order of its columns (a drain of a thousand records paid a thousand query builds).
      const first = rowOf(records[0]!);
      const compiled = insert(first).compile();
      const sameShape = sameValues(compiled.parameters, Object.values(first));
      let inserted = 0;
      for (const r of records) {
        const row = rowOf(r);
        const res = sameShape
          ? await trx.executeQuery(CompiledQuery.raw(compiled.sql, Object.values(row)))
          : await trx.executeQuery(insert(row).compile());
        inserted += Number(res.numAffectedRows ?? 0n);
      }
      return inserted;
    });
  }

  async readRecords(afterId: number, limit: number, upToId?: number): Promise<ComplianceRecord[]> {
    let q = this.db
      .selectFrom('compliance_records')
      .selectAll()
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit);
    if (upToId !== undefined) q = q.where('id', '<=', upToId);
    return (await q.execute()).map(toRecord);
  }

  async stats(): Promise<{ lastId: number; count: number }> {
    const r = await this.db
      .selectFrom('compliance_records')
      .select((eb) => [eb.fn.max('id').as('last'), eb.fn.countAll().as('c')])
      .executeTakeFirstOrThrow();
    return { lastId: nn(r.last) ?? 0, count: n(r.c) };
  }

  async getAdapterState(name: string): Promise<AdapterState | undefined> {
    const r = await this.db
      .selectFrom('compliance_adapters')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return r && toState(r);
  }

  async listAdapterStates(): Promise<AdapterState[]> {
    const rows = await this.db
      .selectFrom('compliance_adapters')
      .selectAll()
      .orderBy('name')
      .execute();
    return rows.map(toState);
  }

  private async ensureAdapter(name: string): Promise<void> {
    await this.db
      .insertInto('compliance_adapters')
      .values({ name, cursor: 0, runs: 0, records_exported: 0 })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }

  async beginRun(
    name: string,
    start: number,
    end: number,
    config: string,
    now: number,
    lease: LeaseFence,
  ): Promise<boolean> {
    return this.fencedUpdate(name, lease, now, (trx) =>
      trx
        .updateTable('compliance_adapters')
        .set({ pending_start: start, pending_end: end, pending_config: config, last_run_at: now })
        .where('name', '=', name)
        .execute(),
    );
  }

  /** Runs an update of the adapter's row only while `lease` is still held; false when it is not. */
  private async fencedUpdate(
    name: string,
    lease: LeaseFence,
    now: number,
    update: (trx: Transaction<ComplianceDatabase>) => Promise<unknown>,
  ): Promise<boolean> {
    await this.ensureAdapter(name);
    return this.db.transaction().execute(async (trx) => {
      if (!(await renewHeldLease(trx, lease, now))) return false;
      await update(trx);
      return true;
    });
  }

  async commitRun(
    name: string,
    end: number,
    exported: number,
    now: number,
    lease: LeaseFence,
  ): Promise<boolean> {
    return this.fencedUpdate(name, lease, now, (trx) =>
      trx
        .updateTable('compliance_adapters')
        .set((eb) => ({
          cursor: end,
          pending_start: null,
          pending_end: null,
          pending_config: null,
          runs: eb('runs', '+', 1),
          records_exported: eb('records_exported', '+', exported),
          last_run_at: now,
          last_success_at: now,
          last_error: null,
          last_error_at: null,
        }))
        .where('name', '=', name)
        .execute(),
    );
  }

  async recordError(name: string, message: string, now: number): Promise<void> {
    await this.ensureAdapter(name);
    await this.db
      .updateTable('compliance_adapters')
      .set({ last_error: message.slice(0, 2000), last_error_at: now, last_run_at: now })
      .where('name', '=', name)
      .execute();
  }

  async acquireLease(holder: string, now: number, ttlMs: number): Promise<boolean> {
    await this.db
      .insertInto('compliance_lease')
      .values({ name: 'worker', holder, expires_at: now + ttlMs })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder, expires_at: now + ttlMs })
          .where((eb) =>
            eb.or([
              eb('compliance_lease.holder', '=', holder),
              eb('compliance_lease.expires_at', '<', now),
            ]),
          ),
      )
      .execute();
    const r = await this.db
      .selectFrom('compliance_lease')
      .select('holder')
      .where('name', '=', 'worker')
      .executeTakeFirst();
    return r?.holder === holder;
  }

  async placeHold(h: NewHold): Promise<Hold> {
    const r = await this.db
      .insertInto('compliance_holds')
      .values({
        room_id: h.roomId,
        category_id: h.categoryId,
        user_id: h.userId,
        from_at: h.from,
        to_at: h.to,
        reason: h.reason,
        placed_by: h.placedBy,
        placed_at: h.placedAt,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toHold(r);
  }

  async releaseHold(
    id: number,
    by: string,
    at: number,
    reason: string | null,
  ): Promise<Hold | undefined> {
    const r = await this.db
      .updateTable('compliance_holds')
      .set({ released_by: by, released_at: at, release_reason: reason })
      .where('id', '=', id)
      .where('released_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    return r && toHold(r);
  }

  async getHold(id: number): Promise<Hold | undefined> {
    const r = await this.db
      .selectFrom('compliance_holds')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return r && toHold(r);
  }

  async listHolds(includeReleased: boolean): Promise<Hold[]> {
    let q = this.db.selectFrom('compliance_holds').selectAll().orderBy('id');
    if (!includeReleased) q = q.where('released_at', 'is', null);
    return (await q.execute()).map(toHold);
  }

  async purgeRecords(cutoff: number, upToId: number, limit: number): Promise<number> {
    // One short transaction a batch: the held check and the delete see the same holds.
    return this.db.transaction().execute(async (trx) => {
      const ids = await trx
        .selectFrom('compliance_records')
        .select('id')
        .where('occurred_at', '<', cutoff)
        .where('id', '<=', upToId)
        .where((eb) => eb.not(held))
        .orderBy('id')
        .limit(limit)
        .execute();
      if (ids.length === 0) return 0;
      await trx
        .deleteFrom('compliance_records')
        .where(
          'id',
          'in',
          ids.map((r) => r.id),
        )
        .execute();
      return ids.length;
    });
  }

  async countKept(cutoff: number, upToId: number): Promise<{ held: number; unexported: number }> {
    const r = await this.db
      .selectFrom('compliance_records')
      .select((eb) => [
        eb.fn.countAll().filterWhere('id', '>', upToId).as('unexported'),
        eb.fn
          .countAll()
          .filterWhere((w) => w.and([w('id', '<=', upToId), held]))
          .as('held'),
      ])
      .where('occurred_at', '<', cutoff)
      .executeTakeFirstOrThrow();
    return { held: n(r.held), unexported: n(r.unexported) };
  }

  async searchRecords(q: RecordQuery): Promise<ComplianceRecord[]> {
    let s = this.db.selectFrom('compliance_records').selectAll().orderBy('id').limit(q.limit);
    if (q.userId !== undefined) s = s.where('actor_id', '=', q.userId);
    if (q.roomId !== undefined) s = s.where('room_id', '=', q.roomId);
    if (q.from !== undefined) s = s.where('occurred_at', '>=', q.from);
    if (q.to !== undefined) s = s.where('occurred_at', '<=', q.to);
    if (q.afterId !== undefined) s = s.where('id', '>', q.afterId);
    if (q.kinds !== undefined && q.kinds.length > 0) s = s.where('kind', 'in', q.kinds);
    if (q.text !== undefined && q.text !== '') {
      // The payload is JSON: look for the text as JSON spells it inside a string.
      const needle = `%${escapeLike(JSON.stringify(q.text.toLowerCase()).slice(1, -1))}%`;
      s = s.where(sql<boolean>`lower(payload) LIKE ${needle} ESCAPE '\\'`);
    }
    return (await s.execute()).map(toRecord);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
