/**
 * The domain suites (every src/domain/*.test.ts, permission matrix included) once more, on
 * PostgreSQL: they run on SQLite as themselves, and here in one process with one PostgreSQL
 * cluster, each test on a fresh database. Together with conformance.test.ts this is the store
 * conformance suite that every dialect passes.
 *
 * PERCH_TEST_DIALECT=sqlite or =postgres runs every suite on that dialect only (the domain files
 * themselves then use it), so this file does nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const domainDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../domain');

if (process.env.PERCH_TEST_DIALECT) {
  test('domain suites on PostgreSQL', {
    skip: `PERCH_TEST_DIALECT=${process.env.PERCH_TEST_DIALECT} runs them on that dialect directly`,
  });
} else {
  // buildDomain() reads this; every test file below registers its tests as it is imported.
  process.env.PERCH_TEST_DIALECT = 'postgres';
  const files = fs
    .readdirSync(domainDir)
    .filter((f) => f.endsWith('.test.ts'))
    .sort();
  for (const file of files) await import(path.join(domainDir, file));
}
