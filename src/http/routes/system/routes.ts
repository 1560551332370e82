import { z } from 'zod';
import { defineRoute, type AnyRoute } from '../../registry.js';

export interface HealthReport {
  ok: boolean;
  /** Extra detail merged into the answer, e.g. `{ store: 'ok' }`. */
  checks?: Record<string, unknown>;
}

const healthResponse = z.object({
  status: z.enum(['ok', 'unavailable']),
  edition: z.enum(['standard', 'enterprise']),
  version: z.string(),
  checks: z.record(z.string(), z.unknown()).optional(),
});

export function systemRoutes(opts: {
  version: string;
  edition: 'standard' | 'enterprise';
  health?: () => Promise<HealthReport>;
  openapi: () => Record<string, unknown>;
}): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/healthz',
      summary: 'Liveness and readiness: 200 `{ status: "ok" }`, or 503 when a check fails',
      tags: ['system'],
      auth: 'none',
      response: { status: 200, description: 'Healthy.', schema: healthResponse },
      handler: async ({ request, reply }) => {
        const base = { edition: opts.edition, version: opts.version };
        if (!opts.health) return { status: 'ok', ...base };
        let report: HealthReport;
        try {
          report = await opts.health();
        } catch (err) {
          request.log.warn({ err }, 'health check failed');
          report = { ok: false };
        }
        const body = {
          status: report.ok ? 'ok' : 'unavailable',
          ...base,
          ...(report.checks ? { checks: report.checks } : {}),
        };
        return report.ok ? body : reply.code(503).send(body);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/openapi.json',
      summary: 'This description of the HTTP API (OpenAPI 3.1)',
      tags: ['system'],
      auth: 'none',
      response: { status: 200, description: 'The OpenAPI document.' },
      handler: async () => opts.openapi(),
    }),
  ];
}
