import path from 'node:path';
import { parseStoreUrl, type StoreLocation } from '../store/store-url.js';
import type { Config } from './config.js';

/** Where a server keeps its data, as `perch serve` derives it from its configuration. */
export interface StoragePaths {
  chat: StoreLocation;
  compliance: StoreLocation;
  /** Uploaded file bodies. */
  fileStoreDir: string;
  /** Compliance adapter output and eDiscovery exports. */
  complianceOutputDir: string;
}

/**
 * The chat store, compliance store, file store and compliance output folder of a configuration,
 * with the defaults `perch serve` applies; `perch backup` finds the same places through it.
 */
export function storagePaths(config: Config): StoragePaths {
  const chat: StoreLocation =
    config.storeUrl === undefined
      ? { dialect: 'sqlite', file: path.join(config.dataDir, 'perch.db') }
      : parseStoreUrl(config.storeUrl);
  const compliance: StoreLocation =
    config.complianceStoreUrl === undefined
      ? { dialect: 'sqlite', file: path.join(config.dataDir, 'compliance.db') }
      : parseStoreUrl(config.complianceStoreUrl);
  const fileStoreDir = path.resolve(config.fileStoreDir ?? path.join(config.dataDir, 'files'));
  const pooled =
    config.pool !== undefined && config.frontEnd !== undefined && chat.dialect === 'postgres';
  // A pool sharing a PostgreSQL compliance store keeps its compliance output in the shared file
  // store by default: the lease holder's adapter output and every front end's eDiscovery exports
  // are in one folder that any front end can read and carry on. (Front ends with compliance
  // stores of their own would overwrite each other's files there: they keep theirs apart.)
  const sharedCompliance = pooled && compliance.dialect === 'postgres';
  const complianceOutputDir = path.resolve(
    config.complianceOutputDir ??
      path.join(sharedCompliance ? fileStoreDir : config.dataDir, 'compliance'),
  );
  return { chat, compliance, fileStoreDir, complianceOutputDir };
}
