import type { Kysely, Selectable } from 'kysely';
import type { Dialect } from '../store/store.js';
import { runComplianceMigrations } from './migrate.js';
import type {
  ComplianceAdapterTable,
  ComplianceDatabase,
  ComplianceRecordTable,
} from './schema.js';
import type {
  AdapterState,
  ComplianceRecord,
  ComplianceStore,
  NewComplianceRecord,
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
    return this.db.transaction().execute(async (trx) => {
      let inserted = 0;
      // One row per statement keeps ids in outbox order and stays under parameter limits.
      for (const r of records) {
        const res = await trx
          .insertInto('compliance_records')
          .values({
            outbox_id: r.outboxId,
            kind: r.kind,
            occurred_at: r.occurredAt,
            captured_at: capturedAt,
            actor_id: r.actorId,
            room_id: r.roomId,
            actor: r.actor === null ? null : JSON.stringify(r.actor),
            room: r.room === null ? null : JSON.stringify(r.room),
            payload: JSON.stringify(r.payload),
          })
          .onConflict((oc) => oc.column('outbox_id').doNothing())
          .executeTakeFirst();
        inserted += Number(res.numInsertedOrUpdatedRows ?? 0n);
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
  ): Promise<void> {
    await this.ensureAdapter(name);
    await this.db
      .updateTable('compliance_adapters')
      .set({ pending_start: start, pending_end: end, pending_config: config, last_run_at: now })
      .where('name', '=', name)
      .execute();
  }

  async commitRun(name: string, end: number, exported: number, now: number): Promise<void> {
    await this.ensureAdapter(name);
    await this.db
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
      .execute();
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

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
