import fs from 'node:fs';
import { z } from 'zod';
import type { ComplianceThread } from '../../../compliance/compliance-thread.js';
import {
  complianceConfigPatchSchema,
  complianceConfigSchema,
  getComplianceConfig,
  setComplianceConfig,
} from '../../../domain/compliance/config.js';
import {
  exportCompliance,
  exportInputSchema,
  holdInputSchema,
  listHolds,
  placeHold,
  purgeNow,
  releaseHold,
  searchCompliance,
  searchInputSchema,
} from '../../../domain/compliance/commands.js';
import {
  purgeRetentionNow,
  retentionPurgeInputSchema,
} from '../../../domain/categories/retention.js';
import { requireAdmin } from '../../../domain/directory/commands.js';
import { ComplianceUnavailableError, ExportNotFoundError } from '../../../errors.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

/** What the routes need from the compliance worker. */
export type ComplianceControl = Pick<
  ComplianceThread,
  | 'status'
  | 'runNow'
  | 'purge'
  | 'placeHold'
  | 'releaseHold'
  | 'listHolds'
  | 'search'
  | 'exportRecords'
  | 'exportPath'
>;

/** The names exportRecords gives its files; anything else (a path) is refused. */
const exportFileName = /^ediscovery-\d{8}T\d{6}Z-[0-9a-f]{8}\.(xml|jsonl)$/;

const purgeSchema = z.object({
  retentionDays: z.number().nullable(),
  cutoff: z.string().nullable(),
  exportedUpTo: z.number(),
  purged: z.number(),
  keptUnderHold: z.number(),
  keptUnexported: z.number(),
  startedAt: z.string(),
  finishedAt: z.string(),
});

const retentionResultSchema = z.object({
  startedAt: z.string(),
  finishedAt: z.string(),
  messages: z.number().describe('Messages purged.'),
  files: z.number().describe('Files purged (rows and their stored data).'),
  categories: z.array(
    z.object({
      categoryId: z.number(),
      category: z.string(),
      retentionDays: z.number(),
      cutoff: z.string().describe('Messages and files created before this were eligible.'),
      held: z.boolean().describe('An active legal hold on the whole category stopped its purge.'),
      messages: z.number(),
      files: z.number(),
      rooms: z.array(z.object({ roomId: z.number(), messages: z.number(), files: z.number() })),
    }),
  ),
});

const holdSchema = z.object({
  id: z.number(),
  roomId: z.number().nullable(),
  categoryId: z.number().nullable(),
  userId: z.number().nullable(),
  from: z.number().nullable(),
  to: z.number().nullable(),
  reason: z.string(),
  placedBy: z.string(),
  placedAt: z.number(),
  releasedBy: z.string().nullable(),
  releasedAt: z.number().nullable(),
  releaseReason: z.string().nullable(),
});

const searchResultSchema = z.object({
  records: z
    .array(z.record(z.string(), z.unknown()))
    .describe('Records in the JSON-lines format, with user and room details, oldest first.'),
  nextAfterId: z.number().nullable().describe('`afterId` for the next page; null on the last.'),
});

const exportResultSchema = z.object({
  format: z.enum(['xml', 'jsonl']),
  file: z.string(),
  path: z.string(),
  records: z.number(),
  firstRecordId: z.number().nullable(),
  lastRecordId: z.number().nullable(),
  sha256: z.string(),
});

const adapterStatusSchema = z.object({
  name: z.string(),
  type: z.string(),
  enabled: z.boolean(),
  cursor: z.number().nullable(),
  behind: z.number().nullable(),
  pending: z.object({ start: z.number(), end: z.number() }).nullable(),
  runs: z.number(),
  recordsExported: z.number(),
  lastRunAt: z.string().nullable(),
  lastSuccessAt: z.string().nullable(),
  lastError: z.string().nullable(),
  lastErrorAt: z.string().nullable(),
});

export const complianceStatusSchema = z.object({
  backlog: z.number().describe('Records waiting in the chat store outbox.'),
  store: z.object({ available: z.boolean(), error: z.string().nullable() }),
  captured: z.number().nullable().describe('Records in the compliance store.'),
  lastRecordId: z.number().nullable(),
  lastCaptureAt: z.string().nullable(),
  lastError: z.string().nullable(),
  runInterval: z.number().describe('Seconds between adapter runs in effect.'),
  adapters: z.array(adapterStatusSchema),
  lastPurge: purgeSchema.nullable().optional(),
  worker: z
    .object({
      state: z.enum(['running', 'restarting', 'stopped']),
      threadId: z.number().nullable(),
      restarts: z.number(),
      lastExit: z.string().nullable(),
      lastExitAt: z.string().nullable(),
    })
    .optional()
    .describe('The worker thread: running, or restarting after it died (with backoff).'),
});

/** /api/v1/compliance: configuration, status and an immediate run (administrators only). */
export function complianceRoutes(control?: ComplianceControl): AnyRoute[] {
  const worker = () => {
    if (!control) throw new ComplianceUnavailableError();
    return control;
  };
  return [
    defineRoute({
      method: 'GET',
      url: '/api/v1/compliance/config',
      summary: 'Compliance configuration: RunInterval and adapters (administrators)',
      tags: ['compliance'],
      auth: 'admin',
      response: { status: 200, description: 'The configuration.', schema: complianceConfigSchema },
      handler: ({ domain, actor }) => getComplianceConfig(domain, actor),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/api/v1/compliance/config',
      summary: 'Change the compliance configuration (administrators)',
      description:
        'Keys given replace the stored ones; `adapters` is replaced as a whole list. The change is itself captured (COMPLIANCE_CONFIG_CHANGED).',
      tags: ['compliance'],
      auth: 'admin',
      audit: 'compliance.set',
      body: complianceConfigPatchSchema,
      response: {
        status: 200,
        description: 'The configuration after the change.',
        schema: complianceConfigSchema,
      },
      handler: ({ domain, actor, body }) => setComplianceConfig(domain, actor, body),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/v1/compliance/status',
      summary: 'Compliance backlog, store health, last run, adapter cursors and errors',
      tags: ['compliance'],
      auth: 'admin',
      response: { status: 200, description: 'The status.', schema: complianceStatusSchema },
      handler: async ({ actor }) => {
        requireAdmin(actor);
        return worker().status();
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/v1/compliance/run',
      summary: 'Drain the outbox and run every enabled adapter now (administrators)',
      tags: ['compliance'],
      auth: 'admin',
      audit: 'compliance.run',
      response: {
        status: 200,
        description: 'The status after the run.',
        schema: complianceStatusSchema,
      },
      handler: async ({ actor }) => {
        requireAdmin(actor);
        const w = worker();
        // A failed step is reported in the status (store.error, adapters[].lastError).
        await w.runNow().catch(() => undefined);
        return w.status();
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/v1/compliance/purge',
      summary: 'Purge compliance records past the retention period now (administrators)',
      description:
        'Deletes, in batches, records older than `retentionDays` that every enabled adapter has exported and no active legal hold covers. Captured as COMPLIANCE_PURGED. Also runs hourly on its own.',
      tags: ['compliance'],
      auth: 'admin',
      response: { status: 200, description: 'What the purge did.', schema: purgeSchema },
      handler: ({ actor }) => purgeNow(actor, worker()),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/v1/retention/purge',
      summary:
        "Purge chat-store messages past their category's retention period now (administrators)",
      description:
        "Deletes, in batches, messages and files older than their category's `retentionDays` (with their search data), except what an active legal hold covers; a hold on a category or room stops all purging there. Each batch is captured as MESSAGES_PURGED per room. Also runs every PERCH_RETENTION_INTERVAL_MS (hourly). Answers 503 compliance_unavailable when the holds cannot be read.",
      tags: ['compliance'],
      auth: 'admin',
      audit: 'retention.purge',
      body: retentionPurgeInputSchema.optional(),
      response: { status: 200, description: 'What the purge did.', schema: retentionResultSchema },
      handler: ({ domain, actor, body }) =>
        purgeRetentionNow(domain, actor, () => worker().listHolds(false), body),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/v1/compliance/holds',
      summary: 'Legal holds: the active ones, or all with ?released=true (administrators)',
      tags: ['compliance'],
      auth: 'admin',
      query: z.object({ released: z.enum(['true', 'false']).default('false') }).strict(),
      response: { status: 200, description: 'The holds.', schema: z.array(holdSchema) },
      handler: ({ actor, query }) => listHolds(actor, worker(), query.released === 'true'),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/v1/compliance/holds',
      summary: 'Place a legal hold on a room, a user and/or a time range (administrators)',
      description:
        'Records matching every criterion given are never purged while the hold is active. Captured as LEGAL_HOLD_PLACED.',
      tags: ['compliance'],
      auth: 'admin',
      body: holdInputSchema,
      response: { status: 201, description: 'The hold.', schema: holdSchema },
      handler: ({ domain, actor, body }) => placeHold(domain, actor, worker(), body),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/v1/compliance/holds/:id/release',
      summary: 'Release a legal hold (administrators)',
      description:
        'The hold stays listed with who released it and why. Captured as LEGAL_HOLD_RELEASED.',
      tags: ['compliance'],
      auth: 'admin',
      params: z.object({ id: z.coerce.number().int().positive() }),
      body: z.object({ reason: z.string().optional() }).strict().optional(),
      response: { status: 200, description: 'The released hold.', schema: holdSchema },
      handler: ({ domain, actor, params, body }) =>
        releaseHold(domain, actor, worker(), params.id, body),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/v1/compliance/search',
      summary: 'eDiscovery: search the compliance store (administrators)',
      description:
        'By user, room, time range, event types and text; covers everything captured, including posts in history-off categories and the originals of removed or replaced messages. Captured as COMPLIANCE_SEARCHED.',
      tags: ['compliance'],
      auth: 'admin',
      body: searchInputSchema,
      response: { status: 200, description: 'One page of records.', schema: searchResultSchema },
      handler: ({ domain, actor, body }) => searchCompliance(domain, actor, worker(), body),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/v1/compliance/export',
      summary: 'eDiscovery: export every matching record to a file (administrators)',
      description:
        "Same criteria as search; writes one file in the XML adapter's Lync format or JSON lines under `<compliance output folder>/ediscovery/`. Captured as COMPLIANCE_EXPORTED.",
      tags: ['compliance'],
      auth: 'admin',
      body: exportInputSchema,
      response: { status: 201, description: 'The file written.', schema: exportResultSchema },
      handler: ({ domain, actor, body }) => exportCompliance(domain, actor, worker(), body),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/v1/compliance/exports/:file',
      summary: 'eDiscovery: download an export file (administrators)',
      description:
        'The `file` that POST /api/v1/compliance/export answered, from any front end (in a pool exports are in the shared file store). `404 export_not_found` for any other name.',
      tags: ['compliance'],
      auth: 'admin',
      params: z.object({ file: z.string().min(1).max(200) }),
      response: {
        status: 200,
        description: 'The export file (XML or JSON lines), as an attachment.',
        contentType: 'application/octet-stream',
      },
      handler: async ({ actor, params, reply }) => {
        requireAdmin(actor);
        if (!exportFileName.test(params.file)) throw new ExportNotFoundError();
        const handle = await fs.promises.open(worker().exportPath(params.file), 'r').catch(() => {
          throw new ExportNotFoundError();
        });
        const { size } = await handle.stat();
        return reply
          .code(200)
          .header(
            'content-type',
            params.file.endsWith('.xml') ? 'application/xml' : 'application/x-ndjson',
          )
          .header('content-length', String(size))
          .header('content-disposition', `attachment; filename="${params.file}"`)
          .header('cache-control', 'private, no-store')
          .send(handle.createReadStream());
      },
    }),
  ];
}
