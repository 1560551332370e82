import crypto from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import { seg, signedInClient, type ServerOptions } from './client.js';
import { intIn, nameOf, parseBool, readPassword, serverCommand } from './common.js';
import { UsageError } from './errors.js';
import { emit, fields, isoTime, table } from './output.js';

export interface UserRecord {
  id: number;
  kind: 'user';
  name: string;
  displayName: string;
  email: string | null;
  disabled: boolean;
  isAdmin: boolean;
  source: string;
  createdAt: number;
}

export function userTable(users: UserRecord[]): string {
  return table(users, [
    ['LOGIN', (u) => u.name],
    ['DISPLAY NAME', (u) => u.displayName],
    ['ADMIN', (u) => u.isAdmin],
    ['DISABLED', (u) => u.disabled],
    ['EMAIL', (u) => u.email],
  ]);
}

function userDetail(u: UserRecord): string {
  return fields([
    ['login', u.name],
    ['display name', u.displayName],
    ['email', u.email],
    ['chat administrator', u.isAdmin],
    ['disabled', u.disabled],
    ['source', u.source],
    ['created', isoTime(u.createdAt)],
  ]);
}

function generatePassword(): string {
  return crypto.randomBytes(15).toString('base64url');
}

/** A password from `--generate-password`, `--password-stdin` or the terminal. */
async function newPassword(
  opts: { passwordStdin?: boolean; generatePassword?: boolean },
  login: string,
): Promise<{ password: string; generated: boolean }> {
  if (opts.passwordStdin && opts.generatePassword) {
    throw new UsageError('use either --password-stdin or --generate-password');
  }
  if (opts.generatePassword) return { password: generatePassword(), generated: true };
  const password = await readPassword(opts.passwordStdin, `New password for ${login}: `, true);
  if (password.length < 8) throw new UsageError('the password must be at least 8 characters');
  return { password, generated: false };
}

const email = (value: string) => {
  if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw new InvalidArgumentError('must be an e-mail address');
  return value;
};

/** `perch user new|get|set|disable|reset-password` (administrators). */
export function registerUserCommands(program: Command): void {
  const user = program
    .command('user')
    .description('users of the built-in directory (chat administrators)');

  serverCommand(user, 'new <login>', 'create a user')
    .option('--display-name <name>', 'name shown to others (default: the login)', nameOf(256))
    .option('--email <address>', 'e-mail address', email)
    .option('--admin', 'make the user a chat administrator')
    .option('--password-stdin', 'read the password from standard input')
    .option('--generate-password', 'generate a password and print it once')
    .addHelpText(
      'after',
      `
Without --password-stdin or --generate-password the password is asked for on the terminal.

Examples:
  perch user new alice --display-name "Alice Liddell" --generate-password
  printf '%s' "$PW" | perch user new bob --password-stdin --json`,
    )
    .action(
      async (
        login: string,
        opts: ServerOptions & {
          displayName?: string;
          email?: string;
          admin?: boolean;
          passwordStdin?: boolean;
          generatePassword?: boolean;
        },
      ) => {
        const api = await signedInClient(opts);
        const { password, generated } = await newPassword(opts, login);
        const u = await api.request<UserRecord>('POST', '/users', {
          body: {
            login,
            displayName: opts.displayName,
            email: opts.email,
            isAdmin: opts.admin ?? false,
            password,
          },
        });
        emit(opts.json, generated ? { ...u, password } : u, () =>
          [
            `Created user ${u.name}${u.isAdmin ? ' (chat administrator)' : ''}.`,
            generated ? `Password (shown once): ${password}` : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      },
    );

  serverCommand(user, 'get [login]', 'show one user, or list users')
    .option('--filter <text>', 'list users whose login or display name contains this')
    .option('--limit <n>', 'list at most n users (1-500)', intIn(1, 500), 100)
    .option('--offset <n>', 'skip the first n users', intIn(0, 1_000_000))
    .addHelpText('after', '\nExamples:\n  perch user get\n  perch user get alice --json')
    .action(
      async (
        login: string | undefined,
        opts: ServerOptions & { filter?: string; limit: number; offset?: number },
      ) => {
        const api = await signedInClient(opts);
        if (login !== undefined) {
          const u = await api.get<UserRecord>(`/users/${seg(login)}`);
          emit(opts.json, u, () => userDetail(u));
          return;
        }
        const users = await api.get<UserRecord[]>('/users', {
          filter: opts.filter,
          limit: opts.limit,
          offset: opts.offset,
        });
        emit(opts.json, users, () => userTable(users));
      },
    );

  serverCommand(user, 'set <login>', "change a user's display name, e-mail or enabled state")
    .option('--display-name <name>', 'name shown to others', nameOf(256))
    .option('--email <address>', 'e-mail address', email)
    .option('--no-email', 'remove the e-mail address')
    .option('--enabled <bool>', 'true to enable, false to disable (signs the user out)', parseBool)
    .addHelpText(
      'after',
      '\nThe chat administrator role is changed with `perch role grant|revoke`.\n\nExamples:\n  perch user set alice --display-name "Alice L." --email alice@example.org\n  perch user set alice --enabled true',
    )
    .action(
      async (
        login: string,
        opts: ServerOptions & { displayName?: string; email?: string | false; enabled?: boolean },
      ) => {
        const body: Record<string, unknown> = {};
        if (opts.displayName !== undefined) body.displayName = opts.displayName;
        if (opts.email !== undefined) body.email = opts.email === false ? null : opts.email;
        if (opts.enabled !== undefined) body.disabled = !opts.enabled;
        if (Object.keys(body).length === 0) throw new UsageError('nothing to change');
        const api = await signedInClient(opts);
        const u = await api.request<UserRecord>('PATCH', `/users/${seg(login)}`, { body });
        emit(opts.json, u, () => `Changed user ${u.name}.\n${userDetail(u)}`);
      },
    );

  serverCommand(user, 'disable <login>', 'disable a user: no sign-in, signed out everywhere')
    .addHelpText('after', '\nRe-enable with `perch user set <login> --enabled true`.')
    .action(async (login: string, opts: ServerOptions) => {
      const api = await signedInClient(opts);
      const u = await api.request<UserRecord>('PATCH', `/users/${seg(login)}`, {
        body: { disabled: true },
      });
      emit(opts.json, u, () => `Disabled user ${u.name}; their sessions are revoked.`);
    });

  serverCommand(user, 'reset-password <login>', "set a user's password (signs the user out)")
    .option('--password-stdin', 'read the new password from standard input')
    .option('--generate-password', 'generate a password and print it once')
    .addHelpText(
      'after',
      '\nExamples:\n  perch user reset-password alice --generate-password\n  printf \'%s\' "$PW" | perch user reset-password alice --password-stdin',
    )
    .action(
      async (
        login: string,
        opts: ServerOptions & { passwordStdin?: boolean; generatePassword?: boolean },
      ) => {
        const api = await signedInClient(opts);
        const { password, generated } = await newPassword(opts, login);
        const u = await api.request<UserRecord>('PATCH', `/users/${seg(login)}`, {
          body: { password },
        });
        emit(
          opts.json,
          { user: u.name, passwordReset: true, ...(generated ? { password } : {}) },
          () =>
            `Reset the password of ${u.name}; their sessions are revoked.` +
            (generated ? `\nPassword (shown once): ${password}` : ''),
        );
      },
    );
}
