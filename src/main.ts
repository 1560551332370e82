#!/usr/bin/env node
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerAdminCommands, runCli } from './cli/index.js';
import { readEnv, toConfig } from './config/config.js';
import { version } from './version.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** `perch serve`: runs a Standard Edition server until SIGINT or SIGTERM. */
async function serve(): Promise<void> {
  // Loaded here, not at the top: admin commands must not pay for the whole server's start-up.
  const [{ createAppContext }, { createLogger }] = await Promise.all([
    import('./context.js'),
    import('./logger.js'),
  ]);
  const config = toConfig(readEnv(process.env));
  const log = createLogger(config.logLevel);
  const ctx = await createAppContext(config, log, {
    webRoot: path.resolve(here, '..', 'web', 'dist'),
  });
  await ctx.listen();
  const { host, port } = ctx.address();
  log.info(
    { host, port, dataDir: config.dataDir, version },
    `Perch Standard Edition listening on http://${host}:${port}/`,
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
    'run a Standard Edition server (SQLite store, HTTP, WebSocket and web client) until SIGINT/SIGTERM; configured by PERCH_* environment variables (see README)',
  )
  .action(serve);

registerAdminCommands(program);

process.exitCode = await runCli(program, process.argv);
