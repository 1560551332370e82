import type { Command } from 'commander';
import { ApiClient, resolveServer, resolveToken, type ServerOptions } from './client.js';
import { nameOf, readPassword, serverCommand } from './common.js';
import { credentialsPath, readCredentials, saveServerCredentials } from './credentials.js';
import { ApiError, CliError } from './errors.js';
import { emit } from './output.js';

interface SignIn {
  token: string;
  expiresAt: number;
  user: { id: number; name: string; displayName: string; isAdmin: boolean };
}

/** `perch login` and `perch logout`. */
export function registerSessionCommands(program: Command): void {
  serverCommand(program, 'login', 'sign in and store the session token for this server')
    .option('-u, --user <login>', 'login to sign in as', nameOf(256), 'admin')
    .option('--password-stdin', 'read the password from standard input (for scripts)')
    .option('--print-token', 'print the token on stdout instead of storing it (for PERCH_TOKEN)')
    .addHelpText(
      'after',
      `
The token is stored, owner-only (0600), in ${credentialsPath()}
(under $XDG_CONFIG_HOME when set). PERCH_TOKEN, when set, is used instead of it.

Examples:
  perch login                                   # asks for admin's password
  printf '%s' "$PW" | perch login --user alice --password-stdin
  export PERCH_TOKEN=$(perch login --password-stdin --print-token < pw.txt)`,
    )
    .action(
      async (
        opts: ServerOptions & { user: string; passwordStdin?: boolean; printToken?: boolean },
      ) => {
        const server = resolveServer(opts);
        const password = await readPassword(opts.passwordStdin, `Password for ${opts.user}: `);
        const api = new ApiClient(server);
        const s = await api.request<SignIn>('POST', '/sessions', {
          body: { login: opts.user, password },
        });
        if (opts.printToken) {
          emit(
            opts.json,
            { server, user: s.user, token: s.token, expiresAt: s.expiresAt },
            () => s.token,
          );
          return;
        }
        await saveServerCredentials(server, {
          token: s.token,
          login: s.user.name,
          expiresAt: s.expiresAt,
        });
        emit(
          opts.json,
          { server, user: s.user, expiresAt: s.expiresAt, credentials: credentialsPath() },
          () =>
            `Signed in to ${server} as ${s.user.name}${s.user.isAdmin ? ' (chat administrator)' : ''}; ` +
            `session valid until ${new Date(s.expiresAt).toISOString()}.` +
            (s.user.isAdmin ? '' : '\nNote: this user is not a chat administrator.'),
        );
      },
    );

  serverCommand(program, 'logout', 'revoke the session token and forget it')
    .option('--all', 'revoke every session of the user, on every device')
    .action(async (opts: ServerOptions & { all?: boolean }) => {
      const server = resolveServer(opts);
      const stored = (await readCredentials()).servers[server];
      let token: string;
      try {
        token = await resolveToken(server);
      } catch (err) {
        if (err instanceof CliError && err.code === 'not_signed_in') {
          emit(opts.json, { server, signedOut: false }, () => `Not signed in to ${server}.`);
          return;
        }
        throw err;
      }
      let revoked = true;
      try {
        await new ApiClient(server, token).request('DELETE', '/sessions/current', {
          query: { all: opts.all ? 'true' : undefined },
        });
      } catch (err) {
        // An expired or revoked token is as good as signed out; forget it all the same.
        if (!(err instanceof ApiError && err.code === 'unauthenticated')) throw err;
        revoked = false;
      }
      // With PERCH_TOKEN set, that token is the one signed out; a stored one stays.
      const forgotten = stored?.token === token;
      if (forgotten) await saveServerCredentials(server, undefined);
      emit(
        opts.json,
        { server, signedOut: true, revoked, forgotten },
        () =>
          `Signed out of ${server}${revoked ? '' : ' (the session had already ended)'}.` +
          (process.env.PERCH_TOKEN ? ' PERCH_TOKEN is still set in your environment.' : ''),
      );
    });
}
