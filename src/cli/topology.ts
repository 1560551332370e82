import path from 'node:path';
import type { Command } from 'commander';
import { TopologyInvalidError } from '../errors.js';
import type { CheckResult } from '../topology/prerequisites.js';
import type { PublishStep } from '../topology/publish.js';
import {
  formatProblem,
  pathText,
  type TopologyCheck,
  type TopologyProblem,
} from '../topology/validate.js';
import { localCommand, oneOf } from './common.js';
import { UsageError } from './errors.js';
import { emit, stdio } from './output.js';

/** Progress goes to standard error, so that standard output stays the result (or its JSON). */
function progress(line: string): void {
  stdio.err(line);
}

function invalid(file: string, problems: TopologyProblem[]): TopologyInvalidError {
  return new TopologyInvalidError(
    file,
    problems.map((p) => ({
      path: pathText(p.path),
      message: p.message,
      ...(p.line === undefined ? {} : { line: p.line, column: p.column }),
      check: p.check,
    })),
  );
}

/** Reads, parses and checks a file offline, printing the progress; throws when it has problems. */
async function loadValid(
  file: string,
): Promise<TopologyCheck & { topology: NonNullable<TopologyCheck['topology']> }> {
  const { checkTopologyFile } = await import('../topology/validate.js');
  const checked = await checkTopologyFile(file);
  if (!checked.topology) {
    for (const p of checked.problems) stdio.err(formatProblem(file, p));
    throw invalid(file, checked.problems);
  }
  progress(`checked ${file}: schema, names, references, ports and active sets are valid`);
  return { ...checked, topology: checked.topology };
}

/**
 * `perch topology validate|publish|get` (Lync's Topology Builder and Publish-CsTopology): a
 * deployment described in one YAML or JSON file, checked, installed and recorded.
 */
export function registerTopologyCommands(program: Command): void {
  const topology = program
    .command('topology')
    .description(
      'the deployment as a file: sites, pools, front ends, stores, file store, TLS (offline, no server needed)',
    );

  localCommand(
    topology,
    'validate',
    'report every problem of a topology file with its line, column and path; without --offline also check stores, file stores, certificates and Node',
  )
    .requiredOption('--file <file>', 'the topology file (YAML or JSON)')
    .option('--offline', 'check the file only: no store connections, no file system checks')
    .addHelpText(
      'after',
      `
Problems print as FILE:LINE:COLUMN PATH: MESSAGE, one a line, for example
  topology.yaml:14:7 pools[0].frontEnds[2].port: port 8080 on host fe1 is already taken by ...
Progress goes to standard error. Exit code 1 when there is any problem.
The file is described in docs/operations/topology.md.

Examples:
  perch topology validate --file topology.yaml --offline
  perch topology validate --file topology.yaml --json`,
    )
    .action(async (opts: { file: string; offline?: boolean; json?: boolean }) => {
      const { checkTopologyFile, placeProblems } = await import('../topology/validate.js');
      progress(`checking ${opts.file}: syntax, schema, names, references, ports, active sets`);
      const checked = await checkTopologyFile(opts.file);
      const problems = [...checked.problems];
      progress(
        problems.length === 0
          ? '  ok'
          : `  ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
      );
      const checks: CheckResult[] = [];
      if (!opts.offline) {
        if (checked.topology) {
          const { checkPrerequisites } = await import('../topology/prerequisites.js');
          progress('checking prerequisites: Node, stores, file stores, certificates');
          const found = await checkPrerequisites(checked.topology, (r) => {
            checks.push(r);
            progress(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.subject}: ${r.detail}`);
          });
          problems.push(...placeProblems(checked.source, found));
        } else {
          progress('prerequisites not checked: fix the problems of the file first');
        }
      }
      const result = { file: opts.file, valid: problems.length === 0, problems, checks };
      emit(opts.json, result, () =>
        problems.length === 0
          ? `${opts.file}: valid${opts.offline ? ' (offline: prerequisites not checked)' : ''}`
          : problems.map((p) => formatProblem(opts.file, p)).join('\n'),
      );
      if (problems.length > 0) throw invalid(opts.file, problems);
    });

  localCommand(
    topology,
    'publish',
    "validate a topology, install or migrate every store, record the topology in each pool's chat store and set the active sets",
  )
    .requiredOption('--file <file>', 'the topology file (YAML or JSON)')
    .addHelpText(
      'after',
      `
Idempotent: publishing the same topology again changes nothing and says so. Each pool's active
set is set when the topology gives one (a change made since with \`perch pool active-server set\`
is put back); without one it is left as it is. With several enterprise pools, every pool's chat
store gets the same pool-link secret (a step per pool), with which their front ends forward
users' calls to each other (docs/operations/pools.md). The PostgreSQL databases must exist
(createdb).
Run \`perch topology validate --file F\` on each front-end host too: publish checks the stores,
not the hosts' file stores and certificates.

Example:
  perch topology publish --file topology.yaml`,
    )
    .action(async (opts: { file: string; json?: boolean }) => {
      const { topology: t } = await loadValid(opts.file);
      const { publishTopology } = await import('../topology/publish.js');
      const steps = await publishTopology(t, (s: PublishStep) =>
        progress(`  ${s.changed ? 'changed  ' : 'unchanged'} ${s.kind} ${s.subject}: ${s.detail}`),
      );
      const changed = steps.filter((s) => s.changed).length;
      emit(
        opts.json,
        { file: opts.file, changed, steps: steps.map(({ install: _, ...s }) => s) },
        () =>
          changed === 0
            ? `Nothing to change: ${opts.file} is published as it is.`
            : `Published ${opts.file}: ${changed} change${changed === 1 ? '' : 's'}.`,
      );
    });

  localCommand(topology, 'get', 'print the topology published in a chat store')
    .option(
      '--store <url>',
      'chat store URL (default: $PERCH_STORE_URL, else perch.db in --data-dir)',
    )
    .option(
      '--data-dir <dir>',
      'data directory holding perch.db (default: $PERCH_DATA_DIR or ./data)',
    )
    .option('--format <format>', 'yaml or json', oneOf('yaml', 'json'), 'yaml')
    .addHelpText(
      'after',
      `
Store passwords are never recorded. With --json: revision, digest, publishedAt and topology.

Examples:
  perch topology get --store postgres://perch@db.example.org/perch_pool1
  perch topology get --data-dir /var/lib/perch --format json`,
    )
    .action(
      async (opts: {
        store?: string;
        dataDir?: string;
        format: 'yaml' | 'json';
        json?: boolean;
      }) => {
        if (opts.store !== undefined && opts.dataDir !== undefined) {
          throw new UsageError('give either --store or --data-dir');
        }
        const { parseStoreUrl } = await import('../store/store-url.js');
        const url =
          opts.store ??
          (opts.dataDir === undefined ? process.env.PERCH_STORE_URL || undefined : undefined);
        const location =
          url !== undefined
            ? parseStoreUrl(url)
            : {
                dialect: 'sqlite' as const,
                file: path.join(
                  path.resolve(opts.dataDir ?? (process.env.PERCH_DATA_DIR || './data')),
                  'perch.db',
                ),
              };
        const { readPublishedTopology } = await import('../topology/publish.js');
        const p = await readPublishedTopology(location);
        const view = {
          revision: p.revision,
          digest: p.digest,
          publishedAt: new Date(p.publishedAt).toISOString(),
          topology: p.topology,
        };
        if (opts.json || opts.format === 'json') {
          emit(true, opts.json ? view : p.topology, () => '');
          return;
        }
        const { stringify } = await import('yaml');
        stdio.out(
          `# revision ${view.revision}, published ${view.publishedAt}, digest ${view.digest}\n${stringify(p.topology)}`,
        );
      },
    );
}
