import { InvalidArgumentError, type Command } from 'commander';
import { MAX_ACTIVE_FRONT_ENDS, poolNameSchema, type PoolView } from '../domain/pools/commands.js';
import { seg, signedInClient, type ServerOptions } from './client.js';
import { serverCommand } from './common.js';
import { UsageError } from './errors.js';
import { emit, fields, table } from './output.js';
import { registerPoolDisasterRecovery } from './pool-dr.js';
import { registerPoolPromote } from './pool-promote.js';

function poolName(value: string): string {
  const r = poolNameSchema.safeParse(value);
  if (!r.success) throw new InvalidArgumentError(r.error.issues[0]?.message ?? 'invalid name');
  return r.data;
}

/** `A,B,C` → front-end names, each checked like the server checks it. */
function serverList(value: string): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new InvalidArgumentError('name at least one front end');
  return names.map(poolName);
}

function show(p: PoolView): string {
  return [
    fields([
      ['pool', p.name],
      ['active', p.activeServers.length > 0 ? p.activeServers : '(none: every front end idle)'],
      ['active set', p.activeSetChosen ? 'chosen' : 'not chosen (the first four registered)'],
    ]),
    '',
    table(p.frontEnds, [
      ['FRONT END', (f) => f.name],
      ['STATE', (f) => f.state],
      ['LAST HEARTBEAT', (f) => f.lastHeartbeat],
      ['CONNECTIONS', (f) => f.connections],
      ['USERS', (f) => f.users],
      ['URL', (f) => f.url],
    ]),
  ].join('\n');
}

/**
 * `perch pool get|active-server set` (Get-CsPersistentChatState, Set-CsPersistentChatActiveServer):
 * an Enterprise Edition pool's front ends and which of them serve clients.
 */
export function registerPoolCommands(program: Command): void {
  const pool = program
    .command('pool')
    .description(
      'Enterprise Edition pools: front ends, heartbeats, load and the active set (chat administrators)',
    );

  serverCommand(pool, 'get', 'show a pool: each front end with state, last heartbeat and load')
    .requiredOption('--pool <name>', 'the pool', poolName)
    .addHelpText(
      'after',
      '\nStates: active (serving), idle (not in the active set: keeps its connections, refuses new\nsessions), stopped (shut down cleanly), unreachable (three heartbeats missed).\n\nExample:\n  perch pool get --pool chat1 --server http://fe1.example.org:8080',
    )
    .action(async (opts: ServerOptions & { pool: string }) => {
      const api = await signedInClient(opts);
      const p = await api.get<PoolView>(`/pools/${seg(opts.pool)}`);
      emit(opts.json, p, () => show(p));
    });

  registerPoolPromote(pool);
  registerPoolDisasterRecovery(pool);

  const activeServer = pool
    .command('active-server')
    .description('the front ends of a pool that serve clients');

  serverCommand(
    activeServer,
    'set',
    `choose the active front ends of a pool (at most ${MAX_ACTIVE_FRONT_ENDS}); the others go idle`,
  )
    .requiredOption('--pool <name>', 'the pool', poolName)
    .option('--servers <names>', 'comma-separated front-end names, e.g. fe1,fe2', serverList)
    .option('--none', 'make every front end idle (before a failback)')
    .addHelpText(
      'after',
      '\nIdle front ends keep the connections they have and refuse new client sessions with\nfront_end_idle, naming the active ones. Every front end follows the change at once.\n\nExamples:\n  perch pool active-server set --pool chat1 --servers fe1,fe2\n  perch pool active-server set --pool chat1 --none',
    )
    .action(async (opts: ServerOptions & { pool: string; servers?: string[]; none?: boolean }) => {
      if ((opts.servers === undefined) === (opts.none === undefined)) {
        throw new UsageError('give either --servers or --none');
      }
      const api = await signedInClient(opts);
      const p = await api.request<PoolView>('PUT', `/pools/${seg(opts.pool)}/active-servers`, {
        body: { servers: opts.servers ?? [] },
      });
      emit(opts.json, p, () => `Changed the active set of pool ${p.name}.\n${show(p)}`);
    });
}
