// eDiscovery exports in an Enterprise Edition pool of two front ends on PostgreSQL (chat and
// compliance stores) sharing only their file store: an export written through one front end is
// downloadable from the other (it is written under the shared file store), and the CLI's
// download, like every other CLI call, moves on from an idle front end to an active one.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApiClient } from '../../src/cli/client.js';
import { stdio } from '../../src/cli/output.js';
import { startCompliancePool, waitFor, type CompliancePool } from '../compliance/pool.js';
import { adminHttp, buildCategory, buildRoom, buildUsers, Http, postMany } from '../e2e/helpers.js';
import { cleanup, tempDir } from '../harness/server.js';
import { cliFor } from './helpers.js';

interface ExportAnswer {
  file: string;
  path: string;
  records: number;
  sha256: string;
}

let pool: CompliancePool;
let work: string;
let admin: Http;

const sha256 = (file: string) =>
  crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

before(async () => {
  pool = await startCompliancePool({}, 'fileStore');
  work = await tempDir('perch-cli-pool-');
  admin = await adminHttp(pool.fe.fe1);
  const users = await buildUsers(pool.fe.fe1, admin, ['alice']);
  await buildCategory(admin, { name: 'c', allowed: ['alice'] });
  const room = await buildRoom(admin, { name: 'r', category: 'c', privacy: 'open' });
  await postMany(new Http(pool.fe.fe2.url, users.alice.token), room.id, 5, (i) => `pooled ${i}`);
  await waitFor('the posts to reach the compliance store', async () => {
    const s = await admin.ok<{ backlog: number; captured: number | null }>(
      'GET',
      '/api/v1/compliance/status',
    );
    return s.backlog === 0 && (s.captured ?? 0) > 0;
  });
});

after(async () => {
  await pool?.close();
  if (work) await cleanup(work);
});

test('an export written through one front end is in the shared file store and downloads from both', async () => {
  const r = await admin.ok<ExportAnswer>('POST', '/api/v1/compliance/export', {
    format: 'jsonl',
    types: ['CHAT'],
  });
  assert.equal(r.records, 5);
  assert.equal(r.path, path.join(pool.sharedDir, 'compliance', 'ediscovery', r.file));
  for (const fe of [pool.fe.fe1, pool.fe.fe2]) {
    const res = await fetch(`${fe.url}/api/v1/compliance/exports/${r.file}`, {
      headers: { authorization: `Bearer ${admin.token}` },
    });
    assert.equal(res.status, 200, fe.url);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(crypto.createHash('sha256').update(body).digest('hex'), r.sha256, fe.url);
  }
  // Not in either front end's own data dir.
  for (const fe of [pool.fe.fe1, pool.fe.fe2]) {
    assert.equal(fs.existsSync(path.join(fe.dataDir, 'compliance', 'ediscovery', r.file)), false);
  }
});

test('the CLI exports and downloads through an idle front end from an active one', async () => {
  const cli = cliFor(pool.fe.fe1, path.join(work, 'config-fe1'));
  const login = await cli(['login', '--user', 'admin', '--password-stdin'], {
    input: pool.fe.fe1.adminPassword,
  });
  assert.equal(login.code, 0, login.stderr);
  await cli.json(['pool', 'active-server', 'set', '--pool', 'pool1', '--servers', 'fe1']);
  const fe2 = pool.fe.fe2;
  await waitFor('fe2 to be idle', async () => {
    const answer = await new Http(fe2.url, admin.token).call('GET', '/api/v1/compliance/status');
    return (answer.body.error as { code?: string } | undefined)?.code === 'front_end_idle';
  });
  const idleMove = new RegExp(
    `${fe2.url} is an idle front end .*active front end fe1 \\(${pool.fe.fe1.url}\\)`,
  );

  // perch compliance search --export --out against idle fe2: the export and its download both
  // go to fe1.
  const viaIdle = cliFor(fe2, path.join(work, 'config-fe2'));
  const idleLogin = await viaIdle(['login', '--user', 'admin', '--password-stdin'], {
    input: fe2.adminPassword,
  });
  assert.equal(idleLogin.code, 0, idleLogin.stderr);
  const out = path.join(work, 'out');
  const run = await viaIdle([
    'compliance',
    'search',
    '--type',
    'CHAT',
    '--export',
    'jsonl',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, idleMove);
  const r = JSON.parse(run.stdout) as ExportAnswer & { downloaded: string };
  assert.equal(r.records, 5);
  assert.equal(r.downloaded, path.join(out, r.file));
  assert.equal(sha256(r.downloaded), r.sha256);

  // A download that is the first call to the idle front end moves on by itself.
  const said: string[] = [];
  const err = stdio.err;
  stdio.err = (text) => said.push(text);
  const client = new ApiClient(fe2.url, admin.token);
  const again = path.join(work, 'again', r.file);
  try {
    await client.download(`/compliance/exports/${r.file}`, again);
  } finally {
    stdio.err = err;
  }
  assert.match(said.join('\n'), idleMove);
  assert.equal(client.server, pool.fe.fe1.url);
  assert.equal(sha256(again), r.sha256);
});
