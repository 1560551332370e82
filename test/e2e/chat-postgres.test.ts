/**
 * The WebSocket protocol suite (chat.test.ts) once more, with the server on a PostgreSQL store:
 * a fresh database in this process's test cluster. Only the protocol suite runs twice; the
 * lifecycle and permission suites exercise the same store code through the same commands, and
 * the store conformance suites cover both dialects below them.
 *
 * PERCH_TEST_DIALECT=sqlite or =postgres runs the end-to-end suites on that dialect only, so this
 * file does nothing.
 */
import { test } from 'node:test';

if (process.env.PERCH_TEST_DIALECT) {
  test('WebSocket protocol on PostgreSQL', {
    skip: `PERCH_TEST_DIALECT=${process.env.PERCH_TEST_DIALECT} runs it on that dialect directly`,
  });
} else {
  // startServer() reads this; chat.test.ts registers its suite as it is imported.
  process.env.PERCH_TEST_DIALECT = 'postgres';
  await import('./chat.test.js');
}
