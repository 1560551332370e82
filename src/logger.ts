import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths removed from every log line so that no secret reaches the logs. */
const redact = [
  'password',
  'token',
  'adminPassword',
  '*.password',
  '*.token',
  '*.adminPassword',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

/** Builds the root logger; subsystems take children with `logger.child({ subsystem })`. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: redact, censor: '[redacted]' }, base: { service: 'perch' } },
    destination ?? process.stdout,
  );
}
