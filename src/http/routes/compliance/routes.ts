import { z } from 'zod';
import type { ComplianceThread } from '../../../compliance/compliance-thread.js';
import {
  complianceConfigPatchSchema,
  complianceConfigSchema,
  getComplianceConfig,
  setComplianceConfig,
} from '../../../domain/compliance/config.js';
import { requireAdmin } from '../../../domain/directory/commands.js';
import { ComplianceUnavailableError } from '../../../errors.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

/** What the routes need from the compliance worker. */
export type ComplianceControl = Pick<ComplianceThread, 'status' | 'runNow' | 'call'>;

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
  ];
}
