import type { Config } from '../config/config.js';
import { TopologyFrontEndError } from '../errors.js';
import { pgUrlWithHosts } from '../store/store-url.js';
import type { Topology, TopologyFrontEnd, TopologyPool } from './schema.js';

/** A front end of a topology and the configuration it gives the server. */
export interface TopologyFrontEndConfig {
  pool: TopologyPool;
  frontEnd: TopologyFrontEnd;
  /** Raw config values, as readEnv() gives them: PERCH_* variables override them. */
  settings: Partial<Record<keyof Config, string>>;
}

/**
 * The front end that `perch serve --topology F --host H [--front-end N]` runs: the one on host H
 * (or named N), with its pool's stores, file store and TLS files, its port and bind address. A
 * host with several front ends needs --front-end. Standard pools run as Standard Edition.
 */
export function frontEndFromTopology(
  topology: Topology,
  select: { host?: string; frontEnd?: string },
): TopologyFrontEndConfig {
  const all = topology.pools.flatMap((pool) =>
    pool.frontEnds.map((frontEnd) => ({ pool, frontEnd })),
  );
  const found = all.filter(
    ({ frontEnd }) =>
      (select.host === undefined || frontEnd.host.toLowerCase() === select.host.toLowerCase()) &&
      (select.frontEnd === undefined || frontEnd.name === select.frontEnd),
  );
  const list = all.map(({ frontEnd: f }) => `${f.name} on ${f.host}`).join(', ');
  if (found.length === 0) {
    const asked = [
      select.host === undefined ? undefined : `host ${select.host}`,
      select.frontEnd === undefined ? undefined : `front end ${select.frontEnd}`,
    ]
      .filter(Boolean)
      .join(' and ');
    throw new TopologyFrontEndError(`the topology has no ${asked} (it has ${list})`, {
      frontEnds: all.map(({ frontEnd: f }) => ({ name: f.name, host: f.host })),
    });
  }
  if (found.length > 1) {
    throw new TopologyFrontEndError(
      `host ${select.host} runs ${found.length} front ends (${found.map((f) => f.frontEnd.name).join(', ')}); name one with --front-end`,
      { frontEnds: found.map(({ frontEnd: f }) => f.name) },
    );
  }
  const { pool, frontEnd } = found[0]!;
  const store = (name: string | undefined) => topology.stores.find((s) => s.name === name)?.url;
  const scheme = pool.tls ? 'https' : 'http';
  const hostInUrl = frontEnd.host.includes(':') ? `[${frontEnd.host}]` : frontEnd.host;
  // A pool with a backup site: every front end is given the replica's hosts too, so that after
  // `perch pool failover` promotes it they find it as they find a promoted standby; the backup
  // site's front ends use that site's copy of the file store.
  const withBackup = (url: string | undefined, backup: string | undefined) =>
    url !== undefined && backup !== undefined && pool.backupSite !== undefined
      ? pgUrlWithHosts(url, backup)
      : url;
  const inBackupSite = pool.backupSite !== undefined && frontEnd.site === pool.backupSite;
  const settings: Partial<Record<keyof Config, string>> = {
    host: frontEnd.address,
    port: String(frontEnd.port),
    xmppPort: frontEnd.xmppPort === undefined ? undefined : String(frontEnd.xmppPort),
    storeUrl: withBackup(store(pool.chatStore), store(pool.backupStore)),
    complianceStoreUrl: withBackup(store(pool.complianceStore), store(pool.backupComplianceStore)),
    dataDir: frontEnd.dataDir,
    tlsCertFile: pool.tls?.cert,
    tlsKeyFile: pool.tls?.key,
    fileStoreDir: inBackupSite ? pool.backupFileStore : pool.fileStore,
    directoryFile: pool.directory,
    ...(pool.edition === 'enterprise'
      ? {
          pool: pool.name,
          frontEnd: frontEnd.name,
          publicUrl: frontEnd.publicUrl ?? `${scheme}://${hostInUrl}:${frontEnd.port}`,
          // Where an idle front end sends XMPP clients (see-other-host): its pool's listeners.
          xmppPeers:
            pool.frontEnds
              .filter((f) => f.xmppPort !== undefined)
              .map(
                (f) => `${f.name}=${f.host.includes(':') ? `[${f.host}]` : f.host}:${f.xmppPort}`,
              )
              .join(',') || undefined,
        }
      : {}),
  };
  for (const key of Object.keys(settings) as (keyof Config)[]) {
    if (settings[key] === undefined) delete settings[key];
  }
  return { pool, frontEnd, settings };
}
