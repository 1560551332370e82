import { CommanderError, InvalidArgumentError, type Command } from 'commander';
import { PerchError } from '../errors.js';
import { CliError, ExitCode, UsageError } from './errors.js';
import { stdio } from './output.js';
import { registerAddinCommands } from './addin.js';
import { registerAuditCommands } from './audit.js';
import { registerBackupCommands } from './backup.js';
import { registerCategoryCommands } from './category.js';
import { registerComplianceCommands } from './compliance.js';
import { registerConfigCommands } from './config.js';
import { registerDataCommands } from './data.js';
import { registerDbCommands } from './db.js';
import { registerDirectoryCommands } from './directory.js';
import { registerGroupCommands } from './group.js';
import { registerMessageCommands } from './message.js';
import { registerPolicyCommands } from './policy.js';
import { registerPoolCommands } from './pool.js';
import { registerPrincipalCommands } from './principal.js';
import { registerRoleCommands } from './role.js';
import { registerRoomCommands } from './room.js';
import { registerSessionCommands } from './session.js';
import { registerTestCommands } from './test-message.js';
import { registerTopologyCommands } from './topology.js';
import { registerUserCommands } from './user.js';

/** Adds the admin command groups to the `perch` program, in the order `--help` lists them. */
export function registerAdminCommands(program: Command): void {
  registerSessionCommands(program);
  registerUserCommands(program);
  registerGroupCommands(program);
  registerRoleCommands(program);
  registerCategoryCommands(program);
  registerRoomCommands(program);
  registerMessageCommands(program);
  registerPolicyCommands(program);
  registerConfigCommands(program);
  registerAddinCommands(program);
  registerComplianceCommands(program);
  registerPrincipalCommands(program);
  registerDirectoryCommands(program);
  registerDbCommands(program);
  registerDataCommands(program);
  registerBackupCommands(program);
  registerPoolCommands(program);
  registerTopologyCommands(program);
  registerTestCommands(program);
  registerAuditCommands(program);
}

/** Applies the CLI's parsing rules to a command and all its subcommands. */
function configure(cmd: Command): void {
  cmd
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .allowExcessArguments(false)
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  for (const sub of cmd.commands) configure(sub);
}

function printError(code: string, message: string, details?: Record<string, unknown>): void {
  stdio.err(`perch: ${code}: ${message}`);
  const issues = details?.issues;
  if (Array.isArray(issues) && issues.length > 1) {
    for (const i of issues as { path?: string; message?: string }[]) {
      stdio.err(`  - ${i.path ? `${i.path}: ` : ''}${i.message ?? ''}`);
    }
  }
}

/**
 * Parses argv and runs the command; resolves with the exit code: 0 ok, 1 error (server errors
 * print `perch: <code>: <message>`), 2 usage (unknown flags, bad values, missing arguments).
 */
export async function runCli(program: Command, argv: string[]): Promise<number> {
  configure(program);
  try {
    await program.parseAsync(argv);
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      // Thrown by a value check inside an action: commander has not printed it.
      stdio.err(`error: ${err.message}\n(add --help for usage)`);
      return ExitCode.usage;
    }
    if (err instanceof CommanderError) {
      // Commander has already printed what went wrong (or the help that was asked for).
      if (['commander.helpDisplayed', 'commander.version'].includes(err.code)) return ExitCode.ok;
      return ExitCode.usage;
    }
    if (err instanceof UsageError) {
      stdio.err(`error: ${err.message}\n(add --help for usage)`);
      return ExitCode.usage;
    }
    if (err instanceof CliError) {
      printError(err.code, err.message, err.details);
      return ExitCode.error;
    }
    if (err instanceof PerchError) {
      printError(err.code, err.message, err.details);
      return ExitCode.error;
    }
    stdio.err(`perch: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return ExitCode.error;
  }
}
