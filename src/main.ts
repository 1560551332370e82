#!/usr/bin/env node
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerAdminCommands, runCli } from './cli/index.js';
import { readEnv, toConfig } from './config/config.js';
import { version } from './version.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * `perch serve`: runs a server until SIGINT or SIGTERM: Standard Edition, or with --pool and
 * --front-end (PERCH_POOL, PERCH_FRONT_END) a front end of an Enterprise Edition pool.
 */
async function serve(flags: {
  pool?: string;
  frontEnd?: string;
  topology?: string;
  host?: string;
}): Promise<void> {
  // Loaded here, not at the top: admin commands must not pay for the whole server's start-up.
  const [{ createAppContext }, { createLogger }] = await Promise.all([
    import('./context.js'),
    import('./logger.js'),
  ]);
  // The topology's front end, then the environment, then flags: each wins over the one before;
  // all go through the one config schema.
  const fromTopology =
    flags.topology === undefined ? {} : await topologySettings(flags.topology, flags);
  const config = toConfig({
    ...fromTopology,
    ...readEnv(process.env),
    ...(flags.pool === undefined ? {} : { pool: flags.pool }),
    ...(flags.frontEnd === undefined || flags.topology !== undefined
      ? {}
      : { frontEnd: flags.frontEnd }),
  });
  const log = createLogger(config.logLevel);
  const ctx = await createAppContext(config, log, {
    webRoot: path.resolve(here, '..', 'web', 'dist'),
  });
  await ctx.listen();
  const { host, port } = ctx.address();
  const scheme = config.tlsCertFile === undefined ? 'http' : 'https';
  log.info(
    { host, port, dataDir: config.dataDir, version },
    ctx.frontEnd
      ? `Perch front end ${ctx.frontEnd.name} of pool ${ctx.frontEnd.pool} listening on ${scheme}://${host}:${port}/`
      : `Perch Standard Edition listening on ${scheme}://${host}:${port}/`,
  );
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down');
      controller.abort();
    });
  }
  await new Promise<void>((resolve) =>
    controller.signal.addEventListener('abort', () => resolve(), { once: true }),
  );
  await ctx.close();
  log.info('stopped');
}

/** The configuration a topology file gives the front end named by --host / --front-end. */
async function topologySettings(
  file: string,
  flags: { host?: string; frontEnd?: string },
): Promise<Partial<Record<string, string>>> {
  const [{ checkTopologyFile, formatProblem, pathText }, { frontEndFromTopology }, errors] =
    await Promise.all([
      import('./topology/validate.js'),
      import('./topology/front-end.js'),
      import('./errors.js'),
    ]);
  if (flags.host === undefined && flags.frontEnd === undefined) {
    throw new errors.TopologyFrontEndError(
      'with --topology, name this machine with --host NAME (or --front-end NAME)',
    );
  }
  const checked = await checkTopologyFile(file);
  if (!checked.topology) {
    for (const p of checked.problems) process.stderr.write(`${formatProblem(file, p)}\n`);
    throw new errors.TopologyInvalidError(
      file,
      checked.problems.map((p) => ({ path: pathText(p.path), message: p.message, line: p.line })),
    );
  }
  return frontEndFromTopology(checked.topology, flags).settings;
}

const program = new Command()
  .name('perch')
  .description('Perch persistent group chat server')
  .version(version);

program
  .command('serve')
  .description(
    'run a Standard Edition server (SQLite store, HTTP, WebSocket and web client) until SIGINT/SIGTERM, or with --pool and --front-end a front end of an Enterprise Edition pool (PostgreSQL store); configured by PERCH_* environment variables (see README)',
  )
  .option('--pool <name>', 'Enterprise Edition pool to serve as a front end of (PERCH_POOL)')
  .option(
    '--front-end <name>',
    "this front end's name in the pool (PERCH_FRONT_END); with --topology, which of the topology's front ends to run",
  )
  .option(
    '--topology <file>',
    "run a front end of this topology file: its pool's stores, file store and TLS, its address and port",
  )
  .option('--host <name>', 'with --topology: this machine, as the topology names it')
  .addHelpText(
    'after',
    `
Precedence: flags, then PERCH_* environment variables, then the topology file.

Examples:
  perch serve
  perch serve --topology /etc/perch/topology.yaml --host fe1.example.org --front-end fe1
  PERCH_STORE_URL=postgres://perch@db/perch_pool1 perch serve --pool pool1 --front-end fe1`,
  )
  .action(serve);

registerAdminCommands(program);

process.exitCode = await runCli(program, process.argv);
