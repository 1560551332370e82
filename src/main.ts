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
async function serve(flags: { pool?: string; frontEnd?: string }): Promise<void> {
  // Loaded here, not at the top: admin commands must not pay for the whole server's start-up.
  const [{ createAppContext }, { createLogger }] = await Promise.all([
    import('./context.js'),
    import('./logger.js'),
  ]);
  // Flags win over the environment; both go through the one config schema.
  const config = toConfig({
    ...readEnv(process.env),
    ...(flags.pool === undefined ? {} : { pool: flags.pool }),
    ...(flags.frontEnd === undefined ? {} : { frontEnd: flags.frontEnd }),
  });
  const log = createLogger(config.logLevel);
  const ctx = await createAppContext(config, log, {
    webRoot: path.resolve(here, '..', 'web', 'dist'),
  });
  await ctx.listen();
  const { host, port } = ctx.address();
  log.info(
    { host, port, dataDir: config.dataDir, version },
    ctx.frontEnd
      ? `Perch front end ${ctx.frontEnd.name} of pool ${ctx.frontEnd.pool} listening on http://${host}:${port}/`
      : `Perch Standard Edition listening on http://${host}:${port}/`,
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
  .option('--front-end <name>', "this front end's name in the pool (PERCH_FRONT_END)")
  .action(serve);

registerAdminCommands(program);

process.exitCode = await runCli(program, process.argv);
