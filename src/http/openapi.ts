import { z } from 'zod';
import { errorBodySchema } from './errors.js';
import type { AnyRoute } from './registry.js';

type JsonSchema = Record<string, unknown>;

/** JSON Schema for an OpenAPI 3.1 document (which speaks draft 2020-12 natively). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    unrepresentable: 'any',
  }) as JsonSchema;
  delete out['$schema'];
  return out;
}

/** `/api/v1/rooms/:id` → `/api/v1/rooms/{id}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

function operationId(route: AnyRoute): string {
  const words = route.url
    .replace(/^\/api\/v1/, '')
    .split(/[/.-]/)
    .filter(Boolean)
    .map((w) => (w.startsWith(':') ? `by-${w.slice(1)}` : w))
    .flatMap((w) => w.split('-'));
  return [route.method.toLowerCase(), ...words]
    .map((w, i) => (i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1)))
    .join('');
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input');
  const props = (s['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = new Set((s['required'] ?? []) as string[]);
  return Object.entries(props).map(([name, prop]) => {
    const { description, ...rest } = prop;
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

const errorRef = { $ref: '#/components/responses/Error' };

function errorResponses(route: AnyRoute): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (route.params || route.query || route.body || route.bodyType === 'binary')
    out['400'] = errorRef;
  if (route.auth !== 'none') {
    out['401'] = errorRef;
    out['403'] = errorRef;
  }
  if (route.params) out['404'] = errorRef;
  if (route.body || route.bodyType === 'binary') {
    out['413'] = errorRef;
    out['415'] = errorRef;
  }
  out['default'] = errorRef;
  return out;
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

/** Builds the OpenAPI 3.1 document describing every route of the registry. */
export function buildOpenApi(routes: AnyRoute[], info: OpenApiInfo): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Set<string>();
  for (const route of routes) {
    const path = openApiPath(route.url);
    route.tags.forEach((t) => tags.add(t));
    const op: Record<string, unknown> = {
      operationId: operationId(route),
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: route.tags,
      security: route.auth === 'none' ? [] : [{ bearer: [] }],
      'x-perch-auth': route.auth,
    };
    const params = [...parameters(route.params, 'path'), ...parameters(route.query, 'query')];
    if (params.length > 0) op['parameters'] = params;
    if (route.bodyType === 'binary') {
      op['requestBody'] = {
        required: true,
        content: {
          'application/octet-stream': { schema: { type: 'string', contentMediaType: '*/*' } },
        },
      };
    } else if (route.body) {
      op['requestBody'] = {
        required: !route.body.safeParse(undefined).success,
        content: { 'application/json': { schema: jsonSchema(route.body, 'input') } },
      };
    }
    const contentType =
      route.response.contentType === undefined ? 'application/json' : route.response.contentType;
    const ok: Record<string, unknown> = { description: route.response.description };
    if (contentType !== null && route.response.status !== 204) {
      ok['content'] = {
        [contentType]: route.response.schema
          ? { schema: jsonSchema(route.response.schema, 'output') }
          : {},
      };
    }
    op['responses'] = { [String(route.response.status)]: ok, ...errorResponses(route) };
    (paths[path] ??= {})[route.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    tags: [...tags].sort().map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'The token returned by POST /api/v1/sessions.',
        },
      },
      schemas: { Error: jsonSchema(errorBodySchema, 'output') },
      responses: {
        Error: {
          description:
            'A failure: `{ error: { code, message, details? } }`. Codes are stable; see the catalogue.',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}
