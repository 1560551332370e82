import type { Command } from 'commander';
import { seg, signedInClient, type ApiClient, type ServerOptions } from './client.js';
import {
  confirm,
  destructive,
  nameOf,
  parseBool,
  serverCommand,
  type DestructiveOptions,
} from './common.js';
import { CliError, UsageError } from './errors.js';
import { emit, fields, table } from './output.js';

interface Policy {
  name: string;
  enabled: boolean;
  description: string | null;
}

async function findPolicy(api: ApiClient, name: string): Promise<Policy | undefined> {
  const all = await api.get<Policy[]>('/policies');
  return all.find((p) => p.name.toLowerCase() === name.toLowerCase());
}

/** `perch policy get|new|set|remove|grant|effective` (Lync's CsPersistentChatPolicy cmdlets). */
export function registerPolicyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description(
      'persistent chat policies: who may use chat at all; global default, granted per group and user',
    );

  serverCommand(policy, 'get [name]', 'show one policy, or list them')
    .addHelpText('after', '\nExamples:\n  perch policy get\n  perch policy get global --json')
    .action(async (name: string | undefined, opts: ServerOptions) => {
      const api = await signedInClient(opts);
      if (name !== undefined) {
        const p = await findPolicy(api, name);
        if (!p) throw new CliError('policy_not_found', `no policy named ${JSON.stringify(name)}`);
        emit(opts.json, p, () =>
          fields([
            ['name', p.name],
            ['chat enabled', p.enabled],
            ['description', p.description],
          ]),
        );
        return;
      }
      const all = await api.get<Policy[]>('/policies');
      emit(opts.json, all, () =>
        table(all, [
          ['NAME', (p) => p.name],
          ['CHAT', (p) => (p.enabled ? 'enabled' : 'disabled')],
          ['DESCRIPTION', (p) => p.description],
        ]),
      );
    });

  serverCommand(policy, 'new <name>', 'create a policy (chat is off unless --enabled)')
    .option(
      '--enabled',
      'allow persistent chat under this policy (default: not allowed, as in Lync)',
    )
    .option('--description <text>', 'what the policy is for', nameOf(1024))
    .addHelpText(
      'after',
      '\nExamples:\n  perch policy new no-chat --description "contractors"\n  perch policy new chat --enabled',
    )
    .action(
      async (name: string, opts: ServerOptions & { enabled?: boolean; description?: string }) => {
        const api = await signedInClient(opts);
        if (await findPolicy(api, name)) {
          throw new CliError(
            'policy_exists',
            `a policy named ${JSON.stringify(name)} already exists`,
          );
        }
        const p = await api.request<Policy>('PUT', `/policies/${seg(name)}`, {
          body: { enabled: opts.enabled ?? false, description: opts.description ?? null },
        });
        emit(
          opts.json,
          p,
          () => `Created policy ${p.name} (chat ${p.enabled ? 'enabled' : 'disabled'}).`,
        );
      },
    );

  serverCommand(policy, 'set [name]', 'change a policy (the global one when no name is given)')
    .option('--enabled <bool>', 'true allows persistent chat, false forbids it', parseBool)
    .option('--description <text>', 'what the policy is for', nameOf(1024))
    .addHelpText(
      'after',
      '\nExamples:\n  perch policy set --enabled false\n  perch policy set no-chat --description "contractors and guests"',
    )
    .action(
      async (
        name: string | undefined,
        opts: ServerOptions & { enabled?: boolean; description?: string },
      ) => {
        if (opts.enabled === undefined && opts.description === undefined) {
          throw new UsageError('nothing to change');
        }
        const api = await signedInClient(opts);
        const current = await findPolicy(api, name ?? 'global');
        if (!current)
          throw new CliError('policy_not_found', `no policy named ${JSON.stringify(name)}`);
        const p = await api.request<Policy>('PUT', `/policies/${seg(current.name)}`, {
          body: {
            enabled: opts.enabled ?? current.enabled,
            description: opts.description ?? current.description,
          },
        });
        emit(
          opts.json,
          p,
          () => `Changed policy ${p.name} (chat ${p.enabled ? 'enabled' : 'disabled'}).`,
        );
      },
    );

  destructive(
    serverCommand(policy, 'remove <name>', 'delete a policy; removing global resets it to enabled'),
  )
    .addHelpText('after', '\nExample:\n  perch policy remove no-chat --force')
    .action(async (name: string, opts: DestructiveOptions) => {
      const api = await signedInClient(opts);
      const p = await findPolicy(api, name);
      if (!p) throw new CliError('policy_not_found', `no policy named ${JSON.stringify(name)}`);
      const action =
        p.name === 'global' ? 'reset the global policy to enabled' : `remove policy ${p.name}`;
      if (!(await confirm(opts, action, { name: p.name }))) return;
      await api.request('DELETE', `/policies/${seg(p.name)}`);
      emit(
        opts.json,
        { removed: p.name !== 'global', reset: p.name === 'global', name: p.name },
        () =>
          p.name === 'global'
            ? 'Reset the global policy (chat enabled).'
            : `Removed policy ${p.name}.`,
      );
    });

  serverCommand(
    policy,
    'grant <principals...>',
    'grant a policy to users or groups, or take it away',
  )
    .option('--policy <name>', 'the policy to grant')
    .option('--none', "take the granted policy away (the group's or global policy applies)")
    .addHelpText(
      'after',
      "\nA policy granted to a user wins over its groups'; among groups, a disabling one wins.\n\nExamples:\n  perch policy grant contractors --policy no-chat\n  perch policy grant alice --none",
    )
    .action(
      async (principals: string[], opts: ServerOptions & { policy?: string; none?: boolean }) => {
        if ((opts.policy === undefined) === !opts.none) {
          throw new UsageError('give either --policy <name> or --none');
        }
        const api = await signedInClient(opts);
        for (const p of principals) {
          await api.request('PUT', `/principals/${seg(p)}/policy`, {
            body: { policy: opts.none ? null : opts.policy },
          });
        }
        emit(opts.json, { principals, policy: opts.none ? null : opts.policy }, () =>
          opts.none
            ? `Took the granted policy away from ${principals.join(', ')}.`
            : `Granted policy ${opts.policy} to ${principals.join(', ')}.`,
        );
      },
    );

  serverCommand(policy, 'effective', 'show which policy applies to a user, and why')
    .requiredOption('--user <login>', 'the user')
    .addHelpText('after', '\nExample:\n  perch policy effective --user alice')
    .action(async (opts: ServerOptions & { user: string }) => {
      const api = await signedInClient(opts);
      const e = await api.get<{ enabled: boolean; policy: string; source: string }>(
        `/users/${seg(opts.user)}/policy`,
      );
      const why =
        e.source === 'user'
          ? 'granted to the user'
          : e.source.startsWith('group:')
            ? `granted to group ${e.source.slice('group:'.length)}`
            : 'the global default';
      emit(
        opts.json,
        { user: opts.user, ...e },
        () =>
          `${opts.user}: persistent chat ${e.enabled ? 'enabled' : 'disabled'} by policy ${e.policy} (${why}).`,
      );
    });
}
