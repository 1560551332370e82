import type { Generated } from 'kysely';

/** Tables of the compliance store (compliance.db or the compliance PostgreSQL database). */
export interface ComplianceRecordTable {
  id: Generated<number>;
  outbox_id: number;
  kind: string;
  occurred_at: number;
  captured_at: number;
  actor_id: number | null;
  room_id: number | null;
  /** The category of the room (or of a category's own event) when captured. */
  category_id: number | null;
  /** JSON of ComplianceUser, or null. */
  actor: string | null;
  /** JSON of ComplianceRoom, or null. */
  room: string | null;
  payload: string;
}

export interface ComplianceAdapterTable {
  name: string;
  cursor: number;
  pending_start: number | null;
  pending_end: number | null;
  pending_config: string | null;
  runs: number;
  records_exported: number;
  last_run_at: number | null;
  last_success_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
}

export interface ComplianceLeaseTable {
  name: string;
  holder: string;
  expires_at: number;
}

export interface ComplianceHoldTable {
  id: Generated<number>;
  room_id: number | null;
  category_id: number | null;
  user_id: number | null;
  from_at: number | null;
  to_at: number | null;
  reason: string;
  placed_by: string;
  placed_at: number;
  released_by: string | null;
  released_at: number | null;
  release_reason: string | null;
}

export interface ComplianceDatabase {
  compliance_holds: ComplianceHoldTable;
  compliance_records: ComplianceRecordTable;
  compliance_adapters: ComplianceAdapterTable;
  compliance_lease: ComplianceLeaseTable;
}
