import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pgClient } from '../store/postgres/connect.js';
import { parseStoreUrl, redact } from '../store/store-url.js';
import type { Topology } from './schema.js';
import type { ProblemPath, TopologyProblem } from './validate.js';

/** The oldest PostgreSQL a store may run (MERGE, the GIN/tsvector search the store relies on). */
export const MIN_POSTGRES_VERSION = 15;

/** Node majors Perch supports, and the oldest Node 20 release (package.json engines). */
export const SUPPORTED_NODE = { minimum: [20, 19, 0] as const, majors: [20, 22, 24] };

/** One prerequisite check as it finished: what was checked, and what it found. */
export interface CheckResult {
  check: string;
  subject: string;
  ok: boolean;
  detail: string;
}

type Report = (r: CheckResult) => void;

function nodeVersionProblem(version: string): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [minMajor, minMinor] = SUPPORTED_NODE.minimum;
  if (major < minMajor || (major === minMajor && minor < minMinor)) {
    return `Node ${version} is too old; Perch runs on Node ${SUPPORTED_NODE.majors.join(', ')} (20.${minMinor} or later)`;
  }
  if (!SUPPORTED_NODE.majors.includes(major) && major < Math.max(...SUPPORTED_NODE.majors)) {
    return `Node ${version} is not a supported release line (${SUPPORTED_NODE.majors.join(', ')})`;
  }
  return undefined;
}

/** Connects to a PostgreSQL store and reads its server version. */
async function postgresVersion(connectionString: string): Promise<number> {
  const client = pgClient(connectionString, { connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const r = await client.query<{ v: string }>(
      "SELECT current_setting('server_version_num') AS v",
    );
    return Number(r.rows[0]!.v);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The nearest folder of `p` that exists (the one a new file or folder would be made in). */
function existingAncestor(p: string): string {
  let dir = p;
  while (!fs.existsSync(dir)) {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
}

async function checkStore(url: string): Promise<{ ok: boolean; detail: string }> {
  const loc = parseStoreUrl(url);
  if (loc.dialect === 'postgres') {
    try {
      const num = await postgresVersion(loc.connectionString);
      const major = Math.floor(num / 10_000);
      if (major < MIN_POSTGRES_VERSION) {
        return {
          ok: false,
          detail: `PostgreSQL ${major} at ${redact(url)}; Perch needs ${MIN_POSTGRES_VERSION} or later`,
        };
      }
      return { ok: true, detail: `PostgreSQL ${major} reachable` };
    } catch (err) {
      return {
        ok: false,
        detail: `cannot reach ${redact(url)}: ${(err as Error).message || String(err)}`,
      };
    }
  }
  // SQLite: the file (or the folder it will be made in) must be writable.
  const target = fs.existsSync(loc.file) ? loc.file : existingAncestor(path.dirname(loc.file));
  try {
    fs.accessSync(target, fs.constants.W_OK);
  } catch {
    return { ok: false, detail: `${target} is not writable by this user` };
  }
  return {
    ok: true,
    detail: fs.existsSync(loc.file) ? `${loc.file} writable` : `${loc.file} can be created`,
  };
}

function checkFileStore(dir: string): { ok: boolean; detail: string } {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return { ok: false, detail: `${dir} does not exist; create it: install -d -m 700 ${dir}` };
  }
  if (!st.isDirectory()) return { ok: false, detail: `${dir} is not a folder` };
  const mode = st.mode & 0o777;
  if (mode !== 0o700) {
    return {
      ok: false,
      detail: `${dir} has mode ${mode.toString(8).padStart(4, '0')}; it must be 0700 (owner only): chmod 700 ${dir}`,
    };
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    return { ok: false, detail: `${dir} belongs to uid ${st.uid}, not to this user (${uid})` };
  }
  return { ok: true, detail: `${dir} present, mode 0700` };
}

function checkTls(cert: string, key: string): { ok: boolean; detail: string }[] {
  let x509: crypto.X509Certificate | undefined;
  let privateKey: crypto.KeyObject | undefined;
  const certResult = (() => {
    try {
      x509 = new crypto.X509Certificate(fs.readFileSync(cert));
    } catch (err) {
      return {
        ok: false,
        detail: `${cert}: not a readable PEM certificate (${(err as Error).message})`,
      };
    }
    if (Date.parse(x509.validTo) < Date.now()) {
      return { ok: false, detail: `${cert} expired on ${x509.validTo}` };
    }
    return {
      ok: true,
      detail: `${cert}: ${x509.subject.replace(/\n/g, ', ')}, valid until ${x509.validTo}`,
    };
  })();
  const keyResult = (() => {
    try {
      privateKey = crypto.createPrivateKey(fs.readFileSync(key));
    } catch (err) {
      return {
        ok: false,
        detail: `${key}: not a readable PEM private key (${(err as Error).message})`,
      };
    }
    if (x509 && !x509.checkPrivateKey(privateKey)) {
      return { ok: false, detail: `${key} is not the key of ${cert}` };
    }
    return { ok: true, detail: `${key}: ${privateKey.asymmetricKeyType} key` };
  })();
  return [certResult, keyResult];
}

/**
 * The checks that look at this machine and the network: Node's version, every store reachable
 * and at a supported version (SQLite: writable), each file store folder present and owner-only,
 * each certificate and key readable, parseable and matching. Reports each check as it finishes;
 * returns the problems, located by path (the caller adds lines and columns).
 */
export async function checkPrerequisites(
  topology: Topology,
  report: Report,
  nodeVersion = process.versions.node,
): Promise<TopologyProblem[]> {
  const problems: TopologyProblem[] = [];
  const record = (
    check: string,
    subject: string,
    at: ProblemPath,
    r: { ok: boolean; detail: string },
  ) => {
    report({ check, subject, ok: r.ok, detail: r.detail });
    if (!r.ok) problems.push({ check, path: at, message: r.detail });
  };
  const nodeProblem = nodeVersionProblem(nodeVersion);
  record('node', `Node ${nodeVersion}`, [], {
    ok: nodeProblem === undefined,
    detail: nodeProblem ?? 'supported',
  });
  for (const [i, store] of topology.stores.entries()) {
    record('store', `store ${store.name}`, ['stores', i, 'url'], await checkStore(store.url));
  }
  for (const [i, pool] of topology.pools.entries()) {
    if (pool.fileStore !== undefined) {
      record(
        'file store',
        `file store of pool ${pool.name}`,
        ['pools', i, 'fileStore'],
        checkFileStore(pool.fileStore),
      );
    }
    if (pool.tls) {
      const [c, k] = checkTls(pool.tls.cert, pool.tls.key);
      record('tls', `certificate of pool ${pool.name}`, ['pools', i, 'tls', 'cert'], c!);
      record('tls', `key of pool ${pool.name}`, ['pools', i, 'tls', 'key'], k!);
    }
  }
  return problems;
}
