import crypto from 'node:crypto';
import { openPgPool, PgPoolRegistry } from '../cluster/registry.js';
import { POOL_LINK_SECRET } from '../domain/pools/link.js';
import { TopologyNotPublishedError } from '../errors.js';
import { installStore, describeLocation, type InstallResult } from '../store/install.js';
import { openStore } from '../store/open-store.js';
import type { PublishedTopology } from '../store/store.js';
import { parseStoreUrl, redact, type StoreLocation } from '../store/store-url.js';
import type { Topology } from './schema.js';

/** One thing publish did or found already done. */
export interface PublishStep {
  kind: 'store' | 'topology' | 'active set' | 'pool link';
  subject: string;
  changed: boolean;
  detail: string;
  install?: InstallResult;
}

/** JSON with keys in a stable order, so that the same topology always has the same digest. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** The document recorded in the chat stores: the topology without store passwords, and its digest. */
export function topologyRecord(topology: Topology): { document: string; digest: string } {
  const safe = {
    ...topology,
    stores: topology.stores.map((s) => ({ ...s, url: redact(s.url) })),
  };
  // Kept in the file's order for people; the digest is over sorted keys, so order never matters.
  const document = JSON.stringify(safe);
  const digest = crypto
    .createHash('sha256')
    .update(JSON.stringify(canonical(safe)))
    .digest('hex');
  return { document, digest };
}

/**
 * `perch topology publish` (Publish-CsTopology with Install-CsDatabase): installs or migrates
 * every store, records the topology in each pool's chat store, and sets each enterprise pool's
 * active set where the topology gives one. Idempotent: run again on the same topology, every step
 * reports `changed: false`. Reports each step as it finishes.
 */
export async function publishTopology(
  topology: Topology,
  report: (step: PublishStep) => void,
  now = Date.now(),
): Promise<PublishStep[]> {
  const steps: PublishStep[] = [];
  const step = (s: PublishStep) => {
    steps.push(s);
    report(s);
  };
  // The backup site's stores are replicas: their schema arrives by replication, and a standby
  // refuses writes. Installed only when none of their hosts is a standby (a promoted replica).
  const replicas = new Set(
    topology.pools
      .filter((p) => p.backupSite !== undefined)
      .flatMap((p) => [p.backupStore, p.backupComplianceStore]),
  );
  for (const store of topology.stores) {
    if (replicas.has(store.name)) {
      const { hostStates } = await import('../store/postgres/connect.js');
      const hosts = await hostStates(store.url);
      const standby = hosts.find((h) => h.role === 'standby');
      if (standby) {
        step({
          kind: 'store',
          subject: store.name,
          changed: false,
          detail: `replica on ${standby.host}: its schema arrives by replication`,
        });
        continue;
      }
    }
    const install = await installStore(
      store.kind === 'compliance' ? 'compliance' : 'chat',
      parseStoreUrl(store.url),
    );
    step({
      kind: 'store',
      subject: store.name,
      changed: install.state !== 'up-to-date',
      detail:
        install.state === 'up-to-date'
          ? `${install.store} up to date (schema ${install.schema})`
          : `${install.store} ${install.state}${install.applied.length > 0 ? ` (${install.applied.join(', ')})` : ''}`,
      install,
    });
  }

  const record = topologyRecord(topology);
  const storeUrl = new Map(topology.stores.map((s) => [s.name, s.url]));
  for (const pool of topology.pools) {
    const location = parseStoreUrl(storeUrl.get(pool.chatStore)!);
    const store = openStore(location, { poolSize: 1 });
    try {
      const current = await store.getPublishedTopology();
      if (current?.digest === record.digest) {
        step({
          kind: 'topology',
          subject: pool.name,
          changed: false,
          detail: `revision ${current.revision} is this topology`,
        });
      } else {
        const published = await store.publishTopology(record, now);
        step({
          kind: 'topology',
          subject: pool.name,
          changed: true,
          detail: `recorded as revision ${published.revision} in ${describeLocation(location)}`,
        });
      }
    } finally {
      await store.close();
    }

    if (pool.edition !== 'enterprise' || pool.activeServers === undefined) continue;
    if (location.dialect !== 'postgres') continue;
    const registry = new PgPoolRegistry(
      openPgPool(location.connectionString, 1, 'perch-publish'),
      0,
    );
    try {
      await registry.define(pool.name, now);
      const current = (await registry.get(pool.name))?.activeServers ?? null;
      const wanted = pool.activeServers;
      if (current !== null && JSON.stringify(current) === JSON.stringify(wanted)) {
        step({
          kind: 'active set',
          subject: pool.name,
          changed: false,
          detail: `already ${wanted.join(', ')}`,
        });
      } else {
        await registry.setActiveServers(pool.name, wanted, now);
        step({
          kind: 'active set',
          subject: pool.name,
          changed: true,
          detail: `${current === null ? 'none chosen' : current.join(', ')} -> ${wanted.join(', ')}`,
        });
      }
    } finally {
      await registry.close();
    }
  }
  await publishPoolLink(topology, step, now);
  return steps;
}

/**
 * Several enterprise pools: every pool's chat store gets the same pool-link secret, with which
 * their front ends sign the calls they forward to each other (docs/operations/pools.md). A secret
 * one of them already holds is kept, so publishing again changes nothing and forwarded calls in
 * flight stay valid; a pool added later receives it.
 */
async function publishPoolLink(
  topology: Topology,
  step: (s: PublishStep) => void,
  now: number,
): Promise<void> {
  const pools = topology.pools.filter((p) => p.edition === 'enterprise');
  if (pools.length < 2) return;
  const storeUrl = new Map(topology.stores.map((s) => [s.name, s.url]));
  const stores = pools.map((pool) => ({
    pool,
    store: openStore(parseStoreUrl(storeUrl.get(pool.chatStore)!), { poolSize: 1 }),
  }));
  try {
    const held = await Promise.all(stores.map(({ store }) => store.getSecret(POOL_LINK_SECRET)));
    const secret = held.find((h) => h !== undefined) ?? crypto.randomBytes(32);
    for (const [i, { pool, store }] of stores.entries()) {
      if (held[i]?.equals(secret)) {
        step({ kind: 'pool link', subject: pool.name, changed: false, detail: 'secret in place' });
        continue;
      }
      await store.putSecret(POOL_LINK_SECRET, secret, now);
      step({
        kind: 'pool link',
        subject: pool.name,
        changed: true,
        detail: `secret shared with ${pools.length - 1} other pool(s)`,
      });
    }
  } finally {
    for (const { store } of stores) await store.close();
  }
}

/** The topology published in a chat store, parsed; TopologyNotPublishedError when there is none. */
export async function readPublishedTopology(
  location: StoreLocation,
): Promise<PublishedTopology & { topology: unknown }> {
  const store = openStore(location, { poolSize: 1 });
  try {
    const published = await store.getPublishedTopology();
    if (!published) throw new TopologyNotPublishedError(describeLocation(location));
    return { ...published, topology: JSON.parse(published.document) as unknown };
  } finally {
    await store.close();
  }
}
