#!/usr/bin/env node
// The runner behind `npm test`. Node 20's `node --test` does not glob .ts files, so this
// finds every *.test.ts under src/ and test/ itself and hands the list to node's test
// runner with tsx loaded.
//
//   npm test                          every test file
//   npm test -- src/domain test/e2e   only files under these paths (files or folders)
//
// PERCH_TEST_CONCURRENCY sets how many test files run at once (default 1: end-to-end
// suites start servers and databases, and CI has two cores).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const searchRoots = ['src', 'test'];
const skippedDirs = new Set(['node_modules', 'dist', '.git']);

/** Every *.test.ts file under dir, as absolute paths. */
function findTestFiles(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skippedDirs.has(entry.name)) found.push(...findTestFiles(full));
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      found.push(full);
    }
  }
  return found;
}

function isWithin(file, filter) {
  const rel = path.relative(filter, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function parseConcurrency(raw) {
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`run-tests: PERCH_TEST_CONCURRENCY must be a positive integer, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

const filters = process.argv.slice(2).map((arg) => path.resolve(process.cwd(), arg));
for (const filter of filters) {
  if (!existsSync(filter)) {
    console.error(`run-tests: no such file or folder: ${path.relative(process.cwd(), filter)}`);
    process.exit(2);
  }
}

const all = searchRoots.flatMap((root) => findTestFiles(path.join(repoRoot, root)));
const selected = all
  .filter((file) => filters.length === 0 || filters.some((filter) => isWithin(file, filter)))
  .map((file) => path.relative(repoRoot, file).split(path.sep).join('/'))
  .sort();

// A filter naming a test file outside src/ and test/ still runs it.
for (const filter of filters) {
  if (statSync(filter).isFile() && filter.endsWith('.test.ts')) {
    const rel = path.relative(repoRoot, filter).split(path.sep).join('/');
    if (!selected.includes(rel)) selected.push(rel);
  }
}

if (selected.length === 0) {
  const where = filters.length > 0 ? process.argv.slice(2).join(', ') : searchRoots.join(', ');
  console.error(`run-tests: no *.test.ts files found under ${where}`);
  process.exit(1);
}

const concurrency = parseConcurrency(process.env.PERCH_TEST_CONCURRENCY);
console.log(`run-tests: ${selected.length} file(s), concurrency ${concurrency}`);
for (const file of selected) console.log(`  ${file}`);
console.log('');

const args = [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  `--test-concurrency=${concurrency}`,
  ...selected,
];
// cwd is the repo root so that `--import tsx` resolves from the project's node_modules.
const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: 'inherit' });

// Pass termination on so that test files get to stop the servers they started.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on('error', (error) => {
  console.error(`run-tests: could not start node: ${error.message}`);
  process.exitCode = 1;
});
child.on('exit', (code, signal) => {
  if (signal !== null) {
    console.error(`run-tests: test runner killed by ${signal}`);
    process.exitCode = 1;
  } else {
    process.exitCode = code ?? 1;
  }
});
