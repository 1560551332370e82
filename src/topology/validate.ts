import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { MAX_ACTIVE_FRONT_ENDS } from '../domain/pools/commands.js';
import { parseStoreUrl, pgHosts, pgUrlFor } from '../store/store-url.js';
import { topologySchema, type Topology } from './schema.js';

export type ProblemPath = (string | number)[];

/** One thing wrong with a topology, with where it is in the file. */
export interface TopologyProblem {
  /** Which check found it: syntax, schema, names, references, ports, active set, or a prerequisite. */
  check: string;
  path: ProblemPath;
  message: string;
  /** 1-based line and column of the value (or of its nearest enclosing one) in the file. */
  line?: number;
  column?: number;
}

/** A topology file as read: its text, its YAML document and a way to locate paths in it. */
export interface TopologySource {
  file: string;
  doc: Document;
  lines: LineCounter;
  /** The document as plain data (undefined when it did not parse). */
  value: unknown;
}

/** `pools[0].frontEnds[2].port` */
export function pathText(p: ProblemPath): string {
  return p.reduce<string>(
    (out, k) => (typeof k === 'number' ? `${out}[${k}]` : out === '' ? k : `${out}.${k}`),
    '',
  );
}

/** `topology.yaml:14:7 pools[0].frontEnds[2].port: message` */
export function formatProblem(file: string, p: TopologyProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.column}`;
  const at = p.path.length > 0 ? ` ${pathText(p.path)}` : '';
  return `${where}${at}: ${p.message}`;
}

/** Parses YAML or JSON (JSON is read as the YAML it also is), keeping positions. */
export function readTopologyText(
  file: string,
  text: string,
): {
  source: TopologySource;
  problems: TopologyProblem[];
} {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: TopologyProblem[] = doc.errors.map((e) => {
    const pos = lines.linePos(e.pos[0]);
    return {
      check: 'syntax',
      path: [],
      message: e.message.split('\n')[0]!,
      line: pos.line,
      column: pos.col,
    };
  });
  const value = problems.length === 0 ? (doc.toJS() as unknown) : undefined;
  return { source: { file, doc, lines, value }, problems };
}

/** Finds the line and column of a path, or of the nearest part of it that the file has. */
export function locate(
  source: TopologySource,
  p: ProblemPath,
  key?: string,
): { line: number; column: number } | undefined {
  // An unknown key: point at the key itself, in the map that holds it.
  if (key !== undefined) {
    const parent = p.length <= 1 ? source.doc.contents : source.doc.getIn(p.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((i) => isScalar(i.key) && i.key.value === key);
      if (isNode(pair?.key) && pair.key.range) {
        const pos = source.lines.linePos(pair.key.range[0]);
        return { line: pos.line, column: pos.col };
      }
    }
  }
  for (let n = p.length; n >= 0; n -= 1) {
    const node = n === 0 ? source.doc.contents : source.doc.getIn(p.slice(0, n), true);
    if (!isNode(node) || !node.range) continue;
    const pos = source.lines.linePos(node.range[0]);
    return { line: pos.line, column: pos.col };
  }
  return undefined;
}

/** Adds each problem's line and column. */
export function placeProblems(
  source: TopologySource,
  problems: (TopologyProblem & { key?: string })[],
): TopologyProblem[] {
  return problems.map(({ key, ...p }) => ({ ...p, ...locate(source, p.path, key) }));
}

type Loose = Record<string, unknown>;

function list(v: unknown): Loose[] {
  return Array.isArray(v) ? v.map((x) => (x && typeof x === 'object' ? (x as Loose) : {})) : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A store URL reduced to what identifies the database (no user or password). */
function storeIdentity(url: string): string | undefined {
  try {
    const loc = parseStoreUrl(url);
    if (loc.dialect === 'sqlite') return `sqlite:${loc.file}`;
    // Several hosts (a primary and its standbys) are one database: its first host names it.
    const u = new URL(pgUrlFor(loc.connectionString, pgHosts(loc.connectionString)[0]!));
    return `postgres:${u.hostname.toLowerCase()}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return undefined;
  }
}

function isPostgres(url: string | undefined): boolean {
  return url !== undefined && /^postgres(ql)?:/i.test(url.trim());
}

/**
 * The checks beyond the schema: unique names, references between sites, pools and stores, port
 * clashes on one host, the active set and the edition's rules. They read the document loosely,
 * so that they also run (and report) when the schema found problems elsewhere.
 */
export function checkTopologyRules(value: unknown): (TopologyProblem & { key?: string })[] {
  const out: (TopologyProblem & { key?: string })[] = [];
  const root = value && typeof value === 'object' ? (value as Loose) : {};
  const sites = list(root.sites);
  const stores = list(root.stores);
  const pools = list(root.pools);
  const problem = (check: string, path: ProblemPath, message: string) =>
    out.push({ check, path, message });

  const unique = (what: string, items: { name: unknown; path: ProblemPath }[]) => {
    const seen = new Map<string, ProblemPath>();
    for (const { name, path } of items) {
      const n = str(name);
      if (n === undefined) continue;
      const first = seen.get(n.toLowerCase());
      if (first) problem('names', path, `duplicate ${what} name "${n}" (also ${pathText(first)})`);
      else seen.set(n.toLowerCase(), path);
    }
  };
  unique(
    'site',
    sites.map((s, i) => ({ name: s.name, path: ['sites', i, 'name'] })),
  );
  unique(
    'store',
    stores.map((s, i) => ({ name: s.name, path: ['stores', i, 'name'] })),
  );
  unique(
    'pool',
    pools.map((p, i) => ({ name: p.name, path: ['pools', i, 'name'] })),
  );
  // Front-end names are unique across pools: `perch serve --front-end NAME` picks one.
  unique(
    'front-end',
    pools.flatMap((p, i) =>
      list(p.frontEnds).map((f, j) => ({
        name: f.name,
        path: ['pools', i, 'frontEnds', j, 'name'],
      })),
    ),
  );

  // One database, one role: a compliance store is never a chat store, two pools never share one.
  const byUrl = new Map<string, ProblemPath>();
  stores.forEach((s, i) => {
    const id = str(s.url) === undefined ? undefined : storeIdentity(str(s.url)!);
    if (id === undefined) return;
    const first = byUrl.get(id);
    if (first) {
      problem(
        'names',
        ['stores', i, 'url'],
        `the same database as ${pathText(first)}; each store needs its own`,
      );
    } else byUrl.set(id, ['stores', i, 'url']);
  });

  const siteNames = new Set(sites.map((s) => str(s.name)).filter((n) => n !== undefined));
  // The first of duplicate names counts (the others are reported as duplicates).
  const storeByName = new Map(stores.toReversed().map((s) => [str(s.name), s]));
  const poolByName = new Map(pools.toReversed().map((p) => [str(p.name), p]));

  sites.forEach((s, i) => {
    const d = str(s.defaultPool);
    if (d === undefined) return;
    const pool = poolByName.get(d);
    if (!pool) problem('references', ['sites', i, 'defaultPool'], `unknown pool "${d}"`);
    else if (
      str(pool.site) !== undefined &&
      str(pool.site) !== str(s.name) &&
      // A stretched pool serves its backup site too.
      str(pool.backupSite) !== str(s.name)
    ) {
      problem(
        'references',
        ['sites', i, 'defaultPool'],
        `pool "${d}" is in site "${str(pool.site)}", not in this site`,
      );
    }
  });

  const chatStoreUsers = new Map<string, ProblemPath>();
  const hostPorts = new Map<string, ProblemPath>();
  pools.forEach((p, i) => {
    const at = (...rest: ProblemPath): ProblemPath => ['pools', i, ...rest];
    const site = str(p.site);
    if (site !== undefined && !siteNames.has(site)) {
      problem('references', at('site'), `unknown site "${site}"`);
    }
    const storeRef = (field: string, kind: string): Loose | undefined => {
      const ref = str(p[field]);
      if (ref === undefined) return undefined;
      const store = storeByName.get(ref);
      if (!store) {
        problem('references', at(field), `unknown store "${ref}"`);
        return undefined;
      }
      if (str(store.kind) !== undefined && str(store.kind) !== kind) {
        problem(
          'references',
          at(field),
          `store "${ref}" is a ${str(store.kind)} store, not a ${kind} store`,
        );
      }
      return store;
    };
    const chat = storeRef('chatStore', 'chat');
    const compliance = storeRef('complianceStore', 'compliance');
    const backup = storeRef('backupStore', 'backup');
    storeRef('backupComplianceStore', 'compliance');
    const chatName = str(p.chatStore);
    if (chat && chatName !== undefined) {
      const first = chatStoreUsers.get(chatName);
      if (first) {
        problem(
          'references',
          at('chatStore'),
          `store "${chatName}" is already the chat store of ${pathText(first.slice(0, 2))}; each pool has its own`,
        );
      } else chatStoreUsers.set(chatName, at());
    }

    const frontEnds = list(p.frontEnds);
    const feNames = frontEnds.map((f) => str(f.name));
    if (p.edition === 'standard') {
      if (frontEnds.length > 1) {
        problem(
          'edition',
          at('frontEnds'),
          `a standard pool has one front end, not ${frontEnds.length}; use an enterprise pool`,
        );
      }
      if (p.activeServers !== undefined) {
        problem('edition', at('activeServers'), 'a standard pool has no active set');
      }
    }
    if (p.edition === 'enterprise') {
      for (const [field, store] of [
        ['chatStore', chat],
        ['complianceStore', compliance],
        ['backupStore', backup],
        ['backupComplianceStore', storeByName.get(str(p.backupComplianceStore))],
      ] as const) {
        const url = str(store?.url);
        // A store URL that does not parse is reported by the schema already.
        if (url !== undefined && storeIdentity(url) !== undefined && !isPostgres(url)) {
          problem(
            'edition',
            at(field),
            `the front ends of an enterprise pool share their stores: "${str(p[field])}" must be a postgres:// store`,
          );
        }
      }
      if (p.fileStore === undefined) {
        problem(
          'edition',
          at(),
          'an enterprise pool needs a fileStore: a folder shared by its front ends',
        );
      }
    }
    checkBackupSite(
      p,
      { chat, compliance, backup, site, frontEnds, backupStores: storeByName },
      at,
      problem,
      siteNames,
    );
    frontEnds.forEach((f, j) => {
      const fsite = str(f.site);
      if (fsite !== undefined && !siteNames.has(fsite)) {
        problem('references', at('frontEnds', j, 'site'), `unknown site "${fsite}"`);
      }
      const host = str(f.host);
      if (host === undefined) return;
      // The HTTP/WebSocket listener and the XMPP one: no two on one host may share a port.
      for (const field of ['port', 'xmppPort'] as const) {
        const port = f[field];
        if (typeof port !== 'number') continue;
        const key = `${host.toLowerCase()}:${port}`;
        const first = hostPorts.get(key);
        if (first) {
          problem(
            'ports',
            at('frontEnds', j, field),
            `port ${port} on host ${host} is already taken by ${pathText(first.slice(0, 4))}`,
          );
        } else hostPorts.set(key, at('frontEnds', j, field));
      }
    });

    if (Array.isArray(p.activeServers)) {
      const active = p.activeServers as unknown[];
      if (active.length > MAX_ACTIVE_FRONT_ENDS) {
        problem(
          'active set',
          at('activeServers'),
          `an active set has at most ${MAX_ACTIVE_FRONT_ENDS} front ends, not ${active.length}`,
        );
      }
      const seen = new Set<string>();
      active.forEach((n, k) => {
        if (typeof n !== 'string') return;
        if (seen.has(n)) problem('active set', at('activeServers', k), `"${n}" is named twice`);
        seen.add(n);
        if (!feNames.includes(n)) {
          problem(
            'active set',
            at('activeServers', k),
            `"${n}" is not a front end of this pool (${feNames.filter(Boolean).join(', ')})`,
          );
        }
      });
    }
  });
  return out;
}

/** The database a PostgreSQL store URL names, and its hosts as `host:port`. */
function pgParts(url: string | undefined): { database: string; hosts: string[] } | undefined {
  if (url === undefined || !isPostgres(url) || storeIdentity(url) === undefined) return undefined;
  const hosts = pgHosts(url);
  const u = new URL(pgUrlFor(url, hosts[0]!));
  return {
    database: decodeURIComponent(u.pathname.slice(1)),
    hosts: hosts.map((h) => `${h.host.toLowerCase()}:${h.port}`),
  };
}

/**
 * A pool with a backup site (disaster recovery, docs/operations/disaster-recovery.md): the backup
 * store is the chat store's PostgreSQL replica, so it names the same database on other servers;
 * the compliance database rides on the same replication; the backup site has front ends and its
 * own copy of the file store.
 */
function checkBackupSite(
  p: Loose,
  stores: {
    chat?: Loose;
    compliance?: Loose;
    backup?: Loose;
    site?: string;
    frontEnds: Loose[];
    backupStores?: Map<string | undefined, Loose>;
  },
  at: (...rest: ProblemPath) => ProblemPath,
  problem: (check: string, path: ProblemPath, message: string) => void,
  siteNames: Set<string>,
): void {
  const check = 'disaster recovery';
  const backupSite = str(p.backupSite);
  for (const field of ['backupSite', 'backupComplianceStore', 'backupFileStore']) {
    if (p[field] !== undefined && p.backupStore === undefined) {
      problem(
        check,
        at(field),
        `${field} needs backupStore: the chat store's replica in the backup site`,
      );
    }
  }
  if (p.backupComplianceStore !== undefined && p.complianceStore === undefined) {
    problem(
      check,
      at('backupComplianceStore'),
      'backupComplianceStore needs complianceStore: the database it is a replica of',
    );
  }
  if (backupSite === undefined) return;
  if (p.edition === 'standard') {
    problem(
      check,
      at('backupSite'),
      'a standard pool has no backup site: back it up with perch backup',
    );
    return;
  }
  if (!siteNames.has(backupSite))
    problem('references', at('backupSite'), `unknown site "${backupSite}"`);
  else if (backupSite === stores.site) {
    problem(
      check,
      at('backupSite'),
      `the backup site must be another site than the pool's own ("${backupSite}")`,
    );
  }
  if (p.backupFileStore === undefined) {
    problem(
      check,
      at(),
      "a pool with a backup site needs backupFileStore: the backup site's copy of the file store",
    );
  }
  if (!stores.frontEnds.some((f) => str(f.site) === backupSite)) {
    problem(
      check,
      at('frontEnds'),
      `no front end stands in the backup site "${backupSite}": give one or more front ends site: ${backupSite} (idle until a failover)`,
    );
  }
  if (p.complianceStore !== undefined && p.backupComplianceStore === undefined) {
    problem(
      check,
      at(),
      "a pool with a compliance store and a backup site needs backupComplianceStore: the compliance database on the backup store's server",
    );
  }
  // Streaming replication copies a whole PostgreSQL cluster: a replica holds the same databases.
  const replica = (field: string, of: Loose | undefined, copy: Loose | undefined, what: string) => {
    const a = pgParts(str(of?.url));
    const b = pgParts(str(copy?.url));
    if (!a || !b) return;
    if (a.database !== b.database) {
      problem(
        check,
        at(field),
        `"${str(p[field])}" must name the database of the ${what} ("${a.database}", not "${b.database}"): it is that database's replica`,
      );
    }
    const shared = b.hosts.filter((h) => a.hosts.includes(h));
    if (shared.length > 0) {
      problem(
        check,
        at(field),
        `"${str(p[field])}" shares ${shared.join(', ')} with the ${what}: the replica runs on its own server in the backup site`,
      );
    }
  };
  replica('backupStore', stores.chat, stores.backup, 'chat store');
  const backupCompliance = str(p.backupComplianceStore);
  if (backupCompliance === undefined) return;
  const copy = stores.backupStores?.get(backupCompliance);
  replica('backupComplianceStore', stores.compliance, copy, 'compliance store');
  const same = (x: Loose | undefined, y: Loose | undefined) =>
    JSON.stringify(pgParts(str(x?.url))?.hosts) === JSON.stringify(pgParts(str(y?.url))?.hosts);
  if (
    pgParts(str(stores.compliance?.url)) &&
    pgParts(str(stores.chat?.url)) &&
    !same(stores.compliance, stores.chat)
  ) {
    problem(
      check,
      at('complianceStore'),
      "with a backup site the compliance store is a database of the chat store's server (the same hosts): one replication carries both to the backup site",
    );
  }
  if (pgParts(str(copy?.url)) && pgParts(str(stores.backup?.url)) && !same(copy, stores.backup)) {
    problem(
      check,
      at('backupComplianceStore'),
      "the backup compliance store is a database of the backup store's server (the same hosts)",
    );
  }
}

/** A zod issue as a problem: its path, and for unknown keys the key itself. */
function schemaProblems(value: unknown): {
  topology: Topology | undefined;
  problems: (TopologyProblem & { key?: string })[];
} {
  const parsed = topologySchema.safeParse(value);
  if (parsed.success) return { topology: parsed.data, problems: [] };
  const problems: (TopologyProblem & { key?: string })[] = [];
  for (const issue of parsed.error.issues) {
    const path = issue.path.filter(
      (k): k is string | number => typeof k === 'string' || typeof k === 'number',
    );
    // The active set's size is the rules' to report, in their words.
    if (issue.code === 'too_big' && path.at(-1) === 'activeServers') continue;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ check: 'schema', path: [...path, key], key, message: 'unknown field' });
      }
      continue;
    }
    const missing = issue.code === 'invalid_type' && issue.message.includes('received undefined');
    problems.push({
      check: 'schema',
      path,
      message: missing ? 'required field is missing' : issue.message,
    });
  }
  return { topology: undefined, problems };
}

export interface TopologyCheck {
  source: TopologySource;
  /** The parsed topology with defaults applied, when it has no problems. */
  topology: Topology | undefined;
  problems: TopologyProblem[];
}

/**
 * Every problem of a topology file that can be found without looking at the machines: syntax,
 * schema, names, references, ports, active sets, edition rules. Ordered by position in the file.
 */
export function checkTopologyText(file: string, text: string): TopologyCheck {
  const { source, problems } = readTopologyText(file, text);
  if (problems.length > 0) return { source, topology: undefined, problems };
  const schema = schemaProblems(source.value);
  const rules = checkTopologyRules(source.value);
  const all = placeProblems(source, [...schema.problems, ...rules]).sort(
    (a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  );
  return { source, topology: all.length === 0 ? schema.topology : undefined, problems: all };
}

/** Reads and checks a topology file; an unreadable file is one problem. */
export async function checkTopologyFile(file: string): Promise<TopologyCheck> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const { source } = readTopologyText(file, '');
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return {
      source,
      topology: undefined,
      problems: [{ check: 'file', path: [], message: `cannot read the file (${reason})` }],
    };
  }
  return checkTopologyText(file, text);
}
