/**
 * Failures the CLI reports itself. Exit codes are stable: 0 ok, 1 an error (including every
 * error the server answers), 2 a usage error (unknown flag, bad value, missing argument).
 */
export const ExitCode = { ok: 0, error: 1, usage: 2 } as const;

/** An error with a stable code, printed as `perch: <code>: <message>` with exit code 1. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** An error answered by the server: its stable code, message and HTTP status. */
export class ApiError extends CliError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
    this.name = 'ApiError';
  }
}

/** A bad invocation found after parsing (conflicting flags, a bad PERCH_SERVER): exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
