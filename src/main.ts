#!/usr/bin/env node
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { readEnv, toConfig } from './config/config.js';
import { createAppContext } from './context.js';
import { PerchError } from './errors.js';
import { createLogger } from './logger.js';
import { version } from './version.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** `perch serve`: runs a Standard Edition server until SIGINT or SIGTERM. */
async function serve(): Promise<void> {
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

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof PerchError) {
    process.stderr.write(`perch: ${err.message}\n`);
  } else {
    process.stderr.write(
      `perch: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  process.exitCode = 1;
});
