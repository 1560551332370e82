import path from 'node:path';
import { z } from 'zod';
import { MAX_ACTIVE_FRONT_ENDS } from '../domain/pools/commands.js';
import { storeUrlSchema } from '../store/store-url.js';

/** Front ends of one pool, active and idle together (Lync: 4 active + 4 standby). */
export const MAX_FRONT_ENDS_PER_POOL = 8;

/** The only topology format version this Perch reads. */
export const TOPOLOGY_VERSION = 1;

const name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits and . _ - only, starting with one');

const absolutePath = z
  .string()
  .min(1)
  .refine((p) => path.isAbsolute(p), 'must be an absolute path');

const storeUrl = storeUrlSchema(
  'a store URL is postgres://user@host:port/database or sqlite:///path/file.db',
);

const siteSchema = z
  .object({
    name,
    description: z.string().max(256).optional(),
    /** The pool that users homed in this site use unless told otherwise. */
    defaultPool: name,
  })
  .strict();

const storeSchema = z
  .object({
    name,
    /** chat: a pool's chat store; compliance: its compliance store; backup: its disaster-recovery copy. */
    kind: z.enum(['chat', 'compliance', 'backup']),
    url: storeUrl,
  })
  .strict();

const frontEndSchema = z
  .object({
    name,
    /** The machine it runs on: what `perch serve --topology F --host NAME` matches. */
    host: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'a host name (letters, digits, . and -)'),
    /** Interface the listener binds to. */
    address: z.string().min(1).default('0.0.0.0'),
    port: z.number().int().min(1).max(65535),
    /** Port of its XMPP client listener (docs/xmpp.md); omitted: no XMPP gateway there. */
    xmppPort: z.number().int().min(1).max(65535).optional(),
    /** Where clients reach it; default http(s)://host:port. */
    publicUrl: z.string().url().optional(),
    /** Its own data folder (token secret; the file store when the pool names none). */
    dataDir: absolutePath.optional(),
    /** A stretched pool's front end may stand in another site than its pool's. */
    site: name.optional(),
  })
  .strict();

const tlsSchema = z.object({ cert: absolutePath, key: absolutePath }).strict();

const poolSchema = z
  .object({
    name,
    site: name,
    edition: z.enum(['standard', 'enterprise']),
    chatStore: name,
    complianceStore: name.optional(),
    /** Disaster recovery: the chat store's asynchronous replica in the backup site. */
    backupStore: name.optional(),
    /** The second site: its front ends stay idle until `perch pool failover`. */
    backupSite: name.optional(),
    /** The compliance database on the backup store's server (a replica until a failover). */
    backupComplianceStore: name.optional(),
    /** The backup site's copy of the file store: what its front ends use. */
    backupFileStore: absolutePath.optional(),
    /** Folder of uploaded files shared by the pool's front ends. */
    fileStore: absolutePath.optional(),
    tls: tlsSchema.optional(),
    /** The LDAP directory connection file its front ends sync users and groups from. */
    directory: absolutePath.optional(),
    frontEnds: z.array(frontEndSchema).min(1).max(MAX_FRONT_ENDS_PER_POOL),
    /** The front ends that serve clients (at most four); omitted: publish leaves the set as it is. */
    activeServers: z.array(name).min(1).max(MAX_ACTIVE_FRONT_ENDS).optional(),
  })
  .strict();

/** A Perch deployment: sites, stores, and pools of front ends (Lync's Topology Builder document). */
export const topologySchema = z
  .object({
    version: z.literal(TOPOLOGY_VERSION),
    sites: z.array(siteSchema).min(1),
    stores: z.array(storeSchema).min(1),
    pools: z.array(poolSchema).min(1),
  })
  .strict();

export type Topology = z.infer<typeof topologySchema>;
export type TopologyPool = Topology['pools'][number];
export type TopologyFrontEnd = TopologyPool['frontEnds'][number];
export type TopologyStore = Topology['stores'][number];
