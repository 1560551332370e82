// Runbooks followed by tests: the commands of a doc section's sh blocks, and a `perch` on PATH
// to run them with, as an installed Perch would be.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The commands of the sh blocks in `section` (a `## ` heading line) of a doc under the
 * repository root, in order: continuation lines joined, comments dropped. The section ends at the
 * next `## ` heading.
 */
export function documentedCommands(doc: string, section: string): string[] {
  const text = fs.readFileSync(path.join(repoRoot, doc), 'utf8');
  const start = text.indexOf(section);
  assert.ok(start >= 0, `${doc} has the section "${section}"`);
  const end = text.indexOf('\n## ', start + section.length);
  const body = text.slice(start, end < 0 ? undefined : end);
  const commands: string[] = [];
  for (const m of body.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    const block = m[1]!.replace(/\\\n\s*/g, ' ');
    for (const line of block.split('\n')) {
      const command = line.replace(/\s+#.*$/, '').trim();
      if (command !== '' && !command.startsWith('#')) commands.push(command);
    }
  }
  return commands;
}

/** Writes `<dir>/bin/perch` (this checkout's CLI through tsx) and returns the bin folder. */
export function perchOnPath(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(
    path.join(bin, 'perch'),
    `#!/bin/sh\nexec "${process.execPath}" --import "${import.meta.resolve('tsx')}" "${path.join(repoRoot, 'src', 'main.ts')}" "$@"\n`,
    { mode: 0o755 },
  );
  return bin;
}
