// Several Enterprise Edition pools on loopback for tests: one front end per pool (already
// started, each on its own chat-store database), described in one topology file and published
// with the real CLI, so that the pool-link secret and every pool's front ends are in each store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { runPerch } from '../cli/helpers.js';
import type { TestServer } from './server.js';

export interface PublishedPools {
  /** Folder holding the topology file and each pool's file store; remove it afterwards. */
  dir: string;
  /** The topology file. */
  file: string;
  /** What the first `perch topology publish --json` printed and returned. */
  publish: Awaited<ReturnType<typeof runPerch>>;
}

/**
 * Writes a topology with one pool per entry of `pools` (name → its front end and chat-store
 * URL), all in site `rome`, the first pool its default, and publishes it.
 */
export async function publishPools(
  pools: Record<string, { fe: TestServer; storeUrl: string }>,
): Promise<PublishedPools> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-pools-'));
  const file = path.join(dir, 'topology.yaml');
  const names = Object.keys(pools);
  fs.writeFileSync(
    file,
    stringify({
      version: 1,
      sites: [{ name: 'rome', defaultPool: names[0] }],
      stores: names.map((pool) => ({
        name: `${pool}-store`,
        kind: 'chat',
        url: pools[pool]!.storeUrl,
      })),
      pools: names.map((pool) => {
        const fe = pools[pool]!.fe;
        const fileStore = path.join(dir, `${pool}-files`);
        fs.mkdirSync(fileStore, { mode: 0o700 });
        return {
          fileStore,
          name: pool,
          site: 'rome',
          edition: 'enterprise',
          chatStore: `${pool}-store`,
          frontEnds: [
            {
              name: `${pool}-fe1`,
              host: `${pool}.test`,
              address: '127.0.0.1',
              port: Number(new URL(fe.url).port),
              publicUrl: fe.url,
            },
          ],
        };
      }),
    }),
  );
  // Published while the front ends run: they read it at each forwarded call.
  const publish = await runPerch(['topology', 'publish', '--file', file, '--json']);
  return { dir, file, publish };
}
