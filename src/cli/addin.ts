import { InvalidArgumentError, type Command } from 'commander';
import { addinNameSchema, addinUrlSchema } from '../domain/addins/commands.js';
import { seg, signedInClient, type ServerOptions } from './client.js';
import { confirm, destructive, serverCommand, type DestructiveOptions } from './common.js';
import { UsageError } from './errors.js';
import { emit, fields, isoTime, table } from './output.js';

interface Addin {
  id: number;
  name: string;
  url: string;
  createdAt: number;
}

/** Validates with the server's own schemas: name at most 50 characters, http(s) URLs only. */
function withSchema(schema: typeof addinNameSchema | typeof addinUrlSchema) {
  return (value: string): string => {
    const r = schema.safeParse(value);
    if (!r.success) throw new InvalidArgumentError(r.error.issues[0]?.message ?? 'invalid value');
    return r.data;
  };
}
const addinName = withSchema(addinNameSchema);
const addinUrl = withSchema(addinUrlSchema);

function detail(a: Addin): string {
  return fields([
    ['id', a.id],
    ['name', a.name],
    ['url', a.url],
    ['created', isoTime(a.createdAt)],
  ]);
}

/** `perch addin get|new|set|remove` (CsPersistentChatAddin); attach with `room set --addin`. */
export function registerAddinCommands(program: Command): void {
  const addin = program
    .command('addin')
    .description('add-ins: web pages shown next to a room (chat administrators)');

  serverCommand(addin, 'get [addin]', 'show one add-in (by id or name), or list them')
    .addHelpText('after', '\nExamples:\n  perch addin get\n  perch addin get wiki --json')
    .action(async (ref: string | undefined, opts: ServerOptions) => {
      const api = await signedInClient(opts);
      if (ref !== undefined) {
        const a = await api.get<Addin>(`/addins/${seg(ref)}`);
        emit(opts.json, a, () => detail(a));
        return;
      }
      const all = await api.get<Addin[]>('/addins');
      emit(opts.json, all, () =>
        table(all, [
          ['ID', (a) => a.id],
          ['NAME', (a) => a.name],
          ['URL', (a) => a.url],
        ]),
      );
    });

  serverCommand(addin, 'new <name>', 'register an add-in')
    .requiredOption('--url <url>', 'the page to show (http:// or https://)', addinUrl)
    .addHelpText(
      'after',
      '\nAttach it to a room with `perch room set <room> --addin <name>`.\n\nExample:\n  perch addin new wiki --url https://wiki.example.org/chat',
    )
    .action(async (name: string, opts: ServerOptions & { url: string }) => {
      const checkedName = addinName(name);
      const api = await signedInClient(opts);
      const a = await api.request<Addin>('POST', '/addins', {
        body: { name: checkedName, url: opts.url },
      });
      emit(opts.json, a, () => `Registered add-in ${a.name} (#${a.id}).`);
    });

  serverCommand(addin, 'set <addin>', 'rename an add-in or change its URL')
    .option('--name <name>', 'new name (at most 50 characters)', addinName)
    .option('--url <url>', 'new URL (http:// or https://)', addinUrl)
    .addHelpText(
      'after',
      '\nExample:\n  perch addin set wiki --url https://wiki.example.org/v2/chat',
    )
    .action(async (ref: string, opts: ServerOptions & { name?: string; url?: string }) => {
      if (opts.name === undefined && opts.url === undefined)
        throw new UsageError('nothing to change');
      const api = await signedInClient(opts);
      const a = await api.request<Addin>('PATCH', `/addins/${seg(ref)}`, {
        body: { name: opts.name, url: opts.url },
      });
      emit(opts.json, a, () => `Changed add-in ${a.name}.\n${detail(a)}`);
    });

  destructive(
    serverCommand(addin, 'remove <addin>', 'unregister an add-in; rooms using it lose it'),
  )
    .addHelpText('after', '\nExample:\n  perch addin remove wiki --force')
    .action(async (ref: string, opts: DestructiveOptions) => {
      const api = await signedInClient(opts);
      const a = await api.get<Addin>(`/addins/${seg(ref)}`);
      const target = { id: a.id, name: a.name, url: a.url };
      if (!(await confirm(opts, `remove add-in ${a.name} (#${a.id})`, target))) return;
      await api.request('DELETE', `/addins/${a.id}`);
      emit(opts.json, { removed: true, addin: target }, () => `Removed add-in ${a.name}.`);
    });
}
