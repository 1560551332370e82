import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const xsdPath = path.join(repoRoot, 'docs', 'compliance', 'perch-compliance.xsd');

/** Validates an XML file against the shipped XSD with xmllint; fails the test on any error. */
export function assertValidXml(file: string): void {
  try {
    execFileSync('xmllint', ['--noout', '--schema', xsdPath, file], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    assert.fail(`${file} does not validate: ${e.stderr?.toString() ?? String(err)}`);
  }
}

export interface ExportedRecord {
  recordId: number;
  type: string;
  content: string;
  file: string;
}

function unescapeXml(v: string): string {
  return v
    .replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Every <Message> of every .xml file in dir (FirstMessage excluded), validated against the XSD. */
export function readXmlOutput(dir: string, validate = true): ExportedRecord[] {
  const out: ExportedRecord[] = [];
  if (!fs.existsSync(dir)) return out;
  for (const name of fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.xml'))
    .sort()) {
    const file = path.join(dir, name);
    if (validate) assertValidXml(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /<Message type="([A-Z_]+)" content="([^"]*)" id="\d+" recordId="(\d+)">/g,
    )) {
      out.push({ type: m[1]!, content: unescapeXml(m[2]!), recordId: Number(m[3]), file: name });
    }
  }
  return out;
}

/** Every line of every .jsonl file in dir. */
export function readJsonlOutput(dir: string): (ExportedRecord & Record<string, unknown>)[] {
  const out: (ExportedRecord & Record<string, unknown>)[] = [];
  if (!fs.existsSync(dir)) return out;
  for (const name of fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()) {
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const o = JSON.parse(line) as Record<string, unknown>;
      out.push({
        ...o,
        recordId: o.recordId as number,
        type: o.type as string,
        content: o.content as string,
        file: name,
      });
    }
  }
  return out;
}

/** Asserts that `ids` holds each expected id (1..n when a number is given) exactly once. */
export function assertExactlyOnce(ids: number[], expected: number | number[], what: string): void {
  const want =
    typeof expected === 'number' ? Array.from({ length: expected }, (_, i) => i + 1) : expected;
  const sorted = [...ids].sort((a, b) => a - b);
  const dupes = sorted.filter((v, i) => i > 0 && sorted[i - 1] === v);
  assert.deepEqual(dupes, [], `${what}: duplicated record ids`);
  const have = new Set(ids);
  assert.deepEqual(
    want.filter((id) => !have.has(id)),
    [],
    `${what}: missing record ids`,
  );
  assert.deepEqual(
    sorted,
    [...want].sort((a, b) => a - b),
    `${what}: unexpected record ids`,
  );
}
