import { z } from 'zod';
import type { Store } from '../../store/store.js';
import { requireAdmin } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';

/** The settings key under which the compliance configuration is kept in the chat store. */
export const COMPLIANCE_SETTING = 'compliance';

const MIN_INTERVAL = 60;
const MAX_INTERVAL = 30 * 24 * 3600;

/** Lync's RunInterval syntax `d.hh:mm:ss` (or `hh:mm:ss`) as seconds; numbers are seconds. */
function parseInterval(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(v.trim());
  if (!m) return v;
  return Number(m[1] ?? 0) * 86_400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

const nameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lower-case letters, digits, - and _, at most 40');

export const complianceAdapterSchema = z
  .object({
    name: nameSchema.describe('Adapter name (Lync AdapterName); also prefixes its output files.'),
    type: z
      .enum(['xml', 'jsonl', 'module'])
      .describe('`xml` (Lync XmlAdapter format), `jsonl`, or `module` (a custom adapter).'),
    module: nameSchema
      .optional()
      .describe('For `module`: file name (without .js/.mjs) in the compliance adapter folder.'),
    enabled: z.boolean().default(true),
    outputDirectory: z
      .string()
      .min(1)
      .max(200)
      .refine(
        (v) => !v.startsWith('/') && !v.split(/[\\/]/).some((p) => p === '..' || p === ''),
        'a relative path inside the compliance output folder',
      )
      .optional()
      .describe(
        'Folder for this adapter, relative to the compliance output folder; defaults to the name.',
      ),
    oneChatRoomPerOutputFile: z.boolean().default(false),
    addChatRoomDetails: z.boolean().default(false),
    addUserDetails: z.boolean().default(false),
    createFileAttachmentsManifest: z.boolean().default(false),
    options: z
      .record(z.string(), z.unknown())
      .default({})
      .describe('Free-form settings handed to a custom adapter.'),
  })
  .strict()
  .refine((a) => a.type !== 'module' || a.module !== undefined, {
    message: 'a module adapter needs `module`',
    path: ['module'],
  })
  .refine((a) => (a.outputDirectory ?? a.name).split(/[\\/]/)[0] !== 'ediscovery', {
    message: 'the `ediscovery` folder holds eDiscovery exports; pick another output folder',
    path: ['outputDirectory'],
  });

export type ComplianceAdapterConfig = z.infer<typeof complianceAdapterSchema>;

export const complianceConfigSchema = z
  .object({
    runInterval: z
      .preprocess(parseInterval, z.number().int().min(MIN_INTERVAL).max(MAX_INTERVAL))
      .default(900)
      .describe(
        'Seconds between adapter runs (Lync RunInterval, also `d.hh:mm:ss`), 1 minute – 30 days.',
      ),
    uriDomain: z
      .string()
      .regex(/^[A-Za-z0-9.-]{1,100}$/)
      .default('perch.local')
      .describe('Domain used in the user and channel URIs of the XML output.'),
    maxRecordsPerRun: z.number().int().min(1).max(1_000_000).default(100_000),
    retentionDays: z
      .number()
      .int()
      .min(1)
      .max(36_500)
      .nullable()
      .default(null)
      .describe(
        'Days compliance records are kept; older ones are purged (never under legal hold, never before every enabled adapter exported them). null: kept forever.',
      ),
    adapters: z
      .array(complianceAdapterSchema)
      .max(8)
      .default([])
      .refine((list) => new Set(list.map((a) => a.name)).size === list.length, 'names must differ')
      .describe('Adapters that export captured records; none means records are only captured.'),
  })
  .strict();

export type ComplianceConfig = z.infer<typeof complianceConfigSchema>;
export const complianceConfigPatchSchema = z
  .object({
    runInterval: z.unknown().optional(),
    uriDomain: z.unknown().optional(),
    maxRecordsPerRun: z.unknown().optional(),
    retentionDays: z.unknown().optional(),
    adapters: z.unknown().optional(),
  })
  .strict();

/** The stored configuration (defaults when none is stored or it no longer validates). */
export async function readComplianceConfig(
  store: Pick<Store, 'getSettings'>,
): Promise<ComplianceConfig> {
  const raw = (await store.getSettings())[COMPLIANCE_SETTING];
  if (raw !== undefined) {
    const parsed = complianceConfigSchema.safeParse(JSON.parse(raw));
    if (parsed.success) return parsed.data;
  }
  return complianceConfigSchema.parse({});
}

/** The compliance configuration (administrators only). */
export async function getComplianceConfig(d: Domain, actor: Actor): Promise<ComplianceConfig> {
  requireAdmin(actor);
  return readComplianceConfig(d.store);
}

/**
 * Changes the compliance configuration (administrators only): top-level keys given replace the
 * stored ones (`adapters` as a whole list). The change itself is captured for compliance.
 */
export async function setComplianceConfig(
  d: Domain,
  actor: Actor,
  patch: unknown,
): Promise<ComplianceConfig> {
  requireAdmin(actor);
  const p = parseInput(complianceConfigPatchSchema, patch, 'compliance configuration');
  const before = await readComplianceConfig(d.store);
  const after = parseInput(
    complianceConfigSchema,
    { ...before, ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) },
    'compliance configuration',
  );
  await d.store.transaction(async (tx) => {
    await tx.setSetting(COMPLIANCE_SETTING, JSON.stringify(after));
    await tx.recordActivity({
      kind: 'COMPLIANCE_CONFIG_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: { before, after },
    });
  });
  return after;
}
