// `perch topology validate`: a table of broken topology files, each problem reported with its
// line, column, path and message; the examples are valid; the CLI prints the problems one a line,
// checks prerequisites against the real machine (a real PostgreSQL cluster, real folders and
// certificate files) and exits non-zero.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkTopologyText, formatProblem } from '../../src/topology/validate.js';
import { runPerch } from '../cli/helpers.js';
import { testCluster, type PostgresCluster } from '../harness/postgres.js';
import { selfSignedCertificate } from './helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A valid enterprise topology; each case below breaks it in one or more places. */
const base = `version: 1
sites:
  - name: rome
    defaultPool: chat1
stores:
  - name: chat1-store
    kind: chat
    url: postgres://perch@db1.example.org:5432/perch_chat1
  - name: chat1-compliance
    kind: compliance
    url: postgres://perch@db1.example.org:5432/perch_chat1_compliance
pools:
  - name: chat1
    site: rome
    edition: enterprise
    chatStore: chat1-store
    complianceStore: chat1-compliance
    fileStore: /srv/perch/files
    frontEnds:
      - name: fe1
        host: fe1.example.org
        port: 8443
      - name: fe2
        host: fe1.example.org
        port: 8444
      - name: fe3
        host: fe2.example.org
        port: 8443
    activeServers: [fe1, fe2]
`;

function edit(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `the base topology has ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

/** Each broken file with the problems it must produce, as `line:column path: message`. */
const cases: { name: string; text: string; problems: string[] }[] = [
  {
    name: 'a port taken twice on one host',
    text: edit(base, '        port: 8444', '        port: 8443'),
    problems: [
      '25:15 pools[0].frontEnds[1].port: port 8443 on host fe1.example.org is already taken by pools[0].frontEnds[0]',
    ],
  },
  {
    name: "an XMPP port taken by another front end's listener on the same host",
    text: edit(base, '        port: 8444\n', '        port: 8444\n        xmppPort: 8443\n'),
    problems: [
      '26:19 pools[0].frontEnds[1].xmppPort: port 8443 on host fe1.example.org is already taken by pools[0].frontEnds[0]',
    ],
  },
  {
    name: 'an active set of five',
    text: edit(
      edit(base, '    activeServers: [fe1, fe2]', '    activeServers: [fe1, fe2, fe3, fe4, fe5]'),
      '        port: 8443\n    activeServers',
      '        port: 8443\n      - { name: fe4, host: fe3.example.org, port: 1 }\n      - { name: fe5, host: fe3.example.org, port: 2 }\n    activeServers',
    ),
    problems: ['31:20 pools[0].activeServers: an active set has at most 4 front ends, not 5'],
  },
  {
    name: 'an active set naming an unknown front end, and one twice',
    text: edit(base, '[fe1, fe2]', '[fe1, fe9, fe1]'),
    problems: [
      '29:26 pools[0].activeServers[1]: "fe9" is not a front end of this pool (fe1, fe2, fe3)',
      '29:31 pools[0].activeServers[2]: "fe1" is named twice',
    ],
  },
  {
    name: 'duplicate names',
    text: edit(
      edit(base, '      - name: fe2', '      - name: fe1'),
      '  - name: chat1-compliance',
      '  - name: chat1-store',
    ),
    problems: [
      '9:11 stores[1].name: duplicate store name "chat1-store" (also stores[0].name)',
      '17:22 pools[0].complianceStore: unknown store "chat1-compliance"',
      '23:15 pools[0].frontEnds[1].name: duplicate front-end name "fe1" (also pools[0].frontEnds[0].name)',
      '29:26 pools[0].activeServers[1]: "fe2" is not a front end of this pool (fe1, fe1, fe3)',
    ],
  },
  {
    name: 'unknown site, pool and store references',
    text: edit(
      edit(
        edit(base, '    defaultPool: chat1', '    defaultPool: chat2'),
        '    site: rome',
        '    site: milan',
      ),
      '    complianceStore: chat1-compliance',
      '    complianceStore: audit',
    ),
    problems: [
      '4:18 sites[0].defaultPool: unknown pool "chat2"',
      '14:11 pools[0].site: unknown site "milan"',
      '17:22 pools[0].complianceStore: unknown store "audit"',
    ],
  },
  {
    name: 'schema: a string port, a missing field, an unknown field, a bad store URL',
    text: edit(
      edit(
        edit(base, '        port: 8444', '        port: "8444"'),
        '        host: fe2.example.org\n',
        '        hots: fe2.example.org\n',
      ),
      'url: postgres://perch@db1.example.org:5432/perch_chat1_compliance',
      'url: mysql://db1.example.org/perch',
    ),
    problems: [
      '11:10 stores[1].url: a store URL is postgres://user@host:port/database or sqlite:///path/file.db',
      '25:15 pools[0].frontEnds[1].port: Invalid input: expected number, received string',
      '26:9 pools[0].frontEnds[2].host: required field is missing',
      '27:9 pools[0].frontEnds[2].hots: unknown field',
    ],
  },
  {
    name: 'an enterprise pool on SQLite without a file store',
    text: edit(
      edit(
        base,
        'url: postgres://perch@db1.example.org:5432/perch_chat1\n',
        'url: sqlite:///var/lib/perch/perch.db\n',
      ),
      '    fileStore: /srv/perch/files\n',
      '',
    ),
    problems: [
      '13:5 pools[0]: an enterprise pool needs a fileStore: a folder shared by its front ends',
      '16:16 pools[0].chatStore: the front ends of an enterprise pool share their stores: "chat1-store" must be a postgres:// store',
    ],
  },
  {
    name: 'a standard pool with three front ends and an active set',
    text: edit(base, 'edition: enterprise', 'edition: standard'),
    problems: [
      '20:7 pools[0].frontEnds: a standard pool has one front end, not 3; use an enterprise pool',
      '29:20 pools[0].activeServers: a standard pool has no active set',
    ],
  },
  {
    name: 'two stores on one database, a default pool of another site',
    text: edit(
      edit(base, 'perch_chat1_compliance', 'perch_chat1'),
      'sites:\n  - name: rome\n    defaultPool: chat1\n',
      'sites:\n  - name: rome\n    defaultPool: chat1\n  - name: milan\n    defaultPool: chat1\n',
    ),
    problems: [
      '6:18 sites[1].defaultPool: pool "chat1" is in site "rome", not in this site',
      '13:10 stores[1].url: the same database as stores[0].url; each store needs its own',
    ],
  },
  {
    name: 'YAML syntax',
    text: edit(base, '    defaultPool: chat1', '    defaultPool: [chat1'),
    problems: [
      '5:1 : Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
  },
  {
    name: 'JSON with a problem',
    text: JSON.stringify({ version: 2, sites: [], stores: [], pools: [] }, null, 2),
    problems: [
      '2:14 version: Invalid input: expected 1',
      '3:12 sites: Too small: expected array to have >=1 items',
      '4:13 stores: Too small: expected array to have >=1 items',
      '5:12 pools: Too small: expected array to have >=1 items',
    ],
  },
];

describe('topology validation: every problem with its place in the file', () => {
  test('the base topology of the table is valid', () => {
    const r = checkTopologyText('t.yaml', base);
    assert.deepEqual(r.problems, []);
    assert.ok(r.topology);
  });

  for (const c of cases) {
    test(c.name, () => {
      const r = checkTopologyText('t.yaml', c.text);
      assert.equal(r.topology, undefined);
      assert.deepEqual(
        r.problems.map((p) => formatProblem('t.yaml', p).replace(/^t\.yaml:/, '')),
        c.problems.map((p) => p.replace(/^(\d+:\d+) : /, '$1: ')),
      );
    });
  }

  test('the examples are valid', () => {
    for (const f of [
      'topology-standard.yaml',
      'topology-enterprise.yaml',
      'topology-disaster-recovery.yaml',
    ]) {
      const text = fs.readFileSync(path.join(repoRoot, 'examples', f), 'utf8');
      assert.deepEqual(checkTopologyText(f, text).problems, [], f);
    }
  });
});

/** Disaster recovery across sites: the example stretched pool, broken in one way per case. */
const drBase = fs.readFileSync(
  path.join(repoRoot, 'examples', 'topology-disaster-recovery.yaml'),
  'utf8',
);
const drCases: { name: string; text: string; problems: string[] }[] = [
  {
    name: "a backup site that is the pool's own site",
    text: edit(drBase, '    backupSite: milan', '    backupSite: rome'),
    problems: [
      '15:18 sites[1].defaultPool: pool "chat1" is in site "rome", not in this site',
      '40:17 pools[0].backupSite: the backup site must be another site than the pool\'s own ("rome")',
      '45:7 pools[0].frontEnds: no front end stands in the backup site "rome": give one or more front ends site: rome (idle until a failover)',
    ],
  },
  {
    name: 'an unknown backup site',
    text: edit(drBase, '    backupSite: milan', '    backupSite: turin'),
    problems: [
      '15:18 sites[1].defaultPool: pool "chat1" is in site "rome", not in this site',
      '40:17 pools[0].backupSite: unknown site "turin"',
      '45:7 pools[0].frontEnds: no front end stands in the backup site "turin": give one or more front ends site: turin (idle until a failover)',
    ],
  },
  {
    name: 'a backup store that is not a replica of the chat store',
    text: edit(
      drBase,
      'url: postgres://perch@db1.milan.example.org:5432/perch_chat1\n',
      'url: postgres://perch@db2.rome.example.org:5432,db1.milan.example.org:5432/perch_backup\n',
    ),
    problems: [
      '39:18 pools[0].backupStore: "chat1-backup" must name the database of the chat store ("perch_chat1", not "perch_backup"): it is that database\'s replica',
      '39:18 pools[0].backupStore: "chat1-backup" shares db2.rome.example.org:5432 with the chat store: the replica runs on its own server in the backup site',
      "41:28 pools[0].backupComplianceStore: the backup compliance store is a database of the backup store's server (the same hosts)",
    ],
  },
  {
    name: 'a backup site without front ends, file store or compliance store',
    text: edit(
      edit(
        edit(drBase, '    backupComplianceStore: chat1-backup-compliance\n', ''),
        '    backupFileStore: /srv/perch/files-milan\n',
        '',
      ),
      '        site: milan\n      - name: fe4',
      '      - name: fe4',
    ).replace('        port: 8080\n        site: milan\n', '        port: 8080\n'),
    problems: [
      "34:5 pools[0]: a pool with a backup site needs backupFileStore: the backup site's copy of the file store",
      "34:5 pools[0]: a pool with a compliance store and a backup site needs backupComplianceStore: the compliance database on the backup store's server",
      '43:7 pools[0].frontEnds: no front end stands in the backup site "milan": give one or more front ends site: milan (idle until a failover)',
    ],
  },
  {
    name: 'backup fields without a backup store',
    text: edit(drBase, '    backupStore: chat1-backup\n', ''),
    problems: [
      "39:17 pools[0].backupSite: backupSite needs backupStore: the chat store's replica in the backup site",
      "40:28 pools[0].backupComplianceStore: backupComplianceStore needs backupStore: the chat store's replica in the backup site",
      "42:22 pools[0].backupFileStore: backupFileStore needs backupStore: the chat store's replica in the backup site",
    ],
  },
  {
    name: 'compliance databases on servers of their own',
    text: edit(
      edit(
        drBase,
        'db1.rome.example.org:5432,db2.rome.example.org:5432/perch_chat1_compliance',
        'audit.rome.example.org:5432/perch_chat1_compliance',
      ),
      'db1.milan.example.org:5432/perch_chat1_compliance',
      'audit.milan.example.org:5432/perch_chat1_compliance',
    ),
    problems: [
      "38:22 pools[0].complianceStore: with a backup site the compliance store is a database of the chat store's server (the same hosts): one replication carries both to the backup site",
      "41:28 pools[0].backupComplianceStore: the backup compliance store is a database of the backup store's server (the same hosts)",
    ],
  },
  {
    name: 'a backup compliance store that is the backup store',
    text: edit(
      drBase,
      '    backupComplianceStore: chat1-backup-compliance',
      '    backupComplianceStore: chat1-backup',
    ),
    problems: [
      '41:28 pools[0].backupComplianceStore: store "chat1-backup" is a backup store, not a compliance store',
      '41:28 pools[0].backupComplianceStore: "chat1-backup" must name the database of the compliance store ("perch_chat1_compliance", not "perch_chat1"): it is that database\'s replica',
    ],
  },
];

describe('topology validation: a pool with a backup site', () => {
  test('the example is valid', () => {
    assert.deepEqual(checkTopologyText('t.yaml', drBase).problems, []);
  });
  for (const c of drCases) {
    test(c.name, () => {
      const r = checkTopologyText('t.yaml', c.text);
      assert.equal(r.topology, undefined);
      assert.deepEqual(
        r.problems.map((p) => formatProblem('t.yaml', p).replace(/^t\.yaml:/, '')),
        c.problems,
      );
    });
  }
});

describe('perch topology validate', () => {
  let dir: string;
  let cluster: PostgresCluster;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-topology-'));
    cluster = await testCluster();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('prints each problem as FILE:LINE:COLUMN PATH: MESSAGE and exits 1', async () => {
    const file = path.join(dir, 'ports.yaml');
    fs.writeFileSync(file, cases[0]!.text);
    const r = await runPerch(['topology', 'validate', '--file', file, '--offline']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout.trim(),
      `${file}:25:15 pools[0].frontEnds[1].port: port 8443 on host fe1.example.org is already taken by pools[0].frontEnds[0]`,
    );
    assert.match(r.stderr, /^perch: topology_invalid: .* has 1 problem$/m);
  });

  test('checks prerequisites on the machine: store version, file store mode, certificate, key', async () => {
    const files = path.join(dir, 'files');
    fs.mkdirSync(files, { mode: 0o755 });
    fs.chmodSync(files, 0o755);
    const { cert, key } = selfSignedCertificate(dir);
    const otherKey = path.join(dir, 'other-key.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', otherKey], {
      stdio: 'ignore',
    });
    const chat = await cluster.createDatabase({ empty: true });
    const compliance = await cluster.createDatabase({ empty: true });
    // A port nothing listens on: refused at once.
    const dead = `postgres://perch@127.0.0.1:1/perch`;
    const text = (fileStore: string, tlsKey: string, complianceUrl: string) =>
      edit(
        edit(
          edit(base, 'postgres://perch@db1.example.org:5432/perch_chat1\n', `${chat.url}\n`),
          'postgres://perch@db1.example.org:5432/perch_chat1_compliance',
          complianceUrl,
        ),
        '    fileStore: /srv/perch/files\n',
        `    fileStore: ${fileStore}\n    tls: { cert: ${cert}, key: ${tlsKey} }\n`,
      );
    const file = path.join(dir, 'machine.yaml');
    fs.writeFileSync(file, text(files, otherKey, dead));
    const bad = await runPerch(['topology', 'validate', '--file', file, '--json']);
    assert.equal(bad.code, 1, bad.stderr);
    const result = JSON.parse(bad.stdout) as {
      problems: { path: (string | number)[]; message: string; line: number }[];
      checks: { subject: string; ok: boolean }[];
    };
    assert.deepEqual(
      result.problems.map((p) => [p.path.join('.'), p.line]),
      [
        ['stores.1.url', 11],
        ['pools.0.fileStore', 18],
        ['pools.0.tls.key', 19],
      ],
    );
    assert.match(
      result.problems[0]!.message,
      /^cannot reach postgres:\/\/perch@127\.0\.0\.1:1\/perch/,
    );
    assert.match(result.problems[1]!.message, /mode 0755; it must be 0700/);
    assert.match(result.problems[2]!.message, /is not the key of/);
    assert.deepEqual(
      result.checks.map((c) => [c.subject, c.ok]),
      [
        [`Node ${process.versions.node}`, true],
        ['store chat1-store', true],
        ['store chat1-compliance', false],
        ['file store of pool chat1', false],
        ['certificate of pool chat1', true],
        ['key of pool chat1', false],
      ],
    );
    // Progress: one line per check on standard error.
    assert.match(bad.stderr, /ok {3}store chat1-store: PostgreSQL \d+ reachable/);

    fs.chmodSync(files, 0o700);
    fs.writeFileSync(file, text(files, key, compliance.url));
    const good = await runPerch(['topology', 'validate', '--file', file]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout.trim(), `${file}: valid`);
  });
});
