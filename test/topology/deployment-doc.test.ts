// docs/operations/enterprise-pool.md, "Deploying a pool from a topology, step by step", run as
// written on loopback against a real PostgreSQL: the section's sh blocks are its commands, in
// order. topology.yaml is examples/topology-enterprise.yaml with this test's databases, folders,
// certificate and free ports in place of the example's; the same replacements are made in the
// commands (the example's store URLs, paths and public URLs), and nothing else is changed.
// `perch serve` lines run as background processes; every other line must exit 0.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { documentedCommands, perchOnPath } from '../harness/doc-commands.js';
import { freePort } from '../harness/server.js';
import { testCluster } from '../harness/postgres.js';
import type { Topology } from '../../src/topology/schema.js';
import {
  httpsJson,
  selfSignedCertificate,
  startFromTopology,
  type TopologyFrontEnd,
} from './helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SECTION = '## Deploying a pool from a topology, step by step';

let dir: string;
const servers: TopologyFrontEnd[] = [];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-doc-'));
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the step-by-step deployment of enterprise-pool.md runs as written', async () => {
  const commands = documentedCommands('docs/operations/enterprise-pool.md', SECTION);
  assert.ok(commands.some((c) => c.startsWith('perch topology publish')));
  assert.ok(commands.some((c) => c.startsWith('perch serve --topology')));

  // The loopback deployment: the example topology with this machine's values in it.
  const example = parse(
    fs.readFileSync(path.join(repoRoot, 'examples', 'topology-enterprise.yaml'), 'utf8'),
  ) as Topology;
  const replace = new Map<string, string>();
  const cluster = await testCluster();
  const topology = structuredClone(example);
  for (const store of topology.stores) {
    const db = await cluster.createDatabase({ empty: true });
    replace.set(store.url, db.url);
    store.url = db.url;
  }
  const { cert, key } = selfSignedCertificate(dir);
  const files = path.join(dir, 'files');
  fs.mkdirSync(files, { mode: 0o700 });
  for (const pool of topology.pools) {
    replace.set(pool.fileStore!, files);
    pool.fileStore = files;
    replace.set(pool.tls!.cert, cert);
    replace.set(pool.tls!.key, key);
    pool.tls = { cert, key };
    for (const fe of pool.frontEnds) {
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      replace.set(fe.publicUrl!, url);
      replace.set(fe.dataDir!, path.join(dir, fe.name));
      Object.assign(fe, {
        address: '127.0.0.1',
        port,
        publicUrl: url,
        dataDir: path.join(dir, fe.name),
      });
    }
  }
  fs.writeFileSync(path.join(dir, 'topology.yaml'), stringify(topology));
  const local = (command: string) =>
    [...replace].reduce((c, [from, to]) => c.split(from).join(to), command);

  // `perch` on PATH, as an installed Perch would be.
  const bin = perchOnPath(dir);
  const adminPassword = 'Pw1!doc-deployment';
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PERCH_') && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  }
  Object.assign(env, {
    PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
    PERCH_ADMIN_PASSWORD: adminPassword,
    PERCH_POOL_HEARTBEAT_MS: '200',
    XDG_CONFIG_HOME: path.join(dir, 'config'),
  });

  // The commands between two `perch serve` lines run as one bash script (exports carry on),
  // stopping at the first that fails.
  const runScript = (lines: string[]) => {
    if (lines.length === 0) return;
    const script = ['set -euo pipefail', ...lines.map(local)].join('\n');
    const r = spawnSync('bash', ['-c', script], {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(
      r.status,
      0,
      `the documented commands failed:\n${script}\n${r.stdout}\n${r.stderr}`,
    );
    return r;
  };
  let pending: string[] = [];
  const outputs: string[] = [];
  for (const command of commands) {
    if (!command.startsWith('perch serve ')) {
      pending.push(command);
      continue;
    }
    const r = runScript(pending);
    if (r) outputs.push(r.stdout);
    pending = [];
    const args = local(command).split(/\s+/).slice(2);
    const feName = args[args.indexOf('--front-end') + 1]!;
    const fe = topology.pools.flatMap((p) => p.frontEnds).find((f) => f.name === feName)!;
    servers.push(
      await startFromTopology(
        args.map((a) => (a === 'topology.yaml' ? path.join(dir, 'topology.yaml') : a)),
        `${fe.publicUrl!}/healthz`,
        fs.readFileSync(cert),
        { PERCH_ADMIN_PASSWORD: adminPassword, PERCH_POOL_HEARTBEAT_MS: '200' },
      ),
    );
  }
  const last = runScript(pending);
  if (last) outputs.push(last.stdout);
  assert.match(outputs.join('\n'), /Published topology\.yaml: \d+ changes\./);

  // The outcome: the pool as the documented commands left it.
  const [fe1, , fe3] = topology.pools[0]!.frontEnds;
  const ca = fs.readFileSync(cert);
  const signIn = await httpsJson(`${fe1!.publicUrl}/api/v1/sessions`, ca, {
    method: 'POST',
    body: { login: 'admin', password: adminPassword },
  });
  assert.equal(signIn.status, 201, JSON.stringify(signIn.body));
  const pool = await httpsJson(`${fe3!.publicUrl}/api/v1/pools/chat1`, ca, {
    token: (signIn.body as { token: string }).token,
  });
  const view = pool.body as {
    activeServers: string[];
    frontEnds: { name: string; state: string }[];
  };
  assert.deepEqual(view.activeServers, ['fe1', 'fe3']);
  assert.deepEqual(
    view.frontEnds.map((f) => [f.name, f.state]),
    [
      ['fe1', 'active'],
      ['fe3', 'active'],
    ],
  );
});
